using System.Runtime.InteropServices;

namespace Nibble.Cuda.Tests;

/// <summary>GPU tests skip with a reason where there is no CUDA driver (CI), and run for real on the GPU machine.</summary>
public static class GpuAvailability
{
    public static void RequireGpu() =>
        Assert.SkipUnless(NativeLibrary.TryLoad("libcuda.so.1", out _), "no CUDA driver (libcuda.so.1) on this machine; GPU tests run on the H100 machine");
}
