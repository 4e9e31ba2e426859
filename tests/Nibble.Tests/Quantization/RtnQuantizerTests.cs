using Nibble.Numerics;
using Nibble.Quantization;

namespace Nibble.Tests.Quantization;

public class RtnQuantizerTests
{
    [Fact]
    public void A_hand_checked_group_rounds_half_to_even_and_produces_minus_8()
    {
        // absmax 3.75 → scale 3.75 / 7.5 = 0.5 exactly; ratios 7.5, −7.5, 2.5, −0.5, 1.5, 0, 4, −2.
        float[] w = [3.75f, -3.75f, 1.25f, -0.25f, 0.75f, 0f, 2f, -1f];
        var q = RtnQuantizer.QuantizeWeight("layer", w, 1, 8, 8);
        Assert.Equal(0.5f, q.Scale(0, 0));
        Assert.Equal(new sbyte[] { 7, -8, 2, 0, 2, 0, 4, -2 }, q.Q);
    }

    [Fact]
    public void The_quotient_is_rounded_to_bf16_before_round_as_torch_does_on_bf16_tensors()
    {
        // scale = bf16(1.0234375 / 7.5) = 0.13671875; 1.0234375 / 0.13671875 = 7.4857 (→ 7 in FP32) but bf16 → 7.5 → 8 → 7,
        // and the negative side −7.5 → −8.
        float[] w = [1.0234375f, -1.0234375f, 0.5f, 0f, 0f, 0f, 0f, 0f];
        var q = RtnQuantizer.QuantizeWeight("layer", w, 1, 8, 8);
        Assert.Equal(0.13671875f, q.Scale(0, 0));
        Assert.Equal(7, q.Q[0]);
        Assert.Equal(-8, q.Q[1]);
        Assert.Equal(4, q.Q[2]); // 0.5 / 0.13671875 = 3.657 → bf16 3.65625 → 4
    }

    [Fact]
    public void An_all_zero_group_gets_the_bf16_eps_scale_and_zero_codes()
    {
        var q = RtnQuantizer.QuantizeWeight("layer", new float[16], 2, 8, 8);
        Assert.All(q.ScalesBf16, s => Assert.Equal(0.0078125f, BFloat16.ToFloat(s)));
        Assert.All(q.Q, v => Assert.Equal(0, v));
    }

    [Theory]
    [InlineData(5, 256, 128)]
    [InlineData(3, 96, 96)]
    [InlineData(7, 64, 16)]
    public void Random_weights_reconstruct_within_half_a_step_and_groups_are_independent(int n, int k, int groupSize)
    {
        var rng = new Random(n * k + groupSize);
        var w = Enumerable.Range(0, n * k).Select(_ => BFloat16.Round((float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-3, 1))))).ToArray();
        var q = RtnQuantizer.QuantizeWeight("layer", w, n, k, groupSize);
        int minusEight = 0;
        for (int r = 0; r < n; r++)
            for (int g = 0; g < k / groupSize; g++)
            {
                var group = w.AsSpan(r * k + g * groupSize, groupSize);
                float absMax = 0;
                foreach (var v in group) absMax = Math.Max(absMax, Math.Abs(v));
                float scale = q.Scale(r, g);
                Assert.Equal(BFloat16.Round(absMax / 7.5f), scale);
                // Each group alone quantizes the same way (no leakage across groups or rows).
                var alone = RtnQuantizer.QuantizeWeight("g", group.ToArray(), 1, groupSize, groupSize);
                Assert.Equal(alone.Q, q.Q.AsSpan(r * k + g * groupSize, groupSize).ToArray());
                for (int i = 0; i < groupSize; i++)
                {
                    int code = q.Q[r * k + g * groupSize + i];
                    if (code == -8) minusEight++;
                    // Half a step, plus the bf16 rounding of the quotient (≤ 2^-6 of a step near 7.5) and +7.5 → 7 clamping.
                    Assert.True(Math.Abs(group[i] - code * scale) <= scale * 0.52 || code == 7, $"{group[i]} → {code}·{scale}");
                }
            }
        Assert.True(minusEight > 0, "some group's most negative weight should map to −8");
    }

    [Fact]
    public void A_k_that_is_not_a_multiple_of_the_group_size_names_the_layer()
    {
        var ex = Assert.Throws<NibbleException>(() => RtnQuantizer.QuantizeWeight("model.layers.3.mlp.down_proj.weight", new float[200], 1, 200, 128));
        Assert.Contains("model.layers.3.mlp.down_proj.weight", ex.Message);
        Assert.Contains("128", ex.Message);
    }
}
