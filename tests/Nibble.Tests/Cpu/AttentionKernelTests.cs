using Nibble.Cpu;

namespace Nibble.Tests.Cpu;

public class AttentionKernelTests
{
    static float[] Random(Random rng, int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();

    /// <summary>softmax(q·kᵀ/√d) over [start, pos] then ·V, in double, straight from the definition.</summary>
    static double[] Naive(float[] q, float[] k, float[] v, int[] positions, int heads, int kvHeads, int d, int? window)
    {
        int t = positions.Length;
        var outp = new double[t * heads * d];
        for (int i = 0; i < t; i++)
            for (int h = 0; h < heads; h++)
            {
                int g = h / (heads / kvHeads), pos = positions[i];
                int start = window is int w ? Math.Max(0, pos - w + 1) : 0;
                var s = new double[pos + 1];
                for (int j = start; j <= pos; j++)
                {
                    double dot = 0;
                    for (int x = 0; x < d; x++) dot += q[(i * heads + h) * d + x] * k[(j * kvHeads + g) * d + x];
                    s[j] = dot / Math.Sqrt(d);
                }
                double max = s.Skip(start).Max(), sum = 0;
                for (int j = start; j <= pos; j++) { s[j] = Math.Exp(s[j] - max); sum += s[j]; }
                for (int j = start; j <= pos; j++)
                    for (int x = 0; x < d; x++) outp[(i * heads + h) * d + x] += s[j] / sum * v[(j * kvHeads + g) * d + x];
            }
        return outp;
    }

    [Theory]
    [InlineData(40, 6, 2, 16, null)]
    [InlineData(37, 4, 4, 24, 9)]
    [InlineData(20, 8, 2, 64, null)]
    public void Prefill_then_decode_matches_the_definition_with_gqa_and_windows(int tokens, int heads, int kvHeads, int d, int? window)
    {
        var rng = new Random(tokens + d);
        var q = Random(rng, tokens * heads * d);
        var k = Random(rng, tokens * kvHeads * d);
        var v = Random(rng, tokens * kvHeads * d);
        var positions = Enumerable.Range(0, tokens).ToArray();
        var expected = Naive(q, k, v, positions, heads, kvHeads, d, window);

        // Prefill all but the last 3 tokens in one call (the GEMM path), then one token at a time.
        var cache = new CpuKvCache(1, kvHeads, d, tokens);
        var output = new float[tokens * heads * d];
        int prefill = tokens - 3;
        Assert.True(prefill >= AttentionKernel.BlockedMinTokens);
        AttentionKernel.Run(q.AsSpan(0, prefill * heads * d), k.AsSpan(0, prefill * kvHeads * d), v.AsSpan(0, prefill * kvHeads * d), cache, 0,
            positions.AsSpan(0, prefill), window, output.AsSpan(0, prefill * heads * d), heads);
        for (int t = prefill; t < tokens; t++)
            AttentionKernel.Run(q.AsSpan(t * heads * d, heads * d), k.AsSpan(t * kvHeads * d, kvHeads * d), v.AsSpan(t * kvHeads * d, kvHeads * d), cache, 0,
                positions.AsSpan(t, 1), window, output.AsSpan(t * heads * d, heads * d), heads);
        for (int i = 0; i < output.Length; i++)
            Assert.True(Math.Abs(output[i] - expected[i]) < 2e-5, $"[{i}] {output[i]} vs {expected[i]}");
    }
}
