namespace Nibble.Quantization;

/// <summary>
/// The quantized weight format: int4 weights with bf16 activations, or with per-token FP8 activations. (How W4A8 turns
/// bf16 group scales into FP8 ones is <see cref="Nibble.Numerics.ScaleRecoveryMode"/>: recovered, or the naive cast.)
/// </summary>
public enum QuantScheme { W4A16, W4A8 }
