using Nibble.Models;

namespace Nibble.Quantization;

/// <summary>Every RMSNorm weight of a model by its tensor name (AWQ folds smoothing scales into some of them).</summary>
public static class ModelNorms
{
    public static IEnumerable<(string Name, NormWeight Norm)> Enumerate(CausalLM model)
    {
        foreach (var layer in model.Layers)
        {
            string p = $"model.layers.{layer.Index}";
            yield return (p + ".input_layernorm.weight", layer.InputNorm);
            yield return (p + ".post_attention_layernorm.weight", layer.PostAttentionNorm);
            if (layer.Attention.QNorm is { } qn) yield return (p + ".self_attn.q_norm.weight", qn);
            if (layer.Attention.KNorm is { } kn) yield return (p + ".self_attn.k_norm.weight", kn);
        }
        yield return ("model.norm.weight", model.FinalNorm);
    }
}
