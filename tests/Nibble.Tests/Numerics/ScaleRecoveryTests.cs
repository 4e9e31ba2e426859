using Nibble.Numerics;

namespace Nibble.Tests.Numerics;

public class ScaleRecoveryTests
{
    static ushort[] Bf16(params float[] values) => values.Select(BFloat16.FromFloat).ToArray();

    [Fact]
    public void The_row_max_group_becomes_56_and_the_channel_scale_carries_the_factor_8()
    {
        var scales = Bf16(0.02f, 0.01f, 0.005f, 0.0025f);
        var r = ScaleRecovery.Recover(scales, 1, 4);
        float c = BFloat16.Round(0.02f) / 448f;
        Assert.Equal(8f * c, r.ChannelScale[0]);
        Assert.Equal(56f, r.Sigma(0, 0));
        Assert.Equal(28f, r.Sigma(0, 1)); // exact halvings stay exact
        Assert.Equal(14f, r.Sigma(0, 2));
        Assert.Equal(7f, r.Sigma(0, 3));
    }

    [Fact]
    public void Random_rows_keep_sigma_at_most_56_and_recover_the_bf16_scale_within_one_fp8_rounding()
    {
        var rng = new Random(4);
        int n = 37, groups = 11;
        var s = Enumerable.Range(0, n * groups).Select(_ => BFloat16.FromFloat((float)(Math.Pow(10, -1 - 2 * rng.NextDouble()) * (rng.Next(10) == 0 ? -1 : 1)))).ToArray();
        var r = ScaleRecovery.Recover(s, n, groups);
        for (int row = 0; row < n; row++)
        {
            double rowMax = Enumerable.Range(0, groups).Max(g => Math.Abs(BFloat16.ToFloat(s[row * groups + g])));
            Assert.Equal((float)(Math.Max(rowMax / 448, 1 / 229376.0) * 8), r.ChannelScale[row], 1e-6f * r.ChannelScale[row]);
            for (int g = 0; g < groups; g++)
            {
                double original = BFloat16.ToFloat(s[row * groups + g]);
                double sigma = r.Sigma(row, g);
                Assert.True(Math.Abs(sigma) <= 56);
                double ratio = Math.Abs(original) / rowMax * 448; // σ1 before rounding
                if (ratio >= 0.125)
                    Assert.True(Math.Abs(r.ChannelScale[row] * sigma - original) <= Math.Abs(original) / 16 * 1.0001, $"{original} vs {r.ChannelScale[row] * sigma}");
            }
        }
    }

    [Fact]
    public void Groups_far_below_the_row_max_lose_precision_and_flush_to_zero()
    {
        // σ1 = 448·S/max: 2^-8 → σ = 2^-11 rounds to 0 (below half the smallest subnormal 2^-9).
        float max = 1f;
        var r = ScaleRecovery.Recover(Bf16(max, max * MathF.ScaleB(1, -8) / 448f * 1, max * 0.001f), 1, 3);
        Assert.Equal(0f, r.Sigma(0, 1));
        // 0.001·448 = 0.448 → e4m3 0.4375 → /8 = 0.0546875 (normal: exact shift).
        Assert.Equal(0.0546875f, r.Sigma(0, 2));
    }

    [Fact]
    public void Naive_mode_casts_the_bf16_scale_directly_with_channel_scale_one()
    {
        var s = Bf16(0.3125f, 0.003f, 60f, 1000f);
        var r = ScaleRecovery.Recover(s, 2, 2, ScaleRecoveryMode.Naive);
        Assert.Equal([1f, 1f], r.ChannelScale);
        Assert.Equal(0.3125f, r.Sigma(0, 0));
        Assert.Equal(0.00390625f, r.Sigma(0, 1)); // 0.003 = 1.54 subnormal steps of 2^-9 → 2·2^-9
        Assert.Equal(60f, r.Sigma(1, 0));
        Assert.True(float.IsNaN(r.Sigma(1, 1)));    // torch cast of an out-of-range value
    }
}
