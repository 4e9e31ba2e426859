using Nibble.Cli;
using Nibble.Cpu;
using Nibble.Evaluation;
using Nibble.Models;
using Nibble.Numerics;
using Nibble.Quantization;
using Nibble.Quantization.Awq;
using Nibble.Text.Templates;
using Nibble.Text.Tokenization;

namespace Nibble.Tests.Quantization;

public class ClipSearchTests
{
    /// <summary>bf16 weights: Gaussian-ish rows with a few large outliers per group (where clipping pays).</summary>
    static float[] Weights(Random rng, int n, int k, double outlierRate = 0.02)
    {
        var w = new float[n * k];
        for (int i = 0; i < w.Length; i++)
        {
            double v = (rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 1.5) * 0.05;
            if (rng.NextDouble() < outlierRate) v *= 8;
            w[i] = BFloat16.Round((float)v);
        }
        return w;
    }

    /// <summary>Inputs with uneven channel magnitudes (as after AWQ smoothing, which keeps some spread).</summary>
    static float[] Inputs(Random rng, int rows, int k)
    {
        var channel = Enumerable.Range(0, k).Select(_ => (float)Math.Exp(rng.NextDouble() * 2 - 1)).ToArray();
        var x = new float[rows * k];
        for (int t = 0; t < rows; t++)
            for (int i = 0; i < k; i++) x[t * k + i] = BFloat16.Round(channel[i] * (float)(rng.NextDouble() * 2 - 1));
        return x;
    }

    static ClipNumerics W4A8 => new(QuantizationScheme.W4A8);

    static ushort[] RtnScales(float[] w, int n, int k, int gs) => RtnQuantizer.QuantizeWeight("w", w, n, k, gs).ScalesBf16;

    /// <summary>Σ_t Σ_n Σ_g (x̃_g·ŵ_g − x_g·w_g)² straight from the definition, with ŵ from the deployed numerics (W4A8Weight / Dequantize).</summary>
    static double BruteForce(float[] x, int rows, float[] w, int n, int k, int gs, QuantizedLinearWeights q, bool w4a8)
    {
        var deq = new double[n * k];
        if (w4a8)
        {
            var op = W4A8Weight.From(q, ScaleRecoveryMode.Recovered);
            for (int r = 0; r < n; r++)
                for (int i = 0; i < k; i++) deq[r * k + i] = (double)op.ChannelScale[r] * op.W8[r * k + i];
        }
        else
        {
            var d = q.Dequantize();
            for (int i = 0; i < d.Length; i++) deq[i] = d[i];
        }
        double sum = 0;
        var x8 = new float[k];
        for (int t = 0; t < rows; t++)
        {
            var row = x.AsSpan(t * k, k);
            float s = w4a8 ? W4A8Linear.QuantizeToken(row, x8) : 1f;
            for (int r = 0; r < n; r++)
                for (int g = 0; g < k / gs; g++)
                {
                    double a = 0, b = 0;
                    for (int i = g * gs; i < (g + 1) * gs; i++)
                    {
                        double xt = w4a8 ? (double)x8[i] * s : row[i];
                        a += xt * deq[r * k + i];
                        b += row[i] * (double)BFloat16.Round(w[r * k + i]);
                    }
                    sum += (a - b) * (a - b);
                }
        }
        return sum;
    }

    [Theory]
    [InlineData(7, 96, 32, 37, false, 1)]
    [InlineData(5, 256, 128, 29, true, 2)]
    [InlineData(9, 160, 32, 41, true, 3)]
    public void The_moment_objective_is_the_group_output_error_of_the_deployed_weights(int n, int k, int gs, int rows, bool w4a8, int seed)
    {
        var rng = new Random(seed);
        var w = Weights(rng, n, k);
        var x = Inputs(rng, rows, k);
        var numerics = w4a8 ? W4A8 : ClipNumerics.W4A16;
        var moments = GroupMoments.Compute(x, rows, k, gs, w4a8);
        // The RTN scales and a clipped set; the objective's channel scale comes from the scales themselves, as the loader's.
        var rtn = RtnScales(w, n, k, gs);
        var clipped = ClipSearch.Search(w, n, k, moments, numerics, new ClipSearchOptions()).ScalesBf16;
        foreach (var scales in new[] { rtn, clipped })
        {
            double viaMoments = ClipSearch.Objective(w, n, k, scales, scales, moments, numerics);
            double direct = BruteForce(x, rows, w, n, k, gs, ClipSearch.Quantize(w, n, k, gs, scales, numerics), w4a8);
            Assert.Equal(direct, viaMoments, direct * 1e-9 + 1e-12);
        }
    }

