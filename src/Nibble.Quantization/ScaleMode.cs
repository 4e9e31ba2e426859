namespace Nibble.Quantization;

/// <summary>How W4A8 turns the checkpoint's bf16 group scales S into FP8 group scales σ and a channel scale c'.</summary>
public enum ScaleMode
{
    /// <summary>w4a8-spec.md §3: per row c = max(max|S|/448, 1/(448·512)), σ = e4m3(e4m3(S/c)/8), c' = 8c (what vLLM does at load).</summary>
    Recovered,
    /// <summary>σ = e4m3(S) cast straight to FP8, c' = 1: the baseline that loses precision for small scales.</summary>
    Naive,
}

/// <summary>The quantized weight format: int4 weights with bf16 activations, or with per-token FP8 activations.</summary>
public enum QuantScheme { W4A16, W4A8 }
