using Nibble.Backend;
using Nibble.Formats;

namespace Nibble.Models;

/// <summary>
/// A linear layer with an unquantized weight [OutFeatures, InFeatures] (bf16 viewed in the memory
/// map, or float32 after rewriting) and an optional bias; the backend's MatMul widens bf16 to float
/// inside the GEMM, so no float copy of the model is kept.
/// </summary>
public sealed class DenseLinear : ILinear
{
    readonly IBackend _backend;

    public DenseLinear(IBackend backend, Tensor weight, Tensor? bias)
    {
        if (weight.Rank != 2) throw new ArgumentException($"A linear weight is 2-D; got {weight.ShapeText}.", nameof(weight));
        _backend = backend;
        Weight = weight;
        Bias = bias;
    }

    /// <summary>A layer from float32 values (e.g. AWQ-rescaled weights): weight is [outFeatures, inFeatures] row-major.</summary>
    public static DenseLinear FromFloat(IBackend backend, float[] weight, int outFeatures, int inFeatures, float[]? bias = null) =>
        new(backend, backend.FromHost(weight, outFeatures, inFeatures), bias is null ? null : backend.FromHost(bias, outFeatures));

    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    public int InFeatures => Weight.Shape[1];
    public int OutFeatures => Weight.Shape[0];

    /// <summary>The weight as float32 [OutFeatures, InFeatures] (a copy).</summary>
    public float[] WeightToFloat() => Weight.ToArray();

    public float[]? BiasToFloat() => Bias?.ToArray();

    public void Forward(Tensor input, Tensor output) => _backend.MatMul(input, Weight, Bias, output);
}

/// <summary>The default factory: <see cref="DenseLinear"/> over the checkpoint's bf16/f32 tensors.</summary>
public sealed class DenseLinearFactory(IBackend backend, SafetensorsCheckpoint checkpoint) : ILinearFactory
{
    public ILinear Create(LinearSpec spec)
    {
        if (!checkpoint.Contains(spec.WeightName))
        {
            if (checkpoint.Contains(spec.Name + ".weight_packed"))
                throw new NibbleException($"'{spec.Name}' is quantized (weight_packed) in '{checkpoint.Directory}'; load it with the quantized-model loader.");
            throw new NibbleException($"Tensor '{spec.WeightName}' is missing from '{checkpoint.Directory}'; the weights do not match config.json.");
        }
        var weight = backend.Weight(checkpoint, spec.WeightName);
        if (weight.Rank != 2 || weight.Shape[0] != spec.OutFeatures || weight.Shape[1] != spec.InFeatures)
            throw new NibbleException($"Tensor '{spec.WeightName}' has shape {weight.ShapeText}, expected [{spec.OutFeatures}, {spec.InFeatures}] from config.json.");
        Tensor? bias = null;
        if (spec.HasBias)
        {
            string biasName = spec.Name + ".bias";
            if (!checkpoint.Contains(biasName))
                throw new NibbleException($"Tensor '{biasName}' is missing from '{checkpoint.Directory}'; this architecture has a bias there.");
            bias = backend.Weight(checkpoint, biasName);
        }
        return new DenseLinear(backend, weight, bias);
    }
}
