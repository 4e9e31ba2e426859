using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>
/// The glue between the backend's F32 activations and the bf16-in/bf16-out quantized GEMMs (QuantLinearIo.cu):
/// per-token FP8 quantization from F32 (CPU twin: <c>Nibble.Numerics.TokenScale.QuantizeRow</c>, so codes match the
/// CPU W4A8Linear exactly) and bf16 → F32 (+ bias). F32 → bf16 is <see cref="DenseMatMulKernel.Split"/>.
/// </summary>
public static class QuantLinearIoKernel
{
    [StructLayout(LayoutKind.Sequential)]
    struct ActQuantParams { public ulong X, X8, TokenScale; public int M, K, GemmOrder, Pad; }

    [StructLayout(LayoutKind.Sequential)]
    struct Bf16ToF32Params { public ulong Y, Bias, Output; public long N; public int Cols, Pad; }

    /// <summary>Quantizes F32 rows x [M, K] at <paramref name="x"/> into x8 (GEMM order when asked) and s_tok [M].</summary>
    public static void ActivationQuantFp8F32(KernelCache kernels, CudaStream stream, ulong x, DeviceBuffer<byte> x8, DeviceBuffer<float> tokenScale,
        int m, int k, bool gemmOrder)
    {
        if (gemmOrder && k % 64 != 0) throw new NibbleException($"W4A8 activations need K to be a multiple of 64 but K={k}; keep this layer in BF16.");
        if (k % 4 != 0) throw new NibbleException($"Activation width K={k} is not a multiple of 4; pad the hidden size to a multiple of 8.");
        if (x8.Length < (long)m * k || tokenScale.Length < m) throw new ArgumentException("activation buffers are smaller than M x K");
        if (m == 0) return;
        kernels.Load("QuantLinearIo.cu").Function("act_quant_fp8_f32").Launch(stream, ((uint)m, 1, 1), 256,
            new ActQuantParams { X = x, X8 = x8.Pointer, TokenScale = tokenScale.Pointer, M = m, K = k, GemmOrder = gemmOrder ? 1 : 0 });
    }

    /// <summary>output[m, n] = float(y[m, n]) + bias[n] (bias = 0 for none), F32 output of <paramref name="n"/> = M·N values.</summary>
    public static void Bf16ToF32(KernelCache kernels, CudaStream stream, ulong y, ulong bias, ulong output, long n, int cols)
    {
        if (n == 0) return;
        kernels.Load("QuantLinearIo.cu").Function("bf16_to_f32_bias").Launch(stream, (ElementwiseKernel.Blocks(n), 1, 1), 256,
            new Bf16ToF32Params { Y = y, Bias = bias, Output = output, N = n, Cols = cols });
    }
}
