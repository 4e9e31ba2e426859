using System.Text.Json.Nodes;
using Nibble.Backend;
using Nibble.Cpu;
using Nibble.Formats;
using Nibble.Models;
using Nibble.Numerics;
using Nibble.Quantization;
using Nibble.Quantization.Awq;
using Nibble.Tests.Models;
using Nibble.Text;
using Nibble.Text.Templates;
using Nibble.Text.Tokenization;

namespace Nibble.Tests.Quantization;

public class AwqTests
{
    static IReadOnlyList<CalibrationSequence> NanoText(int sequences, int length) =>
        CalibrationSet.Load(Path.Combine(TestPaths.BundledNano, "calibration", "calib_text_sample.txt"), HfTokenizer.Load(TestPaths.BundledNano),
            () => ChatTemplate.Load(TestPaths.BundledNano), new CalibrationOptions { MaxSequences = sequences, MaxSequenceLength = length });

    static float[] Logits(CausalLM lm, int[] ids)
    {
        using var cache = lm.CreateCache(ids.Length);
        return lm.Forward(ids, cache).ToArray();
    }

    [Fact]
    public void The_grid_is_llm_compressors_and_scales_are_normalised()
    {
        var grid = AwqGrid.Candidates(DuoScaling.On, 20);
        Assert.Equal(20, grid.Count);
        Assert.True(grid[0].Identity);
        Assert.Equal(Enumerable.Range(0, 19).Select(i => i / 18.0), grid.Skip(1).Select(c => c.Alpha));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => i / 19.0), AwqGrid.Candidates(DuoScaling.Off, 20).Select(c => c.Alpha));
        var x = new[] { 0.5f, 4f, 1f, 0f };
        var w = new[] { 0.3f, 0.6f, 0.9f, 0.5f };
        var s = AwqGrid.Scales(grid[10], x, w);
        Assert.Equal(1.0, Math.Sqrt(s.Max() * (double)s.Min()), 5);
        Assert.True(s[1] > s[0] && s[0] > s[3], "larger activations get larger scales");
        Assert.All(AwqGrid.Scales(grid[0], x, w), v => Assert.Equal(1f, v));
        // Identical channels: every candidate is the identity, and ties keep the first.
        Assert.All(AwqGrid.Scales(grid[15], [2f, 2f, 2f], [0.5f, 0.5f, 0.5f]), v => Assert.Equal(1f, v, 5));
    }

    [Fact]
    public void Masked_tokens_add_nothing_to_statistics_even_with_huge_activations()
    {
        int h = 8, t = 6;
        var x = new float[t * h];
        for (int i = 0; i < x.Length; i++) x[i] = (i % h) + 1;
        for (int i = 0; i < h; i++) { x[1 * h + i] = i == 3 ? 1e4f : 0; x[4 * h + i] = i == 6 ? -5e3f : 0; } // masked outliers
        var mask = new[] { true, false, true, true, false, true };
        var stats = new ActivationStatistics();
        stats.Track("l", h, captureRows: true);
        stats.Mask = mask;
        stats.Observe("l", HostTensor.Wrap(x, t, h), Enumerable.Range(0, t).ToArray());
        Assert.Equal(4, stats.Count("l"));
        Assert.Equal(Enumerable.Range(1, h).Select(v => (float)v), stats.MeanAbs("l"));
        Assert.Equal(4 * h, stats.CapturedRows("l").Length);

        // Without the mask the outliers dominate x_mean and AWQ would choose very different scales.
        var unmasked = new ActivationStatistics();
        unmasked.Track("l", h);
        unmasked.Observe("l", HostTensor.Wrap(x, t, h), Enumerable.Range(0, t).ToArray());
        var w = Enumerable.Repeat(0.5f, h).ToArray();
        var c = AwqGrid.Candidates(DuoScaling.On, 20)[19];
        var sMasked = AwqGrid.Scales(c, stats.MeanAbs("l"), w);
        var sAll = AwqGrid.Scales(c, unmasked.MeanAbs("l"), w);
        Assert.True(sAll[3] / sAll[0] > 100 * (sMasked[3] / sMasked[0]));
    }

    [Theory]
    [InlineData("mixtral")]
    [InlineData("qwen2-moe")]
    public void MoE_masking_counts_only_included_tokens_routed_to_each_expert(string family)
    {
        using var tmp = TestPaths.CreateTempDir();
        SyntheticModel.Write(tmp.Path, MoeConfig(family));
        using var lm = CausalLM.Load(tmp.Path, CpuBackend.Instance);
        var moe = lm.Layers.Select(l => l.Mlp).OfType<MoeBlock>().First();
        int layerIndex = lm.Layers.First(l => l.Mlp == moe).Index;
        var stats = new ActivationStatistics();
        foreach (var e in moe.Experts) stats.Track(e.DownName, e.DownProj.InFeatures);
        stats.Track(moe.RouterName, lm.Config.HiddenSize);
        var ids = Enumerable.Range(0, 23).Select(i => (i * 7 + 3) % lm.VocabSize).ToArray();
        var mask = ids.Select((_, i) => i % 3 != 1).ToArray();
        stats.Mask = mask;
        lm.Observer = stats;
        using var cache = lm.CreateCache(ids.Length);
        var hidden = lm.Embed(ids);
        for (int i = 0; i <= layerIndex; i++) lm.Layers[i].Forward(hidden, lm.ContextFor(cache, ids.Length));
        var routing = moe.LastRouting!;
        int included = mask.Count(m => m);
        Assert.Equal(included, stats.Count(moe.RouterName));
        for (int e = 0; e < moe.Experts.Count; e++)
        {
            int expected = Enumerable.Range(0, ids.Length).Count(t => mask[t] && Enumerable.Range(0, routing.TopK).Any(j => routing.Experts[t * routing.TopK + j] == e));
            Assert.Equal(expected, stats.Count(moe.Experts[e].DownName));
        }
        Assert.Equal(included * routing.TopK, moe.Experts.Sum(e => stats.Count(e.DownName)));
    }

    static JsonObject MoeConfig(string family)
    {
        if (family == "mixtral")
        {
            var mx = SyntheticModel.Config("MixtralForCausalLM", heads: 4, kvHeads: 4); mx["num_local_experts"] = 5; mx["num_experts_per_tok"] = 2; return mx;
        }
        var q2 = SyntheticModel.Config("Qwen2MoeForCausalLM", layers: 2, heads: 4, kvHeads: 4);
        q2["num_experts"] = 4; q2["num_experts_per_tok"] = 2; q2["moe_intermediate_size"] = 32;
        q2["shared_expert_intermediate_size"] = 48; q2["norm_topk_prob"] = false;
        return q2;
    }

    [Theory]
    [InlineData("mixtral")]
    [InlineData("qwen2-moe")]
    public void Smoothing_preserves_the_function_for_MoE_with_masked_calibration(string family)
    {
        using var tmp = TestPaths.CreateTempDir();
        SyntheticModel.Write(tmp.Path, MoeConfig(family));
        using var original = CausalLM.Load(tmp.Path, CpuBackend.Instance);
        using var smoothed = CausalLM.Load(tmp.Path, CpuBackend.Instance);
        var rng = new Random(3);
        var data = Enumerable.Range(0, 3).Select(_ =>
        {
            var ids = Enumerable.Range(0, 40).Select(_ => rng.Next(original.VocabSize)).ToArray();
            return new CalibrationSequence(ids, ids.Select((_, i) => i % 2 == 0).ToArray());
        }).ToList();
        var results = AwqCalibrator.Run(smoothed, data, new AwqOptions { ChannelWise = true });
        // norm→attention, v→o (no GQA here), norm→MLP/MoE, one up→down per expert (+ shared expert) per layer
        Assert.Contains(results, r => r.Name.Contains("router") && r.Skipped is null);
        Assert.Contains(results, r => r.Name.Contains("v_proj → o_proj") && r.Skipped is null);
        Assert.All(results.Where(r => r.Skipped is null), r => Assert.True(r.Loss <= r.IdentityLoss, $"{r.Name}: {r.Loss} > identity {r.IdentityLoss}"));
        Assert.Contains(results, r => r.Skipped is null && r.Candidate != 0);

        var ids = data[0].Ids;
        var a = Logits(original, ids);
        var b = Logits(smoothed, ids);
        double maxDiff = a.Zip(b, (p, q) => Math.Abs(p - q)).Max(), scale = a.Max(Math.Abs);
        Assert.True(maxDiff < 0.03 * scale, $"smoothing changed the logits by {maxDiff} (max |logit| {scale})");
    }

    [Fact]
    public void AWQ_on_nano_lowers_block_output_error_and_its_checkpoint_round_trips_bit_exactly()
    {
        var data = NanoText(2, 96);
        using var tmp = TestPaths.CreateTempDir();
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        var result = ModelQuantizer.Quantize(lm, new QuantizeOptions { Scheme = QuantizationScheme.W4A8, Awq = new AwqOptions() }, data);
        var searched = result.Awq.Where(r => r.Skipped is null).ToList();
        Assert.Equal(4 * 3, searched.Count); // nano has GQA: v→o is skipped, as in llm-compressor
        Assert.All(searched, r => Assert.True(r.Loss <= r.IdentityLoss));
        Assert.True(searched.Count(r => r.Loss < r.IdentityLoss) >= searched.Count / 2, "AWQ should beat plain RTN on most mappings");

        string outDir = tmp.File("ckpt");
        CompressedTensorsCheckpoint.Write(TestPaths.BundledNano, outDir, new CompressedTensorsWriteOptions { Scheme = QuantizationScheme.W4A8 },
            new QuantizationResultWriter(result));
        using (var checkpoint = SafetensorsCheckpoint.Open(outDir))
            foreach (var q in result.Linears)
            {
                var read = CompressedTensorsCheckpoint.ReadLinear(checkpoint, q.Name);
                Assert.Equal(q.Weight.Q, read.Q);
                Assert.Equal(q.Weight.ScalesBf16, read.ScalesBf16);
            }

        var ids = data[0].Ids[..64];
        var expected = Logits(lm, ids);
        using var loaded = QuantizedModel.Load(outDir, CpuBackend.Instance);
        Assert.IsType<W4A8Linear>(loaded.Layers[0].Attention.QProj);
        Assert.Equal(expected, Logits(loaded, ids));

        using var w16 = QuantizedModel.Load(outDir, CpuBackend.Instance, QuantizationScheme.W4A16);
        using var w16Memory = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        // The W4A8 checkpoint stores the grid-rounded codes (W4A8GridRounding); read as W4A16 it runs those, whereas
        // ApplyTo(W4A16) prefers the RTN codes kept in memory, so compare against the stored codes only.
        Assert.All(result.Linears, l => Assert.NotNull(l.RtnWeight));
        var stored = result with { Linears = result.Linears.Select(l => l with { RtnWeight = null }).ToList() };
        stored.ApplyTo(w16Memory, QuantizationScheme.W4A16);
        Assert.Equal(Logits(w16Memory, ids), Logits(w16, ids));
    }

    [Fact]
    public void W4A8_aware_search_runs_the_exact_numerics_and_stays_at_or_below_identity()
    {
        var data = NanoText(1, 64);
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        var results = AwqCalibrator.Run(lm, data, new AwqOptions { SearchScheme = QuantizationScheme.W4A8, GridPoints = 6 });
        Assert.All(results.Where(r => r.Skipped is null), r => Assert.True(r.Loss <= r.IdentityLoss && r.Loss > 0));
    }

    [Fact]
    public void Bad_inputs_give_one_clear_error()
    {
        // No usable tokens after masking.
        var policy = new CalibrationMaskPolicy { UserContent = false, AssistantContent = false, ToolResults = false, ToolCalls = false };
        var e = Assert.Throws<NibbleException>(() => CalibrationSet.Load(Path.Combine(TestPaths.BundledNano, "calibration", "calib_traces_sample.jsonl"),
            HfTokenizer.Load(TestPaths.BundledNano), () => ChatTemplate.Load(TestPaths.BundledNano), new CalibrationOptions { MaskPolicy = policy, MaxSequences = 1 }));
        Assert.Contains("no usable tokens after masking", e.Message);
        Assert.Throws<NibbleException>(() => MaskPolicyParser.Parse("user,bogus"));

        // K not a multiple of 128.
        using var tmp = TestPaths.CreateTempDir();
        SyntheticModel.Write(tmp.Path, SyntheticModel.Config("LlamaForCausalLM"));
        using var lm = CausalLM.Load(tmp.Path, CpuBackend.Instance);
        var k = Assert.Throws<NibbleException>(() => ModelQuantizer.Quantize(lm, new QuantizeOptions()));
        Assert.Contains("not a multiple of the group size 128", k.Message);
    }

    [Fact]
    public void Masked_trace_calibration_keeps_content_and_drops_scaffolding()
    {
        var tokenizer = HfTokenizer.Load(TestPaths.BundledNano);
        string path = Path.Combine(TestPaths.BundledNano, "calibration", "calib_traces_sample.jsonl");
        var masked = CalibrationSet.Load(path, tokenizer, () => ChatTemplate.Load(TestPaths.BundledNano), new CalibrationOptions { MaxSequences = 2 });
        var all = CalibrationSet.Load(path, tokenizer, () => ChatTemplate.Load(TestPaths.BundledNano), new CalibrationOptions { MaxSequences = 2, MaskPolicy = MaskPolicyParser.Parse("none") });
        Assert.Equal(masked.Select(s => s.Ids), all.Select(s => s.Ids));
        Assert.All(all, s => Assert.Null(s.Mask));
        Assert.All(masked, s => Assert.InRange(s.IncludedTokens, 1, s.Ids.Length / 2)); // the system prompt and tools are over half of a trace
    }
}
