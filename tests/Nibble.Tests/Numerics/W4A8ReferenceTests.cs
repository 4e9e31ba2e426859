using Nibble.Numerics;

namespace Nibble.Tests.Numerics;

public class W4A8ReferenceTests
{
    internal static QuantizedLinearWeights RandomW4A16(Random rng, int n, int k, int groupSize, double scaleMagnitude = 0.01)
    {
        var q = Enumerable.Range(0, n * k).Select(_ => (sbyte)rng.Next(-8, 8)).ToArray();
        var s = Enumerable.Range(0, n * (k / groupSize))
            .Select(_ => BFloat16.FromFloat((float)(scaleMagnitude * (0.05 + rng.NextDouble())))).ToArray();
        return new QuantizedLinearWeights(q, s, n, k, groupSize);
    }

    internal static float[] RandomBf16Activations(Random rng, int count) =>
        Enumerable.Range(0, count).Select(_ => BFloat16.Round((float)((rng.NextDouble() * 2 - 1) * (rng.Next(50) == 0 ? 20 : 1)))).ToArray();

    /// <summary>The contract written out as a plain triple loop; weights go through the 3-PRMT LUT emulation.</summary>
    static ushort[] Naive(float[] x, int m, QuantizedLinearWeights w16, float[]? bias)
    {
        int n = w16.N, k = w16.K;
        var rec = w16.RecoverScales();
        var y = new ushort[m * n];
        for (int r = 0; r < m; r++)
        {
            float absMax = 0;
            for (int i = 0; i < k; i++) absMax = Math.Max(absMax, Math.Abs(x[r * k + i]));
            float s = Math.Max(absMax / 448f, 1f / 229376f);
            for (int c = 0; c < n; c++)
            {
                double acc = 0;
                for (int i = 0; i < k; i++)
                {
                    double xq = Fp8E4M3.Decode(Fp8E4M3.EncodeSatFinite(Math.Clamp(x[r * k + i] / s, -448f, 448f)));
                    byte sigma = rec.GroupScales[c * (k / w16.GroupSize) + i / w16.GroupSize];
                    byte w8 = (byte)ScaleLut.Convert((uint)Int4Packing.UnifiedEncode(w16.Q[c * k + i]), ScaleLut.Negative(sigma));
                    acc += xq * Fp8E4M3.Decode(w8);
                }
                float v = rec.ChannelScale[c] * (s * (float)acc) + (bias?[c] ?? 0f);
                y[r * n + c] = BFloat16.FromFloat(v);
            }
        }
        return y;
    }

    [Theory]
    [InlineData(1, 1, 8, 8)]
    [InlineData(3, 5, 128, 128)]
    [InlineData(7, 13, 256, 128)]
    [InlineData(5, 9, 384, 384)]
    [InlineData(2, 3, 40, 8)]
    [InlineData(17, 31, 520, 40)]
    public void Gemm_equals_a_naive_triple_loop_bit_for_bit(int m, int n, int k, int groupSize)
    {
        var rng = new Random(m * 7919 + n * 31 + k);
        var w16 = RandomW4A16(rng, n, k, groupSize);
        var x = RandomBf16Activations(rng, m * k);
        var bias = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
        var w8 = W4A8Weights.FromW4A16(w16);
        Assert.Equal(Naive(x, m, w16, null), W4A8Reference.Gemm(x, m, w8));
        Assert.Equal(Naive(x, m, w16, bias), W4A8Reference.Gemm(x, m, w8, bias));

        var (x8, scales) = TokenScale.Quantize(x, m, k);
        Assert.Equal(W4A8Reference.Gemm(x, m, w8), W4A8Reference.Gemm(x8, scales, m, w8));
    }

    [Fact]
    public void Weights_from_a_packed_checkpoint_give_the_same_output()
    {
        var rng = new Random(5);
        var w16 = RandomW4A16(rng, 6, 256, 128);
        var fromPacked = QuantizedLinearWeights.FromPacked(w16.PackUint4b8(), w16.ScalesBf16, 6, 256, 128);
        var x = RandomBf16Activations(rng, 3 * 256);
        Assert.Equal(W4A8Reference.Gemm(x, 3, W4A8Weights.FromW4A16(w16)), W4A8Reference.Gemm(x, 3, W4A8Weights.FromW4A16(fromPacked)));
    }

    static double RelativeFrobenius(ushort[] a, ushort[] b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = BFloat16.ToFloat(a[i]) - BFloat16.ToFloat(b[i]);
            num += d * d;
            den += (double)BFloat16.ToFloat(b[i]) * BFloat16.ToFloat(b[i]);
        }
        return Math.Sqrt(num / den);
    }

    [Fact]
    public void Recovered_scales_track_w4a16_closely_and_far_better_than_a_naive_scale_cast()
    {
        // Typical int4 group scales (~1e-3) lie below the e4m3 normal range: the direct cast loses most precision (spec §5).
        var rng = new Random(9);
        int m = 8, n = 64, k = 512;
        var w16 = RandomW4A16(rng, n, k, 128, scaleMagnitude: 0.002);
        var x = RandomBf16Activations(rng, m * k);
        var reference = W4A16Reference.Gemm(x, m, w16);
        double recovered = RelativeFrobenius(W4A8Reference.Gemm(x, m, W4A8Weights.FromW4A16(w16, ScaleRecoveryMode.Recovered)), reference);
        double naive = RelativeFrobenius(W4A8Reference.Gemm(x, m, W4A8Weights.FromW4A16(w16, ScaleRecoveryMode.Naive)), reference);
        Assert.True(recovered < 0.06, $"recovered error {recovered}");
        Assert.True(naive > 2 * recovered, $"naive {naive} vs recovered {recovered}");
    }

    [Fact]
    public void A_group_size_that_does_not_divide_k_is_a_clear_error()
    {
        var ex = Assert.Throws<NibbleException>(() => new QuantizedLinearWeights(new sbyte[200], new ushort[2], 1, 200, 128));
        Assert.Contains("Group size 128", ex.Message);
    }
}
