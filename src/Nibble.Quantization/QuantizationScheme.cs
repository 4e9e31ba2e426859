namespace Nibble.Quantization;

/// <summary>What a quantized checkpoint runs as: int4 weights with dynamic per-token FP8 activations, or with 16-bit activations.</summary>
public enum QuantizationScheme
{
    /// <summary>compressed-tensors W4AFP8: int4 symmetric group weights, FP8 E4M3 dynamic per-token activations.</summary>
    W4A8,
    /// <summary>compressed-tensors W4A16: int4 symmetric group weights, activations unquantized.</summary>
    W4A16,
}
