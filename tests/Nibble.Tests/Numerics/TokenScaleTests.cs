using Nibble.Numerics;

namespace Nibble.Tests.Numerics;

public class TokenScaleTests
{
    [Fact]
    public void A_hand_checked_row_maps_its_absmax_to_448()
    {
        float[] row = [1f, -2f, 0.5f, 0f, 0.01f];
        var x8 = new byte[row.Length];
        float s = TokenScale.QuantizeRow(row, x8);
        Assert.Equal(2f / 448f, s);
        Assert.Equal(224f, Fp8E4M3.Decode(x8[0]));
        Assert.Equal(-448f, Fp8E4M3.Decode(x8[1]));
        Assert.Equal(112f, Fp8E4M3.Decode(x8[2]));
        Assert.Equal(0f, Fp8E4M3.Decode(x8[3]));
        Assert.Equal(2.25f, Fp8E4M3.Decode(x8[4])); // 0.01·224 = 2.24 → nearest e4m3 is 2.25
    }

    [Fact]
    public void An_all_zero_row_gets_the_minimum_scale()
    {
        var x8 = new byte[7];
        float s = TokenScale.QuantizeRow(new float[7], x8);
        Assert.Equal(1f / 229376f, s);
        Assert.All(x8, b => Assert.Equal(0, b));
        // A tiny row is floored too: −1e-7 / (1/229376) = −0.02294 → e4m3 −1.5·2^-6.
        float[] tiny = [1e-9f, -1e-7f];
        s = TokenScale.QuantizeRow(tiny, x8);
        Assert.Equal(TokenScale.MinScale, s);
        Assert.Equal(-0.0234375f, Fp8E4M3.Decode(x8[1]));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 17)]
    [InlineData(33, 130)]
    public void Random_rows_reconstruct_within_fp8_precision_and_match_the_row_api(int m, int k)
    {
        var rng = new Random(m * 31 + k);
        var x = Enumerable.Range(0, m * k).Select(_ => (float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-3, 3)))).ToArray();
        var (x8, scales) = TokenScale.Quantize(x, m, k);
        for (int r = 0; r < m; r++)
        {
            var row = x.AsSpan(r * k, k);
            float absMax = 0;
            foreach (var v in row) absMax = Math.Max(absMax, Math.Abs(v));
            Assert.Equal(Math.Max(absMax / 448f, TokenScale.MinScale), scales[r]);
            var rowCodes = new byte[k];
            Assert.Equal(scales[r], TokenScale.QuantizeRow(row, rowCodes));
            Assert.Equal(rowCodes, x8.AsSpan(r * k, k).ToArray());
            for (int c = 0; c < k; c++)
            {
                double q = x[r * k + c] / scales[r];
                double decoded = Fp8E4M3.Decode(x8[r * k + c]);
                Assert.True(Math.Abs(decoded) <= 448);
                // Normal range: half an ulp of 3 mantissa bits ≤ 1/16 relative; subnormal range: ≤ 2^-10 absolute.
                Assert.True(Math.Abs(decoded - q) <= Math.Max(Math.Abs(q) / 16, Math.ScaleB(1.0, -10)) * 1.0001, $"{q} -> {decoded}");
            }
        }
    }

    [Fact]
    public void Division_and_reciprocal_multiplication_differ_by_at_most_one_code_and_rarely()
    {
        var rng = new Random(8);
        int m = 64, k = 512;
        var x = Enumerable.Range(0, m * k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var (a, sa) = TokenScale.Quantize(x, m, k, ScaleApplication.Divide);
        var (b, sb) = TokenScale.Quantize(x, m, k, ScaleApplication.MultiplyByReciprocal);
        Assert.Equal(sa, sb);
        int different = 0;
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] == b[i]) continue;
            different++;
            Assert.Equal(a[i] & 0x80, b[i] & 0x80);
            Assert.Equal(1, Math.Abs((a[i] & 0x7F) - (b[i] & 0x7F)));
        }
        Assert.True(different < a.Length / 100, $"{different} of {a.Length} codes differ");
    }
}