    [Theory]
    [InlineData(false, 4)]
    [InlineData(true, 5)]
    public void The_search_never_increases_its_objective_per_group_and_lowers_it_with_outliers(bool w4a8, int seed)
    {
        int n = 23, k = 384, gs = 128, rows = 61;
        var rng = new Random(seed);
        var w = Weights(rng, n, k, outlierRate: 0.03);
        var x = Inputs(rng, rows, k);
        var numerics = w4a8 ? W4A8 : ClipNumerics.W4A16;
        var moments = GroupMoments.Compute(x, rows, k, gs, w4a8);
        var rtn = RtnScales(w, n, k, gs);
        var result = ClipSearch.Search(w, n, k, moments, numerics, new ClipSearchOptions());
        // Per (row, group): the chosen scale's objective (channel scale from the RTN row, as searched) ≤ RTN's.
        for (int r = 0; r < n; r++)
            for (int g = 0; g < k / gs; g++)
            {
                var one = (ushort[])rtn.Clone();
                one[r * (k / gs) + g] = result.ScalesBf16[r * (k / gs) + g];
                double chosen = ClipSearch.Objective(w, n, k, one, rtn, moments, numerics);
                double plain = ClipSearch.Objective(w, n, k, rtn, rtn, moments, numerics);
                Assert.True(chosen <= plain, $"row {r} group {g}: {chosen:G9} > RTN {plain:G9}");
            }
        Assert.Equal(ClipSearch.Objective(w, n, k, rtn, rtn, moments, numerics), result.LossBefore, result.LossBefore * 1e-9);
        Assert.Equal(ClipSearch.Objective(w, n, k, result.ScalesBf16, rtn, moments, numerics), result.LossAfter, result.LossAfter * 1e-9);
        Assert.True(result.ClippedGroups > 0);
        Assert.True(result.LossAfter < 0.97 * result.LossBefore, $"clipping {result.LossAfter:G6} vs RTN {result.LossBefore:G6}");
        // Clipped scales only ever shrink, by at most the grid's largest cut.
        for (int i = 0; i < rtn.Length; i++)
        {
            float s = BFloat16.ToFloat(result.ScalesBf16[i]), s0 = BFloat16.ToFloat(rtn[i]);
            Assert.InRange(s, 0.54f * s0, s0);
        }
    }

    [Fact]
    public void Ties_keep_plain_RTN_scales_zero_rows_and_silent_inputs_clip_nothing()
    {
        int n = 4, k = 64, gs = 32, rows = 17;
        var rng = new Random(6);
        var w = Weights(rng, n, k, outlierRate: 0.05);
        Array.Clear(w, 0, k); // row 0: all zeros
        // Inputs that are zero on every channel: every candidate has zero error, so ratio 1 (first) must be kept.
        var silent = GroupMoments.Compute(new float[rows * k], rows, k, gs, false);
        var result = ClipSearch.Search(w, n, k, silent, ClipNumerics.W4A16, new ClipSearchOptions());
        Assert.Equal(RtnScales(w, n, k, gs), result.ScalesBf16);
        Assert.Equal(0, result.ClippedGroups);
        Assert.Equal(0, result.LossAfter);
        // Real inputs: the zero row keeps RTN's replacement scale (2^-7) and adds nothing to the loss.
        var moments = GroupMoments.Compute(Inputs(rng, rows, k), rows, k, gs, true);
        var live = ClipSearch.Search(w, n, k, moments, W4A8, new ClipSearchOptions());
        Assert.All(live.ScalesBf16.Take(k / gs), s => Assert.Equal(RtnQuantizer.ZeroScaleReplacement, BFloat16.ToFloat(s)));
        var zeroRow = new float[k];
        Assert.Equal(0, ClipSearch.Objective(zeroRow, 1, k, [.. live.ScalesBf16.Take(k / gs)], [.. live.ScalesBf16.Take(k / gs)], moments, W4A8), 12);
    }

    [Fact]
    public void Bad_settings_give_one_clear_error()
    {
        Assert.Equal([1f, 0.95f, 0.9f, 0.85f, 0.8f, 0.75f, 0.7f, 0.65f, 0.6f, 0.55f], new ClipSearchOptions().Ratios().Select(r => MathF.Round(r, 4)));
        Assert.Contains("grid point", Assert.Throws<NibbleException>(() => new ClipSearchOptions { GridPoints = 0 }.Ratios()).Message);
        Assert.Contains("max shrink", Assert.Throws<NibbleException>(() => new ClipSearchOptions { MaxShrink = 1 }.Ratios()).Message);
        Assert.Throws<NibbleException>(() => new ClipSearchOptions { MaxShrink = 0 }.Ratios());
        Assert.Throws<NibbleException>(() => new ClipSearchOptions { MaxShrink = double.NaN }.Ratios());
        Assert.Throws<NibbleException>(() => new ClipSearchOptions { MaxTokens = 0 }.Ratios());
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        var e = Assert.Throws<NibbleException>(() => ModelQuantizer.Quantize(lm, new QuantizeOptions { Clip = new ClipSearchOptions() }));
        Assert.Contains("--method awq", e.Message);
    }

