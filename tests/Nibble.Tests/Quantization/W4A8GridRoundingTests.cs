using Nibble.Cpu;
using Nibble.Backend;
using Nibble.Formats;
using Nibble.Numerics;
using Nibble.Quantization;

namespace Nibble.Tests.Quantization;

public class W4A8GridRoundingTests
{
    /// <summary>
    /// bf16 weights whose groups span ~3 decades within a row, so c is set by one large group and the small groups' σ
    /// lose mantissa bits (S/c below 2^-3 before ÷8) or sit near e4m3 midpoints: where RTN's q·S and the W4A8 grid disagree most.
    /// </summary>
    static float[] AdversarialWeights(Random rng, int n, int k, int group)
    {
        var w = new float[n * k];
        for (int r = 0; r < n; r++)
            for (int g = 0; g < k / group; g++)
            {
                float magnitude = (float)Math.Pow(10, -3.2 * rng.NextDouble()) * (g == 0 ? 1f : 0.9f);
                for (int i = 0; i < group; i++)
                    w[r * k + g * group + i] = BFloat16.Round(magnitude * (float)(rng.NextDouble() * 2 - 1));
            }
        return w;
    }

    /// <summary>Row-wise Σ (w − c'·e4m3(q·σ))², the dequantization through Nibble.Numerics' W4A8Weights.</summary>
    static double[] RowErrors(float[] w, QuantizedLinearWeights q)
    {
        var weights = W4A8Weights.FromW4A16(q);
        var row = new double[q.K];
        var errors = new double[q.N];
        for (int r = 0; r < q.N; r++)
        {
            weights.DequantizeRowFp8(r, row);
            double c = weights.Scales.ChannelScale[r];
            for (int i = 0; i < q.K; i++) errors[r] += Math.Pow(w[r * q.K + i] - c * row[i], 2);
        }
        return errors;
    }

    [Theory]
    [InlineData(37, 384, 128, 1)]
    [InlineData(19, 200, 200, 2)]
    [InlineData(64, 256, 32, 3)]
    public void Grid_rounding_never_loses_to_RTN_per_row_and_wins_in_aggregate(int n, int k, int group, int seed)
    {
        var w = AdversarialWeights(new Random(seed), n, k, group);
        var rtn = RtnQuantizer.QuantizeWeight("w", w, n, k, group);
        var grid = W4A8GridRounding.Round(w, rtn);
        Assert.Equal(rtn.ScalesBf16, grid.ScalesBf16);
        var eRtn = RowErrors(w, rtn);
        var eGrid = RowErrors(w, grid);
        for (int r = 0; r < n; r++) Assert.True(eGrid[r] <= eRtn[r], $"row {r}: grid {eGrid[r]:G6} > RTN {eRtn[r]:G6}");
        Assert.True(eGrid.Sum() < eRtn.Sum() * 0.99, $"aggregate grid {eGrid.Sum():G6} vs RTN {eRtn.Sum():G6}");
        Assert.All(grid.Q, v => Assert.InRange(v, (sbyte)-8, (sbyte)7));
    }

    [Fact]
    public void Every_code_is_the_nearest_grid_value_by_brute_force_with_ties_to_the_smaller_magnitude()
    {
        int n = 6, k = 64, group = 16;
        var w = AdversarialWeights(new Random(11), n, k, group);
        var rtn = RtnQuantizer.QuantizeWeight("w", w, n, k, group);
        var grid = W4A8GridRounding.Round(w, rtn);
        var chosen = W4A8Weights.FromW4A16(grid);
        // The 16 candidates of every element, dequantized independently: a weight whose codes are all j.
        var candidates = new double[16][];
        for (int j = -8; j <= 7; j++)
        {
            var all = new sbyte[n * k];
            Array.Fill(all, (sbyte)j);
            var wj = W4A8Weights.FromW4A16(new QuantizedLinearWeights(all, rtn.ScalesBf16, n, k, group));
            candidates[j + 8] = new double[n * k];
            for (int r = 0; r < n; r++) wj.DequantizeRowFp8(r, candidates[j + 8].AsSpan(r * k, k));
        }
        var row = new double[k];
        int changed = 0;
        for (int r = 0; r < n; r++)
        {
            chosen.DequantizeRowFp8(r, row);
            double c = chosen.Scales.ChannelScale[r];
            for (int i = 0; i < k; i++)
            {
                int at = r * k + i;
                double d = Math.Abs(w[at] - c * row[i]);
                for (int j = -8; j <= 7; j++)
                {
                    double dj = Math.Abs(w[at] - c * candidates[j + 8][at]);
                    Assert.True(d <= dj, $"[{r},{i}] w = {w[at]}: q = {grid.Q[at]} is {d:G6} away, q = {j} only {dj:G6}");
                    if (dj == d) Assert.True(Math.Abs(grid.Q[at]) <= Math.Abs(j), $"[{r},{i}] tie between q = {grid.Q[at]} and {j} not broken to the smaller |q|");
                }
                if (grid.Q[at] != rtn.Q[at]) changed++;
            }
        }
        Assert.True(changed > 0, "adversarial scales should move some codes off RTN's choice");
    }

