using Nibble.Backend;
using Nibble.Formats;

namespace Nibble.Models;

/// <summary>
/// Builds a <see cref="CausalLM"/> from config.json and the checkpoint's weight names. The families
/// share every block; they differ only in the names of the MLP/MoE weights and a few flags
/// (qkv bias, q/k norm, shared expert), which <see cref="FamilyLayout"/> captures.
/// </summary>
internal static class ModelBuilder
{
    public static CausalLM Build(string directory, IBackend backend, ModelLoadOptions options)
    {
        var config = ModelConfig.Load(directory);
        var checkpoint = SafetensorsCheckpoint.Open(directory);
        try
        {
            var factory = options.LinearFactory?.Invoke(backend, checkpoint, config) ?? new DenseLinearFactory(backend, checkpoint);
            var layout = FamilyLayout.For(config.Family);
            float eps = (float)config.RmsNormEps;
            int hidden = config.HiddenSize, heads = config.NumHeads, kv = config.NumKvHeads, d = config.HeadDim;
            var rope = new RopeTable(config.Rope, d);

            var embed = backend.Weight(checkpoint, "model.embed_tokens.weight");
            if (embed.Rank != 2 || embed.Shape[0] != config.VocabSize || embed.Shape[1] != hidden)
                throw new NibbleException($"model.embed_tokens.weight has shape {embed.ShapeText}, expected [{config.VocabSize}, {hidden}] from config.json.");

            var layers = new List<DecoderLayer>(config.NumLayers);
            for (int i = 0; i < config.NumLayers; i++)
            {
                string p = $"model.layers.{i}";
                string a = p + ".self_attn";
                ILinear L(string name, int inF, int outF, bool bias = false) => factory.Create(LinearSpec.For(name, inF, outF, bias));
                var attention = new AttentionBlock(backend, a, i, heads, kv, d, rope, config.SlidingWindow,
                    L(a + ".q_proj", hidden, heads * d, config.AttentionBias),
                    L(a + ".k_proj", hidden, kv * d, config.AttentionBias),
                    L(a + ".v_proj", hidden, kv * d, config.AttentionBias),
                    L(a + ".o_proj", heads * d, hidden),
                    config.QkNorm ? NormWeight.Load(backend, checkpoint, a + ".q_norm.weight", d, eps) : null,
                    config.QkNorm ? NormWeight.Load(backend, checkpoint, a + ".k_norm.weight", d, eps) : null);

                GatedMlp Mlp(string prefix, string gate, string up, string down, int size) => new(backend,
                    $"{prefix}.{gate}", $"{prefix}.{up}", $"{prefix}.{down}",
                    L($"{prefix}.{gate}", hidden, size, config.MlpBias), L($"{prefix}.{up}", hidden, size, config.MlpBias), L($"{prefix}.{down}", size, hidden, config.MlpBias));

                IFeedForward ffn;
                if (config.Moe is { } moe && moe.IsSparseLayer(i))
                {
                    string m = $"{p}.{layout.MoePrefix}";
                    var experts = Enumerable.Range(0, moe.NumExperts)
                        .Select(e => Mlp($"{m}.experts.{e}", layout.ExpertGate, layout.ExpertUp, layout.ExpertDown, moe.ExpertIntermediateSize)).ToList();
                    GatedMlp? shared = null;
                    ILinear? sharedGate = null;
                    if (layout.HasSharedExpert && moe.SharedExpertIntermediateSize > 0)
                    {
                        shared = Mlp($"{m}.shared_expert", "gate_proj", "up_proj", "down_proj", moe.SharedExpertIntermediateSize);
                        sharedGate = L($"{m}.shared_expert_gate", hidden, 1);
                    }
                    ffn = new MoeBlock(backend, $"{m}.gate", L($"{m}.gate", hidden, moe.NumExperts), experts, moe.TopK, moe.NormTopKProb,
                        shared, shared is null ? null : $"{m}.shared_expert_gate", sharedGate);
                }
                else
                {
                    if (config.IntermediateSize <= 0)
                        throw new NibbleException($"config.json of '{directory}' has no intermediate_size for the dense MLP of layer {i}.");
                    ffn = Mlp($"{p}.mlp", "gate_proj", "up_proj", "down_proj", config.IntermediateSize);
                }

                layers.Add(new DecoderLayer(backend, i,
                    NormWeight.Load(backend, checkpoint, p + ".input_layernorm.weight", hidden, eps),
                    attention,
                    NormWeight.Load(backend, checkpoint, p + ".post_attention_layernorm.weight", hidden, eps),
                    ffn));
            }

            var finalNorm = NormWeight.Load(backend, checkpoint, "model.norm.weight", hidden, eps);
            bool tied = config.TieWordEmbeddings || !checkpoint.Contains("lm_head.weight");
            var lmHead = factory.Create(new LinearSpec("lm_head", hidden, config.VocabSize, false, tied ? "model.embed_tokens.weight" : "lm_head.weight"));
            return new CausalLM(directory, config, backend, checkpoint, embed, layers, finalNorm, lmHead);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }
}

/// <summary>Where each family keeps its MLP / MoE weights.</summary>
internal sealed record FamilyLayout(string MoePrefix, string ExpertGate, string ExpertUp, string ExpertDown, bool HasSharedExpert)
{
    static readonly FamilyLayout Mixtral = new("block_sparse_moe", "w1", "w3", "w2", false);
    static readonly FamilyLayout QwenMoe = new("mlp", "gate_proj", "up_proj", "down_proj", false);
    static readonly FamilyLayout Qwen2Moe = QwenMoe with { HasSharedExpert = true };

    public static FamilyLayout For(ModelFamily family) => family switch
    {
        ModelFamily.Mixtral => Mixtral,
        ModelFamily.Qwen2Moe => Qwen2Moe,
        _ => QwenMoe,
    };
}
