using System.Runtime.InteropServices;
using Nibble.Cuda;

namespace Nibble.Cli.Commands;

/// <summary>`doctor`'s GPU lines, through Nibble.Cuda: device, compute capability, driver, NVRTC, W4A8 availability.</summary>
static class CudaProbe
{
    public static string Describe() => string.Join("; ", Lines().Select(l => $"{l.Name} {l.Value}"));

    public static IEnumerable<(string Name, string Value)> Lines()
    {
        if (!NativeLibrary.TryLoad("libcuda.so.1", out var handle))
        {
            yield return ("gpu", "no CUDA driver (libcuda.so.1 not found): the CPU backend will be used");
            yield break;
        }
        NativeLibrary.Free(handle);
        CudaContext? ctx = null;
        string? error = null;
        try { ctx = CudaContext.Open(); }
        catch (NibbleException e) { error = e.Message; }
        if (ctx is null) { yield return ("gpu", error ?? "unavailable"); yield break; }
        using (ctx)
        {
            var (free, total) = ctx.MemoryInfo();
            yield return ("gpu", $"{ctx.Name}, compute capability {ctx.ComputeMajor}.{ctx.ComputeMinor}, {ctx.MultiprocessorCount} SMs, {free >> 30}/{total >> 30} GiB free");
            yield return ("driver", $"CUDA {ctx.DriverVersionText}");
            string nvrtc;
            try { nvrtc = "NVRTC " + KernelCache.NvrtcVersion(); }
            catch (NibbleException e) { nvrtc = e.Message; }
            yield return ("nvrtc", nvrtc);
            yield return ("w4a8", ctx.IsHopperOrNewer && nvrtc.StartsWith("NVRTC")
                ? "available (wgmma + mma.sync kernels, sm_90a)"
                : ctx.IsHopperOrNewer ? "unavailable: " + nvrtc : $"unavailable: needs a Hopper GPU (sm_90), this one is {ctx.Arch}");
        }
    }
}