    [Fact]
    public void Codes_for_W4A16_or_another_scale_mode_fall_back_to_RTN()
    {
        var w = AdversarialWeights(new Random(5), 4, 128, 128);
        var rtn = RtnQuantizer.QuantizeWeight("w", w, 4, 128, 128);
        var grid = W4A8GridRounding.Round(w, rtn);
        var linear = new QuantizedLinear("x", grid, null) { RtnWeight = rtn, GridScales = ScaleRecoveryMode.Recovered };
        Assert.Same(grid, linear.For(QuantizationScheme.W4A8, ScaleRecoveryMode.Recovered));
        Assert.Same(rtn, linear.For(QuantizationScheme.W4A16, ScaleRecoveryMode.Recovered));
        Assert.Same(rtn, linear.For(QuantizationScheme.W4A8, ScaleRecoveryMode.Naive));
        Assert.Same(rtn, linear.For(QuantizationScheme.W4A8, ScaleRecoveryMode.Recovered, WeightRounding.Rtn));
        Assert.Equal(WeightRounding.Grid, new QuantizeOptions { Scheme = QuantizationScheme.W4A8 }.EffectiveRounding);
        Assert.Equal(WeightRounding.Rtn, new QuantizeOptions { Scheme = QuantizationScheme.W4A16, Rounding = WeightRounding.Grid }.EffectiveRounding);
    }

    [Fact]
    public void A_grid_rounded_nano_checkpoint_round_trips_and_W4A8Linear_equals_W4A8Reference_on_it()
    {
        using var tmp = TestPaths.CreateTempDir();
        string outDir = tmp.File("nano-w4a8-grid");
        CompressedTensorsCheckpoint.Write(TestPaths.BundledNano, outDir,
            new CompressedTensorsWriteOptions { Scheme = QuantizationScheme.W4A8 }, GridRoundedRtnQuantizer.Instance);
        using var source = SafetensorsCheckpoint.Open(TestPaths.BundledNano);
        using var quantized = SafetensorsCheckpoint.Open(outDir);
        string module = "model.layers.1.mlp.down_proj";
        var bits = source.GetSpan<ushort>(module + ".weight");
        var w = new float[bits.Length];
        BFloat16.ToFloat(bits, w);
        var read = CompressedTensorsCheckpoint.ReadLinear(quantized, module);
        var expected = W4A8GridRounding.Quantize(module, w, read.N, read.K, 128);
        var rtn = RtnQuantizer.QuantizeWeight(module, w, read.N, read.K, 128);
        Assert.Equal(expected.Q, read.Q);
        Assert.Equal(rtn.ScalesBf16, read.ScalesBf16); // same bf16 scales: vLLM's recovery sees RTN's S
        Assert.Contains(Enumerable.Range(0, read.Q.Length), i => read.Q[i] != rtn.Q[i]);

        int m = 5;
        var rng = new Random(3);
        var x = new float[m * read.K];
        for (int i = 0; i < x.Length; i++) x[i] = BFloat16.Round((float)(rng.NextDouble() * 4 - 2));
        var output = HostTensor.Zeros(m, read.N);
        new W4A8Linear(CpuBackend.Instance, read, ScaleRecoveryMode.Recovered).Forward(HostTensor.Wrap(x, m, read.K), output);
        var y = output.ToArray();
        var reference = W4A8Reference.Gemm(x, m, W4A8Weights.FromW4A16(read));
        W4A8LinearTests.AssertMatchesReference(y, reference);
    }
}
