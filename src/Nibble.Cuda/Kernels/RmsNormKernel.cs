using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>Row-wise RMSNorm, optionally fused with the residual add (RmsNorm.cu).</summary>
public static class RmsNormKernel
{
    [StructLayout(LayoutKind.Sequential)]
    struct Params { public ulong X, Delta, Weight, Out; public int Dim, WeightBf16; public float Eps; public int Pad; }

    /// <summary>out = RMSNorm(x (+= delta when delta != 0)) over rows of <paramref name="dim"/>; out may alias x.</summary>
    public static void Run(KernelCache kernels, CudaStream stream, ulong x, ulong delta, ulong weight, bool weightBf16, float eps, ulong output, int rows, int dim)
    {
        if (rows == 0) return;
        // Enough threads for ~4 columns each, a whole number of warps, at most 1024.
        uint threads = (uint)Math.Clamp((dim / 4 + 31) / 32 * 32, 32, 1024);
        kernels.Load("RmsNorm.cu").Function("rms_norm").Launch(stream, ((uint)rows, 1, 1), threads,
            new Params { X = x, Delta = delta, Weight = weight, Out = output, Dim = dim, WeightBf16 = weightBf16 ? 1 : 0, Eps = eps });
    }
}
