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
    public static TheoryData<string> Cases => ["llama-tied", "llama3-rope", "mistral-window", "qwen2", "qwen3", "mixtral", "qwen2-moe", "qwen3-moe"];

    static JsonObject ConfigFor(string name)
    {
        switch (name)
        {
            case "llama-tied":
                var lt = SyntheticModel.Config("LlamaForCausalLM", heads: 4, kvHeads: 4); lt["tie_word_embeddings"] = true; return lt;
            case "llama3-rope":
                var l3 = SyntheticModel.Config("LlamaForCausalLM", headDim: 32);
                l3["rope_scaling"] = new JsonObject { ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 64 };
                l3["rope_theta"] = 500000.0;
                return l3;
            case "mistral-window":
                var mi = SyntheticModel.Config("MistralForCausalLM"); mi["sliding_window"] = 5; return mi;
            case "qwen2":
                return SyntheticModel.Config("Qwen2ForCausalLM", heads: 6, kvHeads: 2);
            case "qwen3":
                return SyntheticModel.Config("Qwen3ForCausalLM", headDim: 24);
            case "mixtral":
                var mx = SyntheticModel.Config("MixtralForCausalLM"); mx["num_local_experts"] = 5; mx["num_experts_per_tok"] = 2; return mx;
            case "qwen2-moe":
                var q2 = SyntheticModel.Config("Qwen2MoeForCausalLM", layers: 3);
                q2["num_experts"] = 4; q2["num_experts_per_tok"] = 2; q2["moe_intermediate_size"] = 32;
                q2["shared_expert_intermediate_size"] = 48; q2["norm_topk_prob"] = false; q2["mlp_only_layers"] = new JsonArray(1);
                return q2;
            case "qwen3-moe":
                var q3 = SyntheticModel.Config("Qwen3MoeForCausalLM");
                q3["num_experts"] = 6; q3["num_experts_per_tok"] = 3; q3["moe_intermediate_size"] = 40; q3["norm_topk_prob"] = true;
                return q3;
            default: throw new ArgumentException(name);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_random_weight_checkpoint_matches_the_naive_reference(string name)
    {
        using var tmp = TestPaths.CreateTempDir();
        SyntheticModel.Write(tmp.Path, ConfigFor(name), seed: name.Length);
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
