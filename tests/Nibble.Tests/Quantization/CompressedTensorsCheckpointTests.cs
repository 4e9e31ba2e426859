using System.Text.Json;
using Nibble.Formats;
using Nibble.Numerics;
using Nibble.Quantization;
using Nibble.Tests.Models;

namespace Nibble.Tests.Quantization;

public class CompressedTensorsCheckpointTests
{
    static float[] SourceWeight(SafetensorsCheckpoint source, string name)
    {
        var bits = source.GetSpan<ushort>(name);
        var w = new float[bits.Length];
        BFloat16.ToFloat(bits, w);
        return w;
    }

    [Fact]
    public void The_quantized_nano_checkpoint_has_the_pack_quantized_layout_and_reads_back_bit_exactly()
    {
        using var tmp = TestPaths.CreateTempDir();
        string outDir = tmp.File("nano-w4a8");
        var progress = new List<QuantizeProgress>();
        var result = CompressedTensorsCheckpoint.Write(TestPaths.BundledNano, outDir,
            new CompressedTensorsWriteOptions { Scheme = QuantizationScheme.W4A8 }, RtnQuantizer.Instance, new SyncProgress(progress.Add));
        Assert.Equal(4 * 7, result.QuantizedLayers); // 4 layers × (q, k, v, o, gate, up, down)
        Assert.Equal(28, progress.Max(p => p.LayersDone));

        using var source = SafetensorsCheckpoint.Open(TestPaths.BundledNano);
        using var quantized = SafetensorsCheckpoint.Open(outDir);
        int checkedLayers = 0;
        foreach (var name in source.TensorNames)
        {
            var info = source.GetInfo(name);
            if (!QuantizationTargets.IsQuantizedLinearWeight(name, info.Shape.Length))
            {
                var copy = quantized.GetInfo(name);
                Assert.Equal(info.DType, copy.DType);
                Assert.Equal(info.Shape, copy.Shape);
                Assert.True(source.GetBytes(name).SequenceEqual(quantized.GetBytes(name)), name);
                continue;
            }
            string module = name[..^".weight".Length];
            Assert.False(quantized.Contains(name));
            long n = info.Shape[0], k = info.Shape[1];
            var packed = quantized.GetInfo(module + ".weight_packed");
            Assert.Equal(SafetensorsDType.I32, packed.DType);
            Assert.Equal([n, k / 8], packed.Shape);
            var scale = quantized.GetInfo(module + ".weight_scale");
            Assert.Equal(SafetensorsDType.BF16, scale.DType);
            Assert.Equal([n, k / 128], scale.Shape);
            var shape = quantized.GetInfo(module + ".weight_shape");
            Assert.Equal(SafetensorsDType.I64, shape.DType);
            Assert.Equal([n, k], quantized.GetSpan<long>(module + ".weight_shape").ToArray());

            var expected = RtnQuantizer.QuantizeWeight(name, SourceWeight(source, name), (int)n, (int)k, 128);
            var read = CompressedTensorsCheckpoint.ReadLinear(quantized, module);
            Assert.Equal(expected.Q, read.Q);
            Assert.Equal(expected.ScalesBf16, read.ScalesBf16);
            Assert.Equal(128, read.GroupSize);
            // The words themselves: nibble j of word w of row r is q[r, 8w + j] + 8.
            var words = quantized.GetSpan<int>(module + ".weight_packed");
            for (int i = 0; i < 64; i++)
                Assert.Equal(expected.Q[i] + 8, (words[i / 8] >> (4 * (i % 8))) & 0xF);
            checkedLayers++;
        }
        Assert.Equal(28, checkedLayers);
        Assert.Equal(28, CompressedTensorsCheckpoint.QuantizedModules(quantized).Count);

        var q = CompressedTensorsCheckpoint.ReadQuantization(outDir);
        Assert.Equal(QuantizationScheme.W4A8, q.Scheme);
        Assert.Equal(128, q.GroupSize);
        Assert.Equal(["lm_head"], q.Ignore);
        var config = ModelConfig.Load(outDir);
        Assert.Equal(ModelFamily.Llama, config.Family);
        Assert.NotNull(config.QuantizationConfig);
        // The rest of config.json is unchanged.
        using var before = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.BundledNano, "config.json")));
        using var after = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")));
        foreach (var p in before.RootElement.EnumerateObject())
            Assert.Equal(p.Value.GetRawText(), after.RootElement.GetProperty(p.Name).GetRawText());

        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(TestPaths.BundledNano, file)), File.ReadAllBytes(Path.Combine(outDir, file)));
        Assert.False(File.Exists(Path.Combine(outDir, "reference_outputs.safetensors")));
        Assert.Equal([Path.GetFileName(outDir)], Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void A_channel_wise_w4a16_checkpoint_has_one_scale_per_row_and_null_input_activations()
    {
        using var tmp = TestPaths.CreateTempDir();
        string outDir = tmp.File("nano-w4a16");
        CompressedTensorsCheckpoint.Write(TestPaths.BundledNano, outDir,
            new CompressedTensorsWriteOptions { Scheme = QuantizationScheme.W4A16, GroupSize = 0 }, RtnQuantizer.Instance);
        using var quantized = SafetensorsCheckpoint.Open(outDir);
        var scale = quantized.GetInfo("model.layers.0.mlp.down_proj.weight_scale");
        Assert.Equal([256L, 1L], scale.Shape);
        var w = CompressedTensorsCheckpoint.ReadLinear(quantized, "model.layers.0.mlp.down_proj");
        Assert.Equal(768, w.GroupSize);
        var q = CompressedTensorsCheckpoint.ReadQuantization(outDir);
        Assert.Equal(QuantizationScheme.W4A16, q.Scheme);
        Assert.Equal(0, q.GroupSize);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")));
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("quantization_config").GetProperty("config_groups")
            .GetProperty("group_0").GetProperty("input_activations").ValueKind);
    }

    [Theory]
    [InlineData("mixtral")]
    [InlineData("qwen2-moe")]
    public void Moe_experts_are_quantized_and_routers_stay_bf16_in_the_ignore_list(string family)
    {
        using var tmp = TestPaths.CreateTempDir();
        string src = tmp.File("src"), outDir = tmp.File("out");
        var config = family == "mixtral" ? SyntheticModel.Config("MixtralForCausalLM") : SyntheticModel.Config("Qwen2MoeForCausalLM");
        if (family == "mixtral") { config["num_local_experts"] = 3; config["num_experts_per_tok"] = 2; }
        else { config["num_experts"] = 3; config["num_experts_per_tok"] = 2; config["moe_intermediate_size"] = 32; config["shared_expert_intermediate_size"] = 48; }
        SyntheticModel.Write(src, config);
        var result = CompressedTensorsCheckpoint.Write(src, outDir, new CompressedTensorsWriteOptions { Scheme = QuantizationScheme.W4A8, GroupSize = 16 }, RtnQuantizer.Instance);

        using var quantized = SafetensorsCheckpoint.Open(outDir);
        string[] routers = family == "mixtral"
            ? ["model.layers.0.block_sparse_moe.gate", "model.layers.1.block_sparse_moe.gate"]
            : ["model.layers.0.mlp.gate", "model.layers.0.mlp.shared_expert_gate", "model.layers.1.mlp.gate", "model.layers.1.mlp.shared_expert_gate"];
        foreach (var r in routers)
        {
            Assert.Equal(SafetensorsDType.BF16, quantized.GetInfo(r + ".weight").DType);
            Assert.Contains(r, result.Ignore);
        }
        Assert.Equal(routers.Length + 1, CompressedTensorsCheckpoint.ReadQuantization(outDir).Ignore.Count);
        string expert = family == "mixtral" ? "model.layers.1.block_sparse_moe.experts.2.w2" : "model.layers.1.mlp.experts.2.down_proj";
        Assert.True(quantized.Contains(expert + ".weight_packed"));
        if (family != "mixtral") Assert.True(quantized.Contains("model.layers.0.mlp.shared_expert.up_proj.weight_packed"));
        int experts = 3 * 3 * 2 + (family == "mixtral" ? 0 : 3 * 2);
        Assert.Equal(4 * 2 + experts, result.QuantizedLayers);
    }

    [Fact]
    public void An_existing_output_directory_is_refused_unless_overwrite_is_given()
    {
        using var tmp = TestPaths.CreateTempDir();
        string outDir = tmp.File("out");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "stale.txt"), "old");
        var options = new CompressedTensorsWriteOptions { Scheme = QuantizationScheme.W4A8 };
        var ex = Assert.Throws<NibbleException>(() => CompressedTensorsCheckpoint.Write(TestPaths.BundledNano, outDir, options, RtnQuantizer.Instance));
        Assert.Contains("--overwrite", ex.Message);
        Assert.True(File.Exists(Path.Combine(outDir, "stale.txt")));

        CompressedTensorsCheckpoint.Write(TestPaths.BundledNano, outDir, options with { Overwrite = true }, RtnQuantizer.Instance);
        Assert.False(File.Exists(Path.Combine(outDir, "stale.txt")));
        Assert.True(File.Exists(Path.Combine(outDir, "model.safetensors")));
        Assert.Single(Directory.GetFileSystemEntries(tmp.Path));
        // The output is itself quantized now, so quantizing it again is refused.
        Assert.Throws<NibbleException>(() => CompressedTensorsCheckpoint.Write(outDir, tmp.File("again"), options, RtnQuantizer.Instance));
    }

    sealed class FailingQuantizer(int failAt) : ILinearQuantizer
    {
        int _calls;
        public string Method => "failing";
        public QuantizedLinearWeights Quantize(string weightName, ReadOnlySpan<float> weightNK, int n, int k, int groupSize) =>
            ++_calls == failAt ? throw new IOException("disk full (injected)") : RtnQuantizer.QuantizeWeight(weightName, weightNK, n, k, groupSize);
    }

    [Fact]
    public void A_failure_midway_leaves_no_partial_checkpoint_and_keeps_an_existing_one()
    {
        using var tmp = TestPaths.CreateTempDir();
        string outDir = tmp.File("out");
        var options = new CompressedTensorsWriteOptions { Scheme = QuantizationScheme.W4A8 };
        Assert.Throws<IOException>(() => CompressedTensorsCheckpoint.Write(TestPaths.BundledNano, outDir, options, new FailingQuantizer(5)));
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));

        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "keep.txt"), "previous");
        Assert.Throws<IOException>(() => CompressedTensorsCheckpoint.Write(TestPaths.BundledNano, outDir, options with { Overwrite = true }, new FailingQuantizer(20)));
        Assert.Equal(["keep.txt"], Directory.GetFileSystemEntries(outDir).Select(Path.GetFileName));
        Assert.Single(Directory.GetFileSystemEntries(tmp.Path));
    }

    [Fact]
    public void A_group_size_that_does_not_divide_a_layer_is_refused_before_anything_is_written()
    {
        using var tmp = TestPaths.CreateTempDir();
        string outDir = tmp.File("out");
        var ex = Assert.Throws<NibbleException>(() => CompressedTensorsCheckpoint.Write(TestPaths.BundledNano, outDir,
            new CompressedTensorsWriteOptions { Scheme = QuantizationScheme.W4A8, GroupSize = 512 }, RtnQuantizer.Instance));
        Assert.Contains("model.layers.0.", ex.Message);
        Assert.Contains("512", ex.Message);
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));
    }

    sealed class SyncProgress(Action<QuantizeProgress> report) : IProgress<QuantizeProgress>
    {
        public void Report(QuantizeProgress value) => report(value);
    }
}
