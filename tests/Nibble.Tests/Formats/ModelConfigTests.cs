using Nibble.Formats;

namespace Nibble.Tests.Formats;

public class ModelConfigTests
{
    [Fact]
    public void The_bundled_nano_config_reads_rope_from_rope_parameters()
    {
        var c = ModelConfig.Load(TestPaths.BundledNano);
        Assert.Equal(ModelFamily.Llama, c.Family);
        Assert.Equal((4, 256, 768, 4, 2, 64, 8192), (c.NumLayers, c.HiddenSize, c.IntermediateSize, c.NumHeads, c.NumKvHeads, c.HeadDim, c.VocabSize));
        Assert.Equal(10000.0, c.Rope.Theta);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal([2], c.EosTokenIds);
        Assert.Null(c.Moe);
    }

    [Fact]
    public void The_shared_moe_config_is_mixtral_top2_of_8()
    {
        var c = ModelConfig.Load(TestPaths.RequireSharedModel("moe"));
        Assert.Equal(ModelFamily.Mixtral, c.Family);
        Assert.Equal((8, 2, true), (c.Moe!.NumExperts, c.Moe.TopK, c.Moe.NormTopKProb));
        Assert.True(Enumerable.Range(0, c.NumLayers).All(c.Moe.IsSparseLayer));
    }

    [Fact]
    public void Llama3_style_top_level_rope_theta_and_llama3_scaling_are_read()
    {
        var c = ModelConfig.Parse("""
        {"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":4096,"intermediate_size":14336,
         "num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,"rms_norm_eps":1e-5,
         "rope_theta":500000.0,"rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
         "original_max_position_embeddings":8192,"rope_type":"llama3"},"max_position_embeddings":131072,
         "eos_token_id":[128001,128008,128009],"tie_word_embeddings":false}
        """);
        Assert.Equal(128, c.HeadDim);
        Assert.Equal(new RopeConfig(500000.0, "llama3", 8.0, 1.0, 4.0, 8192), c.Rope);
        Assert.Equal([128001, 128008, 128009], c.EosTokenIds);
    }

    [Fact]
    public void Qwen2_has_qkv_bias_and_qwen3_has_qk_norm_with_explicit_head_dim()
    {
        var q2 = ModelConfig.Parse("""{"architectures":["Qwen2ForCausalLM"],"hidden_size":896,"intermediate_size":4864,"num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,"vocab_size":151936,"rope_theta":1000000.0,"tie_word_embeddings":true}""");
        Assert.True(q2.AttentionBias);
        Assert.False(q2.QkNorm);
        Assert.Equal(64, q2.HeadDim);
        var q3 = ModelConfig.Parse("""{"architectures":["Qwen3ForCausalLM"],"hidden_size":1024,"intermediate_size":3072,"num_hidden_layers":28,"num_attention_heads":16,"num_key_value_heads":8,"head_dim":128,"vocab_size":151936,"rope_theta":1000000,"attention_bias":false}""");
        Assert.True(q3.QkNorm);
        Assert.False(q3.AttentionBias);
        Assert.Equal(128, q3.HeadDim);
    }

    [Fact]
    public void Qwen2_moe_reads_shared_expert_sparse_step_and_mlp_only_layers()
    {
        var c = ModelConfig.Parse("""{"architectures":["Qwen2MoeForCausalLM"],"hidden_size":2048,"intermediate_size":5632,"moe_intermediate_size":1408,"shared_expert_intermediate_size":5632,"num_experts":60,"num_experts_per_tok":4,"norm_topk_prob":false,"decoder_sparse_step":2,"mlp_only_layers":[3],"num_hidden_layers":24,"num_attention_heads":16,"num_key_value_heads":16,"vocab_size":151936}""");
        var moe = c.Moe!;
        Assert.Equal((60, 4, false, 1408, 5632), (moe.NumExperts, moe.TopK, moe.NormTopKProb, moe.ExpertIntermediateSize, moe.SharedExpertIntermediateSize));
        Assert.False(moe.IsSparseLayer(0));
        Assert.True(moe.IsSparseLayer(1));
        Assert.False(moe.IsSparseLayer(3));
    }

    [Fact]
    public void An_existing_quantization_config_is_kept()
    {
        var c = ModelConfig.Parse("""{"architectures":["LlamaForCausalLM"],"hidden_size":256,"num_hidden_layers":1,"num_attention_heads":4,"vocab_size":10,"quantization_config":{"quant_method":"compressed-tensors","format":"pack-quantized"}}""");
        Assert.Equal("pack-quantized", c.QuantizationConfig!.Value.GetProperty("format").GetString());
    }

    [Fact]
    public void An_unsupported_architecture_lists_the_supported_ones()
    {
        var e = Assert.Throws<NibbleException>(() => ModelConfig.Parse("""{"architectures":["GPT2LMHeadModel"],"hidden_size":768}"""));
        Assert.Contains("GPT2LMHeadModel", e.Message);
        Assert.Contains("MixtralForCausalLM", e.Message);
        Assert.Contains("Qwen3MoeForCausalLM", e.Message);
    }
}
