using Nibble.Backend;
using Nibble.Cpu;
using Nibble.Numerics;
using Nibble.Quantization;

namespace Nibble.Tests.Quantization;

public class W4A8LinearTests
{
    /// <summary>
    /// A layer's output against <see cref="W4A8Reference"/>'s bf16 output: at least 90 % bit for bit, every other element
    /// within one bf16 rounding step (the reference sums in double, the layer in float).
    /// </summary>
    internal static void AssertMatchesReference(float[] y, ushort[] reference)
    {
        int exact = 0;
        for (int i = 0; i < y.Length; i++)
        {
            float r = BFloat16.ToFloat(reference[i]);
            if (y[i] == r) { exact++; continue; }
            // The reference sums in double, the layer in float: at most one bf16 rounding step apart.
            Assert.True(MathF.Abs(y[i] - r) <= MathF.Abs(r) * (1f / 128) + 1e-6f, $"element {i}: {y[i]} vs reference {r}");
        }
        Assert.True(exact >= y.Length * 0.9, $"only {exact}/{y.Length} outputs equal the reference bit for bit");
    }

    static float[] Random(Random rng, int count, float scale)
    {
        var v = new float[count];
        for (int i = 0; i < v.Length; i++) v[i] = BFloat16.Round(scale * (float)(rng.NextDouble() * 2 - 1));
        return v;
    }

    static float[] Run(ILinearLike layer, float[] x, int m)
    {
        var output = HostTensor.Zeros(m, layer.N);
        layer.Forward(HostTensor.Wrap(x, m, layer.K), output);
        return output.ToArray();
    }

    interface ILinearLike { int N { get; } int K { get; } void Forward(Tensor x, Tensor y); }
    sealed class Adapter(Nibble.Models.ILinear l) : ILinearLike
    {
        public int N => l.OutFeatures;
        public int K => l.InFeatures;
        public void Forward(Tensor x, Tensor y) => l.Forward(x, y);
    }

    [Theory]
    [InlineData(5, 37, 384, 128, false, ScaleRecoveryMode.Recovered)]
    [InlineData(1, 19, 200, 200, true, ScaleRecoveryMode.Recovered)]
    [InlineData(7, 53, 256, 128, true, ScaleRecoveryMode.Naive)]
    [InlineData(33, 9, 128, 128, false, ScaleRecoveryMode.Naive)]
    public void W4A8Linear_equals_W4A8Reference_on_random_odd_shapes(int m, int n, int k, int group, bool bias, ScaleRecoveryMode mode)
    {
        var rng = new Random(m * 1000 + n);
        var w = RtnQuantizer.QuantizeWeight("w", Random(rng, n * k, 0.08f), n, k, group);
        var b = bias ? Random(rng, n, 0.5f) : null;
        var x = Random(rng, m * k, 3f);
        for (int i = 0; i < m; i++) x[i * k + rng.Next(k)] = 40f; // an outlier per token sets s_tok
        var y = Run(new Adapter(new W4A8Linear(CpuBackend.Instance, w, mode, b)), x, m);
        var reference = W4A8Reference.Gemm(x, m, W4A8Weights.FromW4A16(w, mode), b);
        W4A8LinearTests.AssertMatchesReference(y, reference);
    }

    [Theory]
    [InlineData(1e-3f)]  // group scales ~1e-4, below E4M3's smallest subnormal: a direct cast flushes them
    [InlineData(3000f)]  // group scales ~400 > 56: q·σ saturates at 448 for |q| ≥ 2 without the ÷8
    public void Recovered_scales_track_W4A16_where_the_naive_cast_fails(float magnitude)
    {
        int m = 4, n = 16, k = 256;
        var rng = new Random(7);
        var w = RtnQuantizer.QuantizeWeight("w", Random(rng, n * k, magnitude), n, k, 128);
        var x = Random(rng, m * k, 1f);
        var exact = Run(new Adapter(new W4A16Linear(CpuBackend.Instance, w)), x, m);
        double Error(ScaleRecoveryMode mode)
        {
            var y = Run(new Adapter(new W4A8Linear(CpuBackend.Instance, w, mode)), x, m);
            double num = 0, den = 0;
            for (int i = 0; i < y.Length; i++) { num += (y[i] - exact[i]) * (double)(y[i] - exact[i]); den += exact[i] * (double)exact[i]; }
            return Math.Sqrt(num / den);
        }
        double recovered = Error(ScaleRecoveryMode.Recovered), naive = Error(ScaleRecoveryMode.Naive);
        Assert.True(recovered < 0.1, $"recovered relative error {recovered:G3}");
        Assert.True(naive > 0.3, $"naive relative error {naive:G3} should be large here");
    }
}
