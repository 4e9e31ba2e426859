using Nibble.Quantization;

namespace Nibble.Tests.Quantization;

public class QuantizationTargetsTests
{
    [Theory]
    [InlineData("model.layers.0.self_attn.q_proj.weight")]
    [InlineData("model.layers.12.self_attn.k_proj.weight")]
    [InlineData("model.layers.1.self_attn.v_proj.weight")]
    [InlineData("model.layers.1.self_attn.o_proj.weight")]
    [InlineData("model.layers.0.mlp.gate_proj.weight")]
    [InlineData("model.layers.0.mlp.up_proj.weight")]
    [InlineData("model.layers.0.mlp.down_proj.weight")]
    [InlineData("model.layers.3.block_sparse_moe.experts.7.w1.weight")]
    [InlineData("model.layers.3.block_sparse_moe.experts.0.w2.weight")]
    [InlineData("model.layers.3.block_sparse_moe.experts.15.w3.weight")]
    [InlineData("model.layers.2.mlp.experts.59.gate_proj.weight")]
    [InlineData("model.layers.2.mlp.experts.0.down_proj.weight")]
    [InlineData("model.layers.2.mlp.shared_expert.up_proj.weight")]
    public void Decoder_linear_weights_of_every_family_are_quantized(string name)
    {
        Assert.True(QuantizationTargets.IsQuantizedLinearWeight(name, 2));
        Assert.False(QuantizationTargets.IsQuantizedLinearWeight(name, 1));
    }

    [Theory]
    [InlineData("model.embed_tokens.weight")]
    [InlineData("lm_head.weight")]
    [InlineData("model.norm.weight")]
    [InlineData("model.layers.0.input_layernorm.weight")]
    [InlineData("model.layers.0.self_attn.q_norm.weight")]
    [InlineData("model.layers.0.self_attn.q_proj.bias")]
    [InlineData("model.layers.3.block_sparse_moe.gate.weight")]
    [InlineData("model.layers.2.mlp.gate.weight")]
    [InlineData("model.layers.2.mlp.shared_expert_gate.weight")]
    [InlineData("model.layers.0.self_attn.q_proj.weight_packed")]
    [InlineData("model.layers.0.block_sparse_moe.experts.0.w4.weight")]
    public void Embeddings_heads_norms_biases_and_routers_stay_bf16(string name) =>
        Assert.False(QuantizationTargets.IsQuantizedLinearWeight(name, 2));

    [Theory]
    [InlineData("model.layers.3.block_sparse_moe.gate", true)]
    [InlineData("model.layers.2.mlp.gate", true)]
    [InlineData("model.layers.2.mlp.shared_expert_gate", true)]
    [InlineData("model.layers.2.mlp.gate_proj", false)]
    [InlineData("model.layers.2.mlp.shared_expert.gate_proj", false)]
    public void Routers_are_recognised_for_the_ignore_list(string module, bool router) =>
        Assert.Equal(router, QuantizationTargets.IsRouter(module));
}
