using System.Text.RegularExpressions;

namespace Nibble.Quantization;

/// <summary>
/// Which tensors of a Hugging Face decoder checkpoint become int4, as an explicit rule set: every Linear of the decoder
/// layers (attention q/k/v/o, dense and Qwen-MoE expert / shared-expert gate/up/down, Mixtral expert w1/w2/w3). Not
/// quantized: embeddings, lm_head, norms, biases, and MoE routers (<c>block_sparse_moe.gate</c>, <c>mlp.gate</c>,
/// <c>mlp.shared_expert_gate</c>), which stay bf16 and are listed in <c>ignore</c> (architecture guide, vLLM expects
/// routers unquantized).
/// </summary>
public static partial class QuantizationTargets
{
    [GeneratedRegex(@"^model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj|mlp\.experts\.\d+\.(gate|up|down)_proj|mlp\.shared_expert\.(gate|up|down)_proj|block_sparse_moe\.experts\.\d+\.w[123])$")]
    private static partial Regex QuantizedLinearModule();

    [GeneratedRegex(@"^model\.layers\.\d+\.(block_sparse_moe\.gate|mlp\.gate|mlp\.shared_expert_gate)$")]
    private static partial Regex RouterModule();

    /// <summary>The module name of a weight tensor ("model.layers.0.self_attn.q_proj" for "….q_proj.weight"), or null.</summary>
    public static string? ModuleOfWeight(string tensorName) =>
        tensorName.EndsWith(".weight", StringComparison.Ordinal) ? tensorName[..^".weight".Length] : null;

    /// <summary>True when the tensor is the 2-D weight of a Linear that gets int4.</summary>
    public static bool IsQuantizedLinearWeight(string tensorName, int rank) =>
        rank == 2 && ModuleOfWeight(tensorName) is { } module && QuantizedLinearModule().IsMatch(module);

    /// <summary>True for MoE router modules (kept bf16 and named in the checkpoint's ignore list).</summary>
    public static bool IsRouter(string moduleName) => RouterModule().IsMatch(moduleName);
}
