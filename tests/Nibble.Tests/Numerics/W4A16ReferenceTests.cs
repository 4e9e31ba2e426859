using Nibble.Numerics;

namespace Nibble.Tests.Numerics;

public class W4A16ReferenceTests
{
    [Theory]
    [InlineData(1, 1, 8, 8)]
    [InlineData(3, 7, 128, 128)]
    [InlineData(9, 5, 264, 24)]
    [InlineData(4, 11, 200, 200)]
    public void Gemm_equals_a_naive_triple_loop_with_bf16_activations_and_bf16_dequantized_weights(int m, int n, int k, int groupSize)
    {
        var rng = new Random(m + 100 * n + k);
        var w = W4A8ReferenceTests.RandomW4A16(rng, n, k, groupSize);
        // Not bf16-representable on purpose: the reference must round them.
        var x = Enumerable.Range(0, m * k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var bias = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
        var expected = new ushort[m * n];
        var expectedBias = new ushort[m * n];
        for (int r = 0; r < m; r++)
            for (int c = 0; c < n; c++)
            {
                double acc = 0;
                for (int i = 0; i < k; i++)
                {
                    float scale = BFloat16.ToFloat(w.ScalesBf16[c * (k / groupSize) + i / groupSize]);
                    acc += (double)BFloat16.Round(x[r * k + i]) * BFloat16.Round(w.Q[c * k + i] * scale);
                }
                expected[r * n + c] = BFloat16.FromFloat((float)acc);
                expectedBias[r * n + c] = BFloat16.FromFloat((float)acc + bias[c]);
            }
        Assert.Equal(expected, W4A16Reference.Gemm(x, m, w));
        Assert.Equal(expectedBias, W4A16Reference.Gemm(x, m, w, bias));
    }

    [Fact]
    public void Dequantize_is_q_times_the_group_scale()
    {
        var w = new QuantizedLinearWeights([-8, 7, 1, 0], [BFloat16.FromFloat(0.5f), BFloat16.FromFloat(0.25f)], 1, 4, 2);
        Assert.Equal([-4f, 3.5f, 0.25f, 0f], w.Dequantize());
    }
}
