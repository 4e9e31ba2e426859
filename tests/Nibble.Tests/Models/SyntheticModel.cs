using System.Text.Json;
using System.Text.Json.Nodes;
using Nibble.Formats;

namespace Nibble.Tests.Models;

/// <summary>Writes a tiny random-weight checkpoint (config.json + model.safetensors) for any supported family.</summary>
public static class SyntheticModel
{
    /// <summary>Small configurations covering every family's plumbing; the CPU and GPU family tests both use them.</summary>
    public static readonly string[] Families = ["llama-tied", "llama3-rope", "mistral-window", "qwen2", "qwen3", "mixtral", "qwen2-moe", "qwen3-moe"];

    public static JsonObject FamilyConfig(string name)
    {
        switch (name)
        {
            case "llama-tied":
                var lt = Config("LlamaForCausalLM", heads: 4, kvHeads: 4); lt["tie_word_embeddings"] = true; return lt;
            case "llama3-rope":
                var l3 = Config("LlamaForCausalLM", headDim: 32);
                l3["rope_scaling"] = new JsonObject { ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 64 };
                l3["rope_theta"] = 500000.0;
                return l3;
            case "mistral-window":
                var mi = Config("MistralForCausalLM"); mi["sliding_window"] = 5; return mi;
            case "qwen2":
                return Config("Qwen2ForCausalLM", heads: 6, kvHeads: 2);
            case "qwen3":
                return Config("Qwen3ForCausalLM", headDim: 24);
            case "mixtral":
                var mx = Config("MixtralForCausalLM"); mx["num_local_experts"] = 5; mx["num_experts_per_tok"] = 2; return mx;
            case "qwen2-moe":
                var q2 = Config("Qwen2MoeForCausalLM", layers: 3);
                q2["num_experts"] = 4; q2["num_experts_per_tok"] = 2; q2["moe_intermediate_size"] = 32;
                q2["shared_expert_intermediate_size"] = 48; q2["norm_topk_prob"] = false; q2["mlp_only_layers"] = new JsonArray(1);
                return q2;
            case "qwen3-moe":
                var q3 = Config("Qwen3MoeForCausalLM");
                q3["num_experts"] = 6; q3["num_experts_per_tok"] = 3; q3["moe_intermediate_size"] = 40; q3["norm_topk_prob"] = true;
                return q3;
            default: throw new ArgumentException(name);
        }
    }

    public static void Write(string dir, JsonObject config, int seed = 1)
    {
        var c = ModelConfig.Parse(config.ToJsonString());
        var rng = new Random(seed);
        var tensors = new List<TensorData>();
        void Add(string name, params int[] shape)
        {
            int n = shape.Aggregate(1, (a, b) => a * b);
            bool norm = name.EndsWith("norm.weight", StringComparison.Ordinal);
            float scale = norm ? 0.2f : 1f / MathF.Sqrt(shape[^1]);
            var bits = new ushort[n];
            for (int i = 0; i < n; i++)
            {
                float v = norm ? 1 + scale * (float)(rng.NextDouble() * 2 - 1) : scale * (float)(rng.NextDouble() * 2 - 1) * 1.7f;
                bits[i] = (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16);
            }
            tensors.Add(TensorData.From(name, SafetensorsDType.BF16, shape.Select(d => (long)d).ToArray(), bits));
        }

        int h = c.HiddenSize, d = c.HeadDim;
        Add("model.embed_tokens.weight", c.VocabSize, h);
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}";
            Add(p + ".input_layernorm.weight", h);
            Add(p + ".post_attention_layernorm.weight", h);
            Add(p + ".self_attn.q_proj.weight", c.NumHeads * d, h);
            Add(p + ".self_attn.k_proj.weight", c.NumKvHeads * d, h);
            Add(p + ".self_attn.v_proj.weight", c.NumKvHeads * d, h);
            Add(p + ".self_attn.o_proj.weight", h, c.NumHeads * d);
            if (c.AttentionBias)
            {
                Add(p + ".self_attn.q_proj.bias", c.NumHeads * d);
                Add(p + ".self_attn.k_proj.bias", c.NumKvHeads * d);
                Add(p + ".self_attn.v_proj.bias", c.NumKvHeads * d);
            }
            if (c.QkNorm) { Add(p + ".self_attn.q_norm.weight", d); Add(p + ".self_attn.k_norm.weight", d); }
            void Mlp(string prefix, string g, string u, string dn, int size) { Add($"{prefix}.{g}.weight", size, h); Add($"{prefix}.{u}.weight", size, h); Add($"{prefix}.{dn}.weight", h, size); }
            if (c.Moe is { } moe && moe.IsSparseLayer(l))
            {
                bool mixtral = c.Family == ModelFamily.Mixtral;
                string m = p + (mixtral ? ".block_sparse_moe" : ".mlp");
                Add(m + ".gate.weight", moe.NumExperts, h);
                for (int e = 0; e < moe.NumExperts; e++)
                    if (mixtral) Mlp($"{m}.experts.{e}", "w1", "w3", "w2", moe.ExpertIntermediateSize);
                    else Mlp($"{m}.experts.{e}", "gate_proj", "up_proj", "down_proj", moe.ExpertIntermediateSize);
                if (c.Family == ModelFamily.Qwen2Moe)
                {
                    Mlp(m + ".shared_expert", "gate_proj", "up_proj", "down_proj", moe.SharedExpertIntermediateSize);
                    Add(m + ".shared_expert_gate.weight", 1, h);
                }
            }
            else Mlp(p + ".mlp", "gate_proj", "up_proj", "down_proj", c.IntermediateSize);
        }
        Add("model.norm.weight", h);
        if (!c.TieWordEmbeddings) Add("lm_head.weight", c.VocabSize, h);

        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
    }

    /// <summary>A small config of the given architecture; callers add family-specific fields.</summary>
    public static JsonObject Config(string architecture, int layers = 2, int hidden = 64, int heads = 4, int kvHeads = 2, int headDim = 16, int vocab = 96) => new()
    {
        ["architectures"] = new JsonArray(architecture),
        ["hidden_size"] = hidden,
        ["intermediate_size"] = 80,
        ["num_hidden_layers"] = layers,
        ["num_attention_heads"] = heads,
        ["num_key_value_heads"] = kvHeads,
        ["head_dim"] = headDim,
        ["vocab_size"] = vocab,
        ["rms_norm_eps"] = 1e-6,
        ["rope_theta"] = 10000.0,
        ["max_position_embeddings"] = 256,
        ["tie_word_embeddings"] = false,
    };
}