    [Fact]
    public void The_CLI_refuses_bad_clip_values_and_clip_without_AWQ()
    {
        using var tmp = TestPaths.CreateTempDir();
        static int Run(params string[] args) => Program.BuildRootCommand().Parse(args).Invoke();
        Assert.Equal(1, Run("quantize", TestPaths.BundledNano, "--method", "rtn", "--clip-search", "--out", tmp.File("a")));
        Assert.Equal(1, Run("quantize", TestPaths.BundledNano, "--clip-search", "--clip-max-shrink", "1.5", "--out", tmp.File("b")));
        Assert.Equal(1, Run("quantize", TestPaths.BundledNano, "--clip-search", "--clip-grid", "0", "--out", tmp.File("c")));
        Assert.False(Directory.Exists(tmp.File("a")) || Directory.Exists(tmp.File("b")) || Directory.Exists(tmp.File("c")));
    }

    [Fact]
    public void AWQ_with_clipping_on_nano_keeps_unclipped_variants_and_lowers_the_logit_error()
    {
        var tokenizer = HfTokenizer.Load(TestPaths.BundledNano);
        var data = CalibrationSet.Load(Path.Combine(TestPaths.BundledNano, "calibration", "calib_text_sample.txt"), tokenizer,
            () => ChatTemplate.Load(TestPaths.BundledNano), new CalibrationOptions { MaxSequences = 2, MaxSequenceLength = 128 });
        using var reference = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        var result = ModelQuantizer.Quantize(lm, new QuantizeOptions
        {
            Awq = new AwqOptions { GridPoints = 4 },
            Clip = new ClipSearchOptions { AlsoW4A16 = true },
        }, data);
        foreach (var l in result.Linears)
        {
            bool qk = l.Name.EndsWith(".q_proj") || l.Name.EndsWith(".k_proj");
            Assert.Equal(qk, l.UnclippedWeight is null);
            Assert.Same(l.RtnWeight, l.For(QuantizationScheme.W4A16, ScaleRecoveryMode.Recovered, clipped: false));
            if (qk) continue;
            Assert.NotNull(l.ClippedRtnWeight);
            Assert.Same(l.UnclippedWeight, l.For(QuantizationScheme.W4A8, ScaleRecoveryMode.Recovered, clipped: false));
            Assert.Same(l.Weight, l.For(QuantizationScheme.W4A8, ScaleRecoveryMode.Recovered));
            Assert.Same(l.ClippedRtnWeight, l.For(QuantizationScheme.W4A16, ScaleRecoveryMode.Recovered));
            // Scales only shrink; unclipped keeps RTN's scales.
            Assert.Equal(l.RtnWeight!.ScalesBf16, l.UnclippedWeight!.ScalesBf16);
            for (int i = 0; i < l.Weight.ScalesBf16.Length; i++)
                Assert.True(BFloat16.ToFloat(l.Weight.ScalesBf16[i]) <= BFloat16.ToFloat(l.RtnWeight.ScalesBf16[i]));
        }
        Assert.Contains(result.Linears, l => l.UnclippedWeight is not null && !l.Weight.ScalesBf16.SequenceEqual(l.UnclippedWeight.ScalesBf16));

        // On the calibration tokens themselves the clipped W4A8 model is closer to bf16 than the unclipped one.
        using var unclipped = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        result.ApplyTo(unclipped, QuantizationScheme.W4A8, clipped: false);
        double Kl(CausalLM m)
        {
            double sum = 0; int count = 0;
            foreach (var s in data)
            {
                using var c1 = reference.CreateCache(s.Ids.Length);
                using var c2 = m.CreateCache(s.Ids.Length);
                var a = reference.Forward(s.Ids, c1).ToArray();
                var b = m.Forward(s.Ids, c2).ToArray();
                int v = reference.VocabSize;
                for (int t = 0; t < s.Ids.Length; t++) { sum += LogProbs.KlDivergence(a.AsSpan(t * v, v), b.AsSpan(t * v, v)); count++; }
            }
            return sum / count;
        }
        double kClip = Kl(lm), kPlain = Kl(unclipped);
        Assert.True(kClip < kPlain, $"KL with clipping {kClip:G5} vs without {kPlain:G5}");
    }
}
