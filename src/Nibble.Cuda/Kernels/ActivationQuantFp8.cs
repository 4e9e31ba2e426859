using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>Dynamic per-token FP8 activation quantization (ActivationQuantFp8.cu); CPU twin: <see cref="Reference"/>.</summary>
public static class ActivationQuantFp8
{
    [StructLayout(LayoutKind.Sequential)]
    struct Params { public ulong X, X8, TokenScale; public int M, K, GemmOrder, Pad; }

    /// <summary>Quantizes bf16 [M, K] rows; <paramref name="gemmOrder"/> writes x8 permuted inside 64-wide blocks as the W4A8 GEMM reads it.</summary>
    public static void Run(KernelCache kernels, CudaStream stream, DeviceBuffer<ushort> xBf16, DeviceBuffer<byte> x8, DeviceBuffer<float> tokenScale, int m, int k,
        bool gemmOrder = false)
    {
        if (gemmOrder && k % 64 != 0) throw new NibbleException($"W4A8 activations need K to be a multiple of 64 but K={k}; keep this layer in BF16.");
        if (k % 8 != 0) throw new NibbleException($"Activation width K={k} is not a multiple of 8; pad the hidden size to a multiple of 8.");
        if (xBf16.Length < (long)m * k || x8.Length < (long)m * k || tokenScale.Length < m)
            throw new ArgumentException("activation buffers are smaller than M x K");
        if (m == 0) return;
        var f = kernels.Load("ActivationQuantFp8.cu").Function("act_quant_fp8");
        f.Launch(stream, ((uint)m, 1, 1), 256, new Params { X = xBf16.Pointer, X8 = x8.Pointer, TokenScale = tokenScale.Pointer, M = m, K = k, GemmOrder = gemmOrder ? 1 : 0 });
    }

    /// <summary>s = max(absmax/448, 1/(448*512)); x8 = e4m3(clamp(x / s, -448, 448)), per row.</summary>
    public static void Reference(ReadOnlySpan<ushort> x, int m, int k, Span<byte> x8, Span<float> tokenScale)
    {
        for (int r = 0; r < m; r++)
        {
            var row = x.Slice(r * k, k);
            float amax = 0;
            foreach (var v in row) amax = MathF.Max(amax, MathF.Abs(HostNumerics.Bf16ToFloat(v)));
            float s = MathF.Max(amax / 448f, 1f / (448f * 512f));
            tokenScale[r] = s;
            for (int c = 0; c < k; c++)
                x8[r * k + c] = HostNumerics.EncodeE4M3(Math.Clamp(HostNumerics.Bf16ToFloat(row[c]) / s, -448f, 448f));
        }
    }

    /// <summary>Position of physical k inside a 64-wide block in the W4A8 GEMM order: 16t + 8s + 4h + j → 32s + 16h + 4t + j.</summary>
    public static int GemmOrderPosition(int k)
    {
        int c = k & 63, t = c >> 4, s = (c >> 3) & 1, h = (c >> 2) & 1, j = c & 3;
        return (k - c) + 32 * s + 16 * h + 4 * t + j;
    }

    /// <summary>Natural-order x8 [M, K] → GEMM order (CPU twin of gemmOrder).</summary>
    public static byte[] ToGemmOrder(ReadOnlySpan<byte> x8, int m, int k)
    {
        var o = new byte[(long)m * k];
        for (int r = 0; r < m; r++)
            for (int c = 0; c < k; c++) o[(long)r * k + GemmOrderPosition(c)] = x8[r * k + c];
        return o;
    }
}
