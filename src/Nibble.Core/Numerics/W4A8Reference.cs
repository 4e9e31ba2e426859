using System.Runtime.Intrinsics;

namespace Nibble.Numerics;

/// <summary>
/// CPU reference of the W4A8 linear layer, the numerics contract of spec §3/§6 that the GPU kernels are tested against:
/// <code>Y[m,n] = bf16( c'[n] · (s_tok[m] · Σ_k x8[m,k] · e4m3(q[n,k] · σ[n, k/G])) + bias[n] )</code>
/// <list type="bullet">
/// <item>x8, s_tok: <see cref="TokenScale"/> (division, clamp, RNE); pass bf16-representable activations to match a
/// GPU run on bf16 inputs.</item>
/// <item>e4m3(q·σ): the satfinite product the LUT conversion yields (<see cref="ScaleLut"/>; exact-value equal for all
/// codes), σ and c' from <see cref="ScaleRecovery"/>.</item>
/// <item>Each product x8·w8 is exact in FP32 (two 4-significant-bit values); the sum is taken in double, which is exact
/// for any realistic K (the products span at most ~2^-36..2^17), so the reference has no summation-order error. The
/// GPU's FP32 WGMMA accumulator differs from it only by its own rounding.</item>
/// <item>Epilogue in FP32 as vLLM's ScaledEpilogue: (float)acc · s_tok, then · c'. Bias (optional) is added in FP32
/// before the one bf16 rounding; vLLM adds it after (a second bf16 rounding), at most one bf16 ulp apart.</item>
/// </list>
/// </summary>
public static class W4A8Reference
{
    /// <summary>Y (bf16 bits, [m, n]) from float activations x [m, k], quantized inside with <see cref="TokenScale"/>.</summary>
    public static ushort[] Gemm(ReadOnlySpan<float> x, int m, W4A8Weights weights, ReadOnlySpan<float> bias = default)
    {
        var (x8, tokenScale) = TokenScale.Quantize(x, m, weights.K);
        return Gemm(x8, tokenScale, m, weights, bias);
    }

    /// <summary>Y (bf16 bits, [m, n]) from pre-quantized activations x8 [m, k] (e4m3 codes) and FP32 token scales [m].</summary>
    public static ushort[] Gemm(ReadOnlySpan<byte> x8, ReadOnlySpan<float> tokenScale, int m, W4A8Weights weights, ReadOnlySpan<float> bias = default)
    {
        var acc = Accumulate(x8, tokenScale, m, weights);
        int n = weights.N;
        if (!bias.IsEmpty && bias.Length != n) throw new ArgumentException($"Bias has {bias.Length} values, expected {n}.", nameof(bias));
        var y = new ushort[(long)m * n];
        for (int r = 0; r < m; r++)
            for (int c = 0; c < n; c++)
            {
                float value = weights.Scales.ChannelScale[c] * (tokenScale[r] * (float)acc[(long)r * n + c]);
                if (!bias.IsEmpty) value += bias[c];
                y[(long)r * n + c] = BFloat16.FromFloat(value);
            }
        return y;
    }

    /// <summary>The raw accumulator Σ_k x8·w8 [m, n] in double (exact), before any scale: for kernel-level checks.</summary>
    public static double[] Accumulate(ReadOnlySpan<byte> x8, ReadOnlySpan<float> tokenScale, int m, W4A8Weights weights)
    {
        int n = weights.N, k = weights.K;
        if (x8.Length != (long)m * k) throw new ArgumentException($"Expected {m}·{k} activation codes, got {x8.Length}.", nameof(x8));
        if (tokenScale.Length != m) throw new ArgumentException($"Expected {m} token scales, got {tokenScale.Length}.", nameof(tokenScale));
        var xd = new double[(long)m * k];
        for (int i = 0; i < xd.Length; i++) xd[i] = Fp8E4M3.Decode(x8[i]);
        var acc = new double[(long)m * n];
        Parallel.For(0, n, () => new double[k], (c, _, wRow) =>
        {
            weights.DequantizeRowFp8(c, wRow);
            for (int r = 0; r < m; r++) acc[(long)r * n + c] = Dot(xd.AsSpan(r * k, k), wRow);
            return wRow;
        }, _ => { });
        return acc;
    }

    internal static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        int i = 0, len = a.Length;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && len >= 8)
        {
            var s0 = Vector256<double>.Zero;
            var s1 = Vector256<double>.Zero;
            for (; i + 8 <= len; i += 8)
            {
                s0 += Vector256.Create(a.Slice(i, 4)) * Vector256.Create(b.Slice(i, 4));
                s1 += Vector256.Create(a.Slice(i + 4, 4)) * Vector256.Create(b.Slice(i + 4, 4));
            }
            sum = Vector256.Sum(s0 + s1);
        }
        for (; i < len; i++) sum += a[i] * b[i];
        return sum;
    }
}

/// <summary>
/// Weights as the W4A8 GEMM consumes them: signed int4 q [N, K], FP8 group scales σ [N, K/G] and FP32 channel
/// scales c' [N] (<see cref="RecoveredScales"/>), group size G (128, or K for channel-wise).
/// </summary>
public sealed record W4A8Weights
{
    public sbyte[] Q { get; }
    public int N { get; }
    public int K { get; }
    public int GroupSize { get; }
    public RecoveredScales Scales { get; }

    public W4A8Weights(sbyte[] q, int n, int k, int groupSize, RecoveredScales scales)
    {
        if (groupSize <= 0 || k % groupSize != 0)
            throw new NibbleException($"Group size {groupSize} does not divide K = {k}; use a group size that divides the input features (or K for channel-wise).");
        if (q.Length != (long)n * k) throw new ArgumentException($"Expected {n}·{k} int4 values, got {q.Length}.", nameof(q));
        if (scales.N != n || scales.Groups != k / groupSize)
            throw new ArgumentException($"Scales are [{scales.N}, {scales.Groups}] but the weight needs [{n}, {k / groupSize}].", nameof(scales));
        (Q, N, K, GroupSize, Scales) = (q, n, k, groupSize, scales);
    }

    /// <summary>From W4A16 weights (bf16 group scales) through scale recovery.</summary>
    public static W4A8Weights FromW4A16(QuantizedLinearWeights w, ScaleRecoveryMode mode = ScaleRecoveryMode.Recovered) =>
        new(w.Q, w.N, w.K, w.GroupSize, w.RecoverScales(mode));

    /// <summary>Row n of the FP8 weight e4m3_satfinite(q·σ) (without c').</summary>
    public void DequantizeRowFp8(int n, Span<double> row)
    {
        int groups = K / GroupSize;
        Span<double> table = stackalloc double[16];
        for (int g = 0; g < groups; g++)
        {
            float sigma = Fp8E4M3.Decode(Scales.GroupScales[n * groups + g]);
            for (int q = -8; q <= 7; q++) table[q + 8] = Fp8E4M3.Decode(Fp8E4M3.EncodeSatFinite(q * sigma));
            int start = g * GroupSize;
            for (int k = start; k < start + GroupSize; k++) row[k] = table[Q[(long)n * K + k] + 8];
        }
    }
}
