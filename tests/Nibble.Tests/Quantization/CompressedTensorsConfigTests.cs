using System.Text.Json;
using Nibble.Quantization;

namespace Nibble.Tests.Quantization;

public class CompressedTensorsConfigTests
{
    static JsonElement Json(System.Text.Json.Nodes.JsonObject o) => JsonDocument.Parse(o.ToJsonString()).RootElement;

    [Fact]
    public void The_w4a8_config_has_the_fields_vllm_selects_w4a8_fp8_by()
    {
        var c = Json(CompressedTensorsConfig.Build(QuantizationScheme.W4A8, 128, ["lm_head", "model.layers.0.block_sparse_moe.gate"]));
        Assert.Equal("compressed-tensors", c.GetProperty("quant_method").GetString());
        Assert.Equal("pack-quantized", c.GetProperty("format").GetString());
        Assert.Equal("compressed", c.GetProperty("quantization_status").GetString());
        Assert.Equal(JsonValueKind.Null, c.GetProperty("kv_cache_scheme").ValueKind);
        Assert.Equal(["lm_head", "model.layers.0.block_sparse_moe.gate"], c.GetProperty("ignore").EnumerateArray().Select(e => e.GetString()));
        var g = c.GetProperty("config_groups").GetProperty("group_0");
        Assert.Equal("Linear", g.GetProperty("targets")[0].GetString());
        Assert.Equal("pack-quantized", g.GetProperty("format").GetString());
        Assert.Equal(JsonValueKind.Null, g.GetProperty("output_activations").ValueKind);
        var w = g.GetProperty("weights");
        Assert.Equal(4, w.GetProperty("num_bits").GetInt32());
        Assert.Equal("int", w.GetProperty("type").GetString());
        Assert.True(w.GetProperty("symmetric").GetBoolean());
        Assert.Equal("group", w.GetProperty("strategy").GetString());
        Assert.Equal(128, w.GetProperty("group_size").GetInt32());
        Assert.False(w.GetProperty("dynamic").GetBoolean());
        Assert.Equal(JsonValueKind.Null, w.GetProperty("actorder").ValueKind);
        var a = g.GetProperty("input_activations");
        Assert.Equal(8, a.GetProperty("num_bits").GetInt32());
        Assert.Equal("float", a.GetProperty("type").GetString());
        Assert.Equal("token", a.GetProperty("strategy").GetString());
        Assert.True(a.GetProperty("dynamic").GetBoolean());
        Assert.True(a.GetProperty("symmetric").GetBoolean());
        Assert.Equal(JsonValueKind.Null, a.GetProperty("group_size").ValueKind);

        var parsed = CompressedTensorsConfig.Parse(c);
        Assert.Equal(QuantizationScheme.W4A8, parsed.Scheme);
        Assert.Equal(128, parsed.GroupSize);
        Assert.Equal(2, parsed.Ignore.Count);
    }

    [Fact]
    public void W4a16_has_null_input_activations_and_channel_wise_parses_as_group_0()
    {
        var c = Json(CompressedTensorsConfig.Build(QuantizationScheme.W4A16, 0, ["lm_head"]));
        var g = c.GetProperty("config_groups").GetProperty("group_0");
        Assert.Equal(JsonValueKind.Null, g.GetProperty("input_activations").ValueKind);
        Assert.Equal("channel", g.GetProperty("weights").GetProperty("strategy").GetString());
        var parsed = CompressedTensorsConfig.Parse(c);
        Assert.Equal(QuantizationScheme.W4A16, parsed.Scheme);
        Assert.Equal(0, parsed.GroupSize);
    }

    [Theory]
    [InlineData("""{"quant_method":"gptq"}""")]
    [InlineData("""{"quant_method":"compressed-tensors","format":"float-quantized","config_groups":{"group_0":{"weights":{"num_bits":8,"type":"float","symmetric":true,"strategy":"channel"}}}}""")]
    [InlineData("""{"quant_method":"compressed-tensors","format":"pack-quantized","config_groups":{"group_0":{"weights":{"num_bits":4,"type":"int","symmetric":false,"strategy":"group","group_size":128}}}}""")]
    [InlineData("""{"quant_method":"compressed-tensors","format":"pack-quantized","config_groups":{"group_0":{"weights":{"num_bits":4,"type":"int","symmetric":true,"strategy":"group","group_size":128},"input_activations":{"num_bits":8,"type":"int","strategy":"token","dynamic":true,"symmetric":true}}}}""")]
    public void Other_quantization_configs_are_a_clear_error(string json)
    {
        var ex = Assert.Throws<NibbleException>(() => CompressedTensorsConfig.Parse(JsonDocument.Parse(json).RootElement));
        Assert.Contains("pack-quantized int4", ex.Message);
    }
}
