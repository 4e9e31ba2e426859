using System.Runtime.InteropServices;

namespace Nibble.Cuda.Native;

/// <summary>CUDA driver API (libcuda.so.1), only the entry points Nibble uses. All return CUresult (0 = success).</summary>
static partial class Driver
{
    const string Lib = NativeLibraries.Driver;

    [LibraryImport(Lib)] public static partial int cuInit(uint flags);
    [LibraryImport(Lib)] public static partial int cuDriverGetVersion(out int version);
    [LibraryImport(Lib)] public static partial int cuDeviceGetCount(out int count);
    [LibraryImport(Lib)] public static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Lib)] public static unsafe partial int cuDeviceGetName(byte* name, int len, int device);
    [LibraryImport(Lib)] public static partial int cuDeviceGetAttribute(out int value, int attribute, int device);
    [LibraryImport(Lib, EntryPoint = "cuDeviceTotalMem_v2")] public static partial int cuDeviceTotalMem(out nuint bytes, int device);
    [LibraryImport(Lib)] public static partial int cuDevicePrimaryCtxRetain(out IntPtr ctx, int device);
    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] public static partial int cuDevicePrimaryCtxRelease(int device);
    [LibraryImport(Lib)] public static partial int cuCtxSetCurrent(IntPtr ctx);
    [LibraryImport(Lib)] public static partial int cuCtxSynchronize();
    [LibraryImport(Lib)] public static partial int cuGetErrorName(int error, out IntPtr name);
    [LibraryImport(Lib)] public static partial int cuGetErrorString(int error, out IntPtr text);

    [LibraryImport(Lib, EntryPoint = "cuMemAlloc_v2")] public static partial int cuMemAlloc(out ulong dptr, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemFree_v2")] public static partial int cuMemFree(ulong dptr);
    [LibraryImport(Lib, EntryPoint = "cuMemGetInfo_v2")] public static partial int cuMemGetInfo(out nuint free, out nuint total);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoDAsync_v2")] public static unsafe partial int cuMemcpyHtoDAsync(ulong dst, void* src, nuint bytes, IntPtr stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoHAsync_v2")] public static unsafe partial int cuMemcpyDtoHAsync(void* dst, ulong src, nuint bytes, IntPtr stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoDAsync_v2")] public static partial int cuMemcpyDtoDAsync(ulong dst, ulong src, nuint bytes, IntPtr stream);
    [LibraryImport(Lib, EntryPoint = "cuMemsetD8Async")] public static partial int cuMemsetD8Async(ulong dst, byte value, nuint count, IntPtr stream);
    [LibraryImport(Lib, EntryPoint = "cuMemsetD32Async")] public static partial int cuMemsetD32Async(ulong dst, uint value, nuint count, IntPtr stream);

    [LibraryImport(Lib)] public static partial int cuStreamCreate(out IntPtr stream, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuStreamDestroy_v2")] public static partial int cuStreamDestroy(IntPtr stream);
    [LibraryImport(Lib)] public static partial int cuStreamSynchronize(IntPtr stream);
    [LibraryImport(Lib)] public static partial int cuEventCreate(out IntPtr ev, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuEventDestroy_v2")] public static partial int cuEventDestroy(IntPtr ev);
    [LibraryImport(Lib)] public static partial int cuEventRecord(IntPtr ev, IntPtr stream);
    [LibraryImport(Lib)] public static partial int cuEventSynchronize(IntPtr ev);
    [LibraryImport(Lib)] public static partial int cuEventElapsedTime(out float ms, IntPtr start, IntPtr end);

    [LibraryImport(Lib)] public static unsafe partial int cuModuleLoadData(out IntPtr module, void* image);
    [LibraryImport(Lib)] public static partial int cuModuleUnload(IntPtr module);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] public static partial int cuModuleGetFunction(out IntPtr function, IntPtr module, string name);
    [LibraryImport(Lib)] public static partial int cuFuncSetAttribute(IntPtr function, int attribute, int value);
    [LibraryImport(Lib)] public static partial int cuFuncGetAttribute(out int value, int attribute, IntPtr function);
    [LibraryImport(Lib)] public static unsafe partial int cuLaunchKernel(IntPtr f, uint gridX, uint gridY, uint gridZ,
        uint blockX, uint blockY, uint blockZ, uint sharedBytes, IntPtr stream, void** kernelParams, void** extra);

    // Stream capture and CUDA graphs (decode-step replay, CudaGraph).
    [LibraryImport(Lib, EntryPoint = "cuStreamBeginCapture_v2")] public static partial int cuStreamBeginCapture(IntPtr stream, int mode);
    [LibraryImport(Lib)] public static partial int cuStreamEndCapture(IntPtr stream, out IntPtr graph);
    [LibraryImport(Lib)] public static partial int cuStreamIsCapturing(IntPtr stream, out int status);
    [LibraryImport(Lib)] public static partial int cuGraphInstantiateWithFlags(out IntPtr exec, IntPtr graph, ulong flags);
    [LibraryImport(Lib)] public static partial int cuGraphLaunch(IntPtr exec, IntPtr stream);
    [LibraryImport(Lib)] public static partial int cuGraphExecDestroy(IntPtr exec);
    [LibraryImport(Lib)] public static partial int cuGraphDestroy(IntPtr graph);
    [LibraryImport(Lib)] public static partial int cuGraphGetNodes(IntPtr graph, IntPtr nodes, ref nuint count);

    /// <summary>Encodes a TMA tensor map (CUtensorMap, 128 bytes) for cp.async.bulk.tensor (cuda.h, CUDA 12+).</summary>
    [LibraryImport(Lib)] public static unsafe partial int cuTensorMapEncodeTiled(void* tensorMap, int dataType, uint rank, ulong globalAddress,
        ulong* globalDim, ulong* globalStrides, uint* boxDim, uint* elementStrides, int interleave, int swizzle, int l2Promotion, int oobFill);
    // CUtensorMap enums used by Nibble (cuda.h).
    public const int TensorMapUint8 = 0;
    public const int TensorMapUint16 = 1;
    public const int TensorMapUint64 = 4;
    public const int TensorMapSwizzleNone = 0;
    public const int TensorMapInterleaveNone = 0;
    public const int TensorMapSwizzle128B = 3;
    public const int TensorMapL2Promotion256B = 3;
    public const int TensorMapOobFillZero = 0;

    [LibraryImport(Lib)] public static partial int cuOccupancyMaxActiveBlocksPerMultiprocessor(out int numBlocks, IntPtr function, int blockSize, nuint dynamicSmemBytes);

    // CUdevice_attribute values used by Nibble (cuda.h).
    public const int AttrMaxSharedPerBlockOptin = 97;
    public const int AttrMultiprocessorCount = 16;
    public const int AttrComputeCapabilityMajor = 75;
    public const int AttrComputeCapabilityMinor = 76;
    public const int AttrL2CacheSize = 38;
    public const int AttrClockRate = 13;
    public const int AttrMemoryClockRate = 36;
    public const int AttrGlobalMemoryBusWidth = 37;
    // CUfunction_attribute values.
    public const int FuncAttrNumRegs = 4;
    public const int FuncAttrLocalBytes = 3;
    public const int FuncAttrSharedBytes = 1;
    public const int FuncAttrMaxDynamicShared = 8;
    public const uint EventDefault = 0;
    public const uint EventDisableTiming = 2;
    public const uint StreamNonBlocking = 1;
    // CUstreamCaptureMode: relaxed lets the capturing thread allocate (cuMemAlloc) while it records the step.
    public const int StreamCaptureModeRelaxed = 2;
}
