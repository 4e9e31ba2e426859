namespace Nibble.Numerics;

/// <summary>
/// CPU reference of the W4A16 linear layer as a BF16 tensor-core kernel computes it:
/// <code>Y[m,n] = bf16( Σ_k bf16(x[m,k]) · bf16(q[n,k] · S[n, k/G]) + bias[n] )</code>
/// What is rounded where: the activation to bf16; the dequantized weight q·S (exact in FP32) to bf16, as the kernel
/// materialises it in a bf16 register before the MMA; each bf16·bf16 product is exact in FP32; the sum is taken in
/// double (exact for realistic K, no summation-order error; the GPU's FP32 accumulation differs by its own rounding
/// only); bias (optional) added in FP32; one final bf16 rounding.
/// </summary>
public static class W4A16Reference
{
    /// <summary>Y (bf16 bits, [m, n]) from activations x [m, k].</summary>
    public static ushort[] Gemm(ReadOnlySpan<float> x, int m, QuantizedLinearWeights weights, ReadOnlySpan<float> bias = default)
    {
        int n = weights.N, k = weights.K;
        if (x.Length != (long)m * k) throw new ArgumentException($"Expected {m}·{k} activations, got {x.Length}.", nameof(x));
        if (!bias.IsEmpty && bias.Length != n) throw new ArgumentException($"Bias has {bias.Length} values, expected {n}.", nameof(bias));
        var xd = new double[(long)m * k];
        for (int i = 0; i < xd.Length; i++) xd[i] = BFloat16.Round(x[i]);
        var acc = new double[(long)m * n];
        Parallel.For(0, n, () => new double[k], (c, _, wRow) =>
        {
            for (int kk = 0; kk < k; kk++)
                wRow[kk] = BFloat16.Round(weights.Q[(long)c * k + kk] * weights.Scale(c, kk / weights.GroupSize));
            for (int r = 0; r < m; r++) acc[(long)r * n + c] = W4A8Reference.Dot(xd.AsSpan(r * k, k), wRow);
            return wRow;
        }, _ => { });
        var y = new ushort[acc.Length];
        for (int r = 0; r < m; r++)
            for (int c = 0; c < n; c++)
            {
                float value = (float)acc[(long)r * n + c];
                if (!bias.IsEmpty) value += bias[c];
                y[(long)r * n + c] = BFloat16.FromFloat(value);
            }
        return y;
    }
}
