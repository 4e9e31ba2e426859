using System.Text.Json.Nodes;
using Nibble.Cpu;
using Nibble.Models;

namespace Nibble.Tests.Models;

/// <summary>
/// Every family's plumbing (qkv bias, q/k norm, head_dim ≠ hidden/heads, tied embeddings, llama3 RoPE,
/// sliding window, Mixtral / Qwen-MoE routing, shared expert, dense layers inside MoE models) against
/// <see cref="NaiveReference"/> on small random-weight checkpoints.
/// </summary>
public class FamilyTests
{
    public static TheoryData<string> Cases => new(SyntheticModel.Families);

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_random_weight_checkpoint_matches_the_naive_reference(string name)
    {
        using var tmp = TestPaths.CreateTempDir();
        SyntheticModel.Write(tmp.Path, SyntheticModel.FamilyConfig(name), seed: name.Length);
        int[] tokens = [3, 17, 90, 4, 4, 55, 12, 0, 71, 33, 8];
        var expected = new NaiveReference(tmp.Path).Logits(tokens);
        using var lm = CausalLM.Load(tmp.Path, CpuBackend.Instance);

        // Prefill part, then decode the rest one token at a time: the KV cache path must agree too.
        using var cache = lm.CreateCache(tokens.Length);
        var rows = new List<float[]>();
        var prefill = lm.Forward(tokens.AsSpan(0, 6), cache).ToArray();
        for (int t = 0; t < 6; t++) rows.Add(prefill.AsSpan(t * lm.VocabSize, lm.VocabSize).ToArray());
        for (int t = 6; t < tokens.Length; t++) rows.Add(lm.Forward(tokens.AsSpan(t, 1), cache).ToArray());

        double max = 0;
        for (int t = 0; t < tokens.Length; t++)
            for (int v = 0; v < lm.VocabSize; v++) max = Math.Max(max, Math.Abs(rows[t][v] - expected[t][v]));
        Assert.True(max < 1e-4, $"{name}: max |diff| {max:E3} against the naive reference");
    }
}
