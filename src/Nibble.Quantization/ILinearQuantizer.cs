using Nibble.Numerics;

namespace Nibble.Quantization;

/// <summary>
/// A weight quantization method (RTN now; AWQ adds its own) as the checkpoint writer drives it: one call per quantized
/// Linear weight, in checkpoint order. Methods that also change tensors that stay unquantized (AWQ folds its smoothing
/// scales into norms) return the replacement from <see cref="ReplaceUnquantized"/>.
/// </summary>
public interface ILinearQuantizer
{
    /// <summary>The method's CLI name ("rtn", "awq").</summary>
    string Method { get; }

    /// <summary>Quantizes weight [n, k] (row-major, values of the model's bf16 weight) with the given group size.</summary>
    QuantizedLinearWeights Quantize(string weightName, ReadOnlySpan<float> weightNK, int n, int k, int groupSize);

    /// <summary>A bf16 replacement for an unquantized tensor, or null to copy the source tensor unchanged.</summary>
    ushort[]? ReplaceUnquantized(string tensorName) => null;
}
