using Nibble.Backend;

namespace Nibble.Models;

/// <summary>
/// A linear layer y = x·Wᵀ (+ b) over float32 activation rows: input [T, InFeatures], output
/// [T, OutFeatures]. Model code only sees this interface, so bf16, W4A16 and W4A8 layers (and their
/// GPU versions) plug in through an <see cref="ILinearFactory"/> without touching the model.
/// </summary>
public interface ILinear
{
    int InFeatures { get; }
    int OutFeatures { get; }
    void Forward(Tensor input, Tensor output);
}

/// <summary>What the model loader asks a factory for: a layer's name (e.g. <c>model.layers.0.self_attn.q_proj</c>), shape and bias.</summary>
/// <param name="WeightName">The tensor holding the weight; differs from <c>Name + ".weight"</c> for tied embeddings.</param>
public sealed record LinearSpec(string Name, int InFeatures, int OutFeatures, bool HasBias, string WeightName)
{
    public static LinearSpec For(string name, int inFeatures, int outFeatures, bool hasBias = false) =>
        new(name, inFeatures, outFeatures, hasBias, name + ".weight");
}

/// <summary>Creates the linear layers of a model, one call per layer name, while the model is loaded.</summary>
public interface ILinearFactory
{
    ILinear Create(LinearSpec spec);
}
