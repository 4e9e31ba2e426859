using Nibble.Cuda;

[assembly: CollectionBehavior(CollectionBehavior.CollectionPerAssembly)]

namespace Nibble.Cuda.Tests;

/// <summary>One context, kernel cache and stream shared by all GPU tests (created on first use, after RequireGpu).</summary>
public static class Gpu
{
    static readonly Lazy<(CudaContext Context, KernelCache Kernels, CudaStream Stream)> shared = new(() =>
    {
        var ctx = CudaContext.Open();
        return (ctx, new KernelCache(ctx), CudaStream.Create(ctx));
    });

    public static CudaContext Context => shared.Value.Context;
    public static KernelCache Kernels => shared.Value.Kernels;
    public static CudaStream Stream => shared.Value.Stream;

    /// <summary>Skips unless there is a GPU, and also unless it is a Hopper (the W4A8 kernels use sm_90 features).</summary>
    public static void RequireHopper()
    {
        GpuAvailability.RequireGpu();
        Assert.SkipUnless(Context.IsHopperOrNewer, $"W4A8 kernels need sm_90; this GPU is {Context.Arch}");
    }
}
