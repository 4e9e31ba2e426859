namespace Nibble.Cuda.Kernels;

/// <summary>Which split-KV decode-attention kernel runs (Attention.cu; docs/cuda-backend.md).</summary>
public enum DecodeAttentionVariant
{
    /// <summary>decode_attention_c*_g* + decode_combine: xor-butterfly scores, two launches when split.</summary>
    V3a,
    /// <summary>decode_attention_v3b_*: uniform step count and reduce-scatter score sums (measured slower than v3a), two launches when split.</summary>
    V3b,
    /// <summary>
    /// decode_attention_fused_*: v3a whose last CTA per (kv head, head chunk) merges the splits (an atomic ticket), one
    /// launch; its split choice favours fewer, fatter splits at short lengths.
    /// </summary>
    Fused,
}
