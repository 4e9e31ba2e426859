using Nibble.Backend;
using Nibble.Formats;
using Nibble.Models;
using Nibble.Numerics;

namespace Nibble.Quantization;

/// <summary>
/// Builds a model's linear layers from a compressed-tensors pack-quantized checkpoint: every module with
/// <c>weight_packed / weight_scale / weight_shape</c> becomes a <see cref="W4A8Linear"/> or <see cref="W4A16Linear"/>
/// (bias, if any, from <c>&lt;name&gt;.bias</c>); everything else (lm_head, routers) loads as bf16.
/// </summary>
public sealed class QuantizedLinearFactory(IBackend backend, SafetensorsCheckpoint checkpoint, QuantizationScheme scheme, ScaleRecoveryMode scales) : ILinearFactory
{
    readonly DenseLinearFactory _dense = new(backend, checkpoint);

    public ILinear Create(LinearSpec spec)
    {
        if (!checkpoint.Contains(spec.Name + "." + CompressedTensorsCheckpoint.WeightPacked)) return _dense.Create(spec);
        var weights = CompressedTensorsCheckpoint.ReadLinear(checkpoint, spec.Name);
        if (weights.N != spec.OutFeatures || weights.K != spec.InFeatures)
            throw new NibbleException($"'{spec.Name}' is quantized as [{weights.N}, {weights.K}] but config.json expects [{spec.OutFeatures}, {spec.InFeatures}]; the checkpoint does not match its config.");
        float[]? bias = null;
        if (spec.HasBias)
        {
            string biasName = spec.Name + ".bias";
            if (!checkpoint.Contains(biasName))
                throw new NibbleException($"Tensor '{biasName}' is missing from '{checkpoint.Directory}'; this architecture has a bias there.");
            bias = backend.Weight(checkpoint, biasName).ToArray();
        }
        return scheme == QuantizationScheme.W4A8 ? new W4A8Linear(backend, weights, scales, bias) : new W4A16Linear(backend, weights, bias);
    }
}

/// <summary>Loads any model directory: bf16 as is, a pack-quantized checkpoint into W4A8 / W4A16 layers.</summary>
public static class QuantizedModel
{
    /// <param name="scheme">Override the checkpoint's scheme (W4A16 and W4A8 checkpoints hold the same weights); null = as configured.</param>
    public static CausalLM Load(string directory, IBackend backend, QuantizationScheme? scheme = null, ScaleRecoveryMode scales = ScaleRecoveryMode.Recovered)
    {
        var config = ModelConfig.Load(directory);
        if (config.QuantizationConfig is null)
        {
            if (scheme is not null) throw new NibbleException($"'{directory}' is not quantized (no quantization_config); quantize it with nibble quantize first.");
            return CausalLM.Load(directory, backend);
        }
        if (backend.Name != "cpu")
            throw new NibbleException($"Quantized checkpoints run on the CPU backend in this build ('{directory}' is quantized); use --device cpu.");
        var q = CompressedTensorsCheckpoint.ReadQuantization(directory);
        var effective = scheme ?? q.Scheme;
        return CausalLM.Load(directory, backend, new ModelLoadOptions
        {
            LinearFactory = (b, checkpoint, _) => new QuantizedLinearFactory(b, checkpoint, effective, scales),
        });
    }
}
