using Nibble.Numerics;
using Nibble.Backend;
using Nibble.Models;

namespace Nibble.Quantization;

/// <summary>
/// The W4A16 linear layer on the CPU backend: y = x · (q · S)ᵀ (+ bias) with the dequantized int4 weight held as
/// float32 (q·S needs up to 12 significant bits, more than bf16 keeps), float activations and accumulation.
/// </summary>
public sealed class W4A16Linear : ILinear
{
    readonly IBackend _backend;
    readonly Tensor _weight;
    readonly Tensor? _bias;

    public W4A16Linear(IBackend backend, QuantizedLinearWeights weight, float[]? bias = null)
    {
        _backend = backend;
        Weight = weight;
        Bias = bias;
        _weight = backend.FromHost(weight.Dequantize(), weight.N, weight.K);
        _bias = bias is null ? null : backend.FromHost(bias, bias.Length);
    }

    public QuantizedLinearWeights Weight { get; }
    public float[]? Bias { get; }
    public int InFeatures => Weight.K;
    public int OutFeatures => Weight.N;

    public void Forward(Tensor input, Tensor output) => _backend.MatMul(input, _weight, _bias, output);
}
