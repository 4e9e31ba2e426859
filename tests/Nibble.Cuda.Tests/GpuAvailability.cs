using System.Runtime.InteropServices;

namespace Nibble.Cuda.Tests;

/// <summary>GPU tests skip with a reason where there is no CUDA driver or GPU (CI), and run for real on the GPU machine.</summary>
public static class GpuAvailability
{
    static readonly Lazy<string?> reason = new(() =>
    {
        if (!NativeLibrary.TryLoad("libcuda.so.1", out _)) return "no CUDA driver (libcuda.so.1) on this machine; GPU tests run on the H100 machine";
        try { _ = Gpu.Context; return null; }
        catch (NibbleException e) { return "no usable GPU: " + e.Message; }
    });

    public static void RequireGpu() => Assert.SkipWhen(reason.Value is not null, reason.Value ?? "");
}
