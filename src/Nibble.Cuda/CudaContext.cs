using System.Runtime.InteropServices;
using System.Text;
using Nibble.Cuda.Native;

namespace Nibble.Cuda;

/// <summary>
/// One GPU and its primary context. The driver keeps the context current per thread, so every operation that can run
/// on a different thread (xunit, thread-pool continuations) calls <see cref="Bind"/> first; it costs a few nanoseconds.
/// </summary>
public sealed class CudaContext : IDisposable
{
    readonly IntPtr context;
    bool disposed;

    public int Ordinal { get; }
    public string Name { get; }
    public int ComputeMajor { get; }
    public int ComputeMinor { get; }
    public int MultiprocessorCount { get; }
    public int L2CacheBytes { get; }
    public int MaxSharedPerBlockOptin { get; }
    public long TotalMemoryBytes { get; }
    public int DriverVersion { get; }
    public string Arch => $"sm_{ComputeMajor}{ComputeMinor}";
    public bool IsHopperOrNewer => ComputeMajor >= 9;

    CudaContext(int ordinal)
    {
        Ordinal = ordinal;
        CudaException.Check(Driver.cuDeviceGet(out var dev, ordinal), $"cuDeviceGet({ordinal})");
        Name = DeviceName(dev);
        ComputeMajor = Attr(dev, Driver.AttrComputeCapabilityMajor);
        ComputeMinor = Attr(dev, Driver.AttrComputeCapabilityMinor);
        MultiprocessorCount = Attr(dev, Driver.AttrMultiprocessorCount);
        L2CacheBytes = Attr(dev, Driver.AttrL2CacheSize);
        MaxSharedPerBlockOptin = Attr(dev, Driver.AttrMaxSharedPerBlockOptin);
        CudaException.Check(Driver.cuDeviceTotalMem(out var total, dev), "cuDeviceTotalMem");
        TotalMemoryBytes = (long)total;
        CudaException.Check(Driver.cuDriverGetVersion(out var v), "cuDriverGetVersion");
        DriverVersion = v;
        CudaException.Check(Driver.cuDevicePrimaryCtxRetain(out context, dev), "cuDevicePrimaryCtxRetain");
        Bind();
    }

    /// <summary>Opens GPU <paramref name="ordinal"/>; throws a NibbleException naming the fix when there is no driver or GPU.</summary>
    public static CudaContext Open(int ordinal = 0)
    {
        NativeLibraries.EnsureResolver();
        if (!NativeLibraries.DriverPresent())
            throw new NibbleException("No CUDA driver (libcuda.so.1) was found; install the NVIDIA driver or run on a machine with an NVIDIA GPU.");
        int init = Driver.cuInit(0);
        if (init == 100) // CUDA_ERROR_NO_DEVICE
            throw new NibbleException("The CUDA driver found no GPU; check `nvidia-smi` and CUDA_VISIBLE_DEVICES.");
        CudaException.Check(init, "cuInit");
        CudaException.Check(Driver.cuDeviceGetCount(out var count), "cuDeviceGetCount");
        if (count == 0)
            throw new NibbleException("The CUDA driver found no GPU; check `nvidia-smi` and CUDA_VISIBLE_DEVICES.");
        if (ordinal < 0 || ordinal >= count)
            throw new NibbleException($"GPU {ordinal} does not exist (this machine has {count}); pick an index below {count}.");
        return new CudaContext(ordinal);
    }

    /// <summary>Throws a clear NibbleException unless this GPU can run the W4A8 kernels (Hopper, sm_90).</summary>
    public void RequireHopper(string what = "the W4A8 kernels")
    {
        if (!IsHopperOrNewer)
            throw new NibbleException($"{what} need an NVIDIA Hopper GPU (compute capability 9.0, e.g. H100) but {Name} is {ComputeMajor}.{ComputeMinor}; use the CPU backend or a Hopper GPU.");
    }

    public void Bind()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        CudaException.Check(Driver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
    }

    public void Synchronize()
    {
        Bind();
        CudaException.Check(Driver.cuCtxSynchronize(), "cuCtxSynchronize");
    }

    public (long Free, long Total) MemoryInfo()
    {
        Bind();
        CudaException.Check(Driver.cuMemGetInfo(out var free, out var total), "cuMemGetInfo");
        return ((long)free, (long)total);
    }

    public string DriverVersionText => $"{DriverVersion / 1000}.{DriverVersion % 1000 / 10}";

    static int Attr(int dev, int attr)
    {
        CudaException.Check(Driver.cuDeviceGetAttribute(out var v, attr, dev), $"cuDeviceGetAttribute({attr})");
        return v;
    }

    static unsafe string DeviceName(int dev)
    {
        var buf = stackalloc byte[256];
        CudaException.Check(Driver.cuDeviceGetName(buf, 256, dev), "cuDeviceGetName");
        return Marshal.PtrToStringUTF8((IntPtr)buf) ?? "unknown GPU";
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        Driver.cuDevicePrimaryCtxRelease(Ordinal);
    }
}
