using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>The conversions around the cuBLASLt BF16 GEMM of unquantized linears (DenseMatMul.cu).</summary>
public static class DenseMatMulKernel
{
    [StructLayout(LayoutKind.Sequential)]
    struct SplitParams { public ulong X, Out; public long N; public int Split, Pad; }

    [StructLayout(LayoutKind.Sequential)]
    struct CombineParams { public ulong Y, Bias, Out; public long N; public int Cols, Split, BiasBf16, Pad; }

    /// <summary>bf16 rows of x [M, K] into out: hi in rows [0, M) and, when <paramref name="split"/>, the remainder lo in [M, 2M).</summary>
    public static void Split(KernelCache kernels, CudaStream stream, ulong x, ulong output, long n, bool split)
    {
        if (n == 0) return;
        kernels.Load("DenseMatMul.cu").Function("split_bf16").Launch(stream, (ElementwiseKernel.Blocks(n), 1, 1), 256,
            new SplitParams { X = x, Out = output, N = n, Split = split ? 1 : 0 });
    }

    /// <summary>out[m, n] = y[m, n] (+ y[M + m, n]) (+ bias[n]).</summary>
    public static void Combine(KernelCache kernels, CudaStream stream, ulong y, ulong bias, bool biasBf16, ulong output, long n, int cols, bool split)
    {
        if (n == 0) return;
        kernels.Load("DenseMatMul.cu").Function("combine").Launch(stream, (ElementwiseKernel.Blocks(n), 1, 1), 256,
            new CombineParams { Y = y, Bias = bias, Out = output, N = n, Cols = cols, Split = split ? 1 : 0, BiasBf16 = biasBf16 ? 1 : 0 });
    }
}
