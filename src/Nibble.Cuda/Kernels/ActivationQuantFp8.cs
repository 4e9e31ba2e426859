using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>Dynamic per-token FP8 activation quantization (ActivationQuantFp8.cu); CPU twin: <see cref="Reference"/>.</summary>
public static class ActivationQuantFp8
{
    [StructLayout(LayoutKind.Sequential)]
    struct Params { public ulong X, X8, TokenScale; public int M, K; }

    public static void Run(KernelCache kernels, CudaStream stream, DeviceBuffer<ushort> xBf16, DeviceBuffer<byte> x8, DeviceBuffer<float> tokenScale, int m, int k)
    {
        if (k % 8 != 0) throw new NibbleException($"Activation width K={k} is not a multiple of 8; pad the hidden size to a multiple of 8.");
        if (xBf16.Length < (long)m * k || x8.Length < (long)m * k || tokenScale.Length < m)
            throw new ArgumentException("activation buffers are smaller than M x K");
        if (m == 0) return;
        var f = kernels.Load("ActivationQuantFp8.cu").Function("act_quant_fp8");
        f.Launch(stream, ((uint)m, 1, 1), 256, new Params { X = xBf16.Pointer, X8 = x8.Pointer, TokenScale = tokenScale.Pointer, M = m, K = k });
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
}
