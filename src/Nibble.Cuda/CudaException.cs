using System.Runtime.InteropServices;
using Nibble.Cuda.Native;

namespace Nibble.Cuda;

/// <summary>A failed CUDA, NVRTC or cuBLASLt call: the message names the operation and the library's error name.</summary>
public sealed class CudaException : NibbleException
{
    public int Code { get; }
    public CudaException(string message, int code) : base(message) => Code = code;

    internal static void Check(int result, string operation)
    {
        if (result != 0) throw new CudaException($"{operation} failed with {DriverErrorName(result)} ({result}); check the GPU and driver with `nibble doctor`.", result);
    }

    internal static void CheckNvrtc(int result, string operation)
    {
        if (result == 0) return;
        var name = Marshal.PtrToStringUTF8(Nvrtc.nvrtcGetErrorString(result)) ?? "NVRTC_ERROR";
        throw new CudaException($"{operation} failed with {name} ({result}).", result);
    }

    internal static void CheckBlas(int result, string operation)
    {
        if (result == 0) return;
        string name;
        try { name = Marshal.PtrToStringUTF8(CublasLtApi.cublasLtGetStatusName(result)) ?? "CUBLAS_STATUS"; }
        catch (EntryPointNotFoundException) { name = "CUBLAS_STATUS"; }
        throw new CudaException($"{operation} failed with {name} ({result}).", result);
    }

    static string DriverErrorName(int result)
    {
        try
        {
            if (Driver.cuGetErrorName(result, out var p) == 0 && p != IntPtr.Zero)
                return Marshal.PtrToStringUTF8(p) ?? "CUDA_ERROR";
        }
        catch (DllNotFoundException) { }
        return "CUDA_ERROR";
    }
}
