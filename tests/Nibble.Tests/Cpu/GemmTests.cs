using Nibble.Cpu;

namespace Nibble.Tests.Cpu;

public unsafe class GemmTests
{
    static float[] Random(Random rng, int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();

    static double[] Naive(float[] a, float[] w, int m, int n, int k)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)a[i * k + p] * w[j * k + p];
                c[i * n + j] = s;
            }
        return c;
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(1, 37, 300)]
    [InlineData(3, 129, 17)]
    [InlineData(5, 16, 16)]
    [InlineData(7, 33, 513)]
    [InlineData(13, 47, 259)]
    [InlineData(130, 250, 600)]
    [InlineData(64, 1100, 96)]
    [InlineData(517, 45, 130)]
    public void Float_weights_match_a_naive_product_at_odd_shapes(int m, int n, int k)
    {
        var rng = new Random(m * 1000 + n * 10 + k);
        var a = Random(rng, m * k);
        var w = Random(rng, n * k);
        var c = new float[m * n];
        fixed (float* pa = a) fixed (float* pw = w) fixed (float* pc = c)
            Gemm.MatMulTransB(pa, k, pw, k, pc, n, m, n, k);
        var expected = Naive(a, w, m, n, k);
        for (int i = 0; i < c.Length; i++)
            Assert.True(Math.Abs(c[i] - expected[i]) <= 1e-4 * Math.Sqrt(k) + 1e-5, $"[{i / n},{i % n}] {c[i]} vs {expected[i]} (m={m} n={n} k={k})");
    }

    public static TheoryData<int, int, int, int> KernelCases()
    {
        var data = new TheoryData<int, int, int, int>();
        foreach (int kernel in new[] { 0, 1, 2, 3 })
            foreach (var (m, n, k) in new[] { (5, 70, 33), (13, 129, 300), (25, 97, 257), (301, 37, 100) })
                data.Add(kernel, m, n, k);
        return data;
    }

    [Theory]
    [MemberData(nameof(KernelCases))]
    public void Every_micro_kernel_matches_a_naive_product_including_edge_tiles(int kernel, int m, int n, int k)
    {
        Assert.SkipWhen(kernel > 0 && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated, "no AVX-512 on this CPU");
        var rng = new Random(kernel * 31 + m);
        var a = Random(rng, m * k);
        var w = Random(rng, n * k);
        var c = new float[m * n];
        fixed (float* pa = a) fixed (float* pw = w) fixed (float* pc = c)
            Gemm.MatMulTransBWith(kernel, pa, k, pw, false, k, pc, n, m, n, k);
        var expected = Naive(a, w, m, n, k);
        for (int i = 0; i < c.Length; i++)
            Assert.True(Math.Abs(c[i] - expected[i]) <= 1e-4 * Math.Sqrt(k) + 1e-5, $"kernel {kernel} [{i / n},{i % n}] {c[i]} vs {expected[i]}");
    }

    [Theory]
    [InlineData(1, 100, 70)]
    [InlineData(2, 31, 33)]
    [InlineData(9, 77, 300)]
    [InlineData(100, 64, 512)]
    public void Bf16_weights_match_a_naive_product_of_the_widened_weights(int m, int n, int k)
    {
        var rng = new Random(n * 7 + k);
        var a = Random(rng, m * k);
        var bits = Random(rng, n * k).Select(Nibble.Numerics.BFloat16.FromFloat).ToArray();
        var widened = bits.Select(Nibble.Numerics.BFloat16.ToFloat).ToArray();
        var c = new float[m * n];
        fixed (float* pa = a) fixed (ushort* pw = bits) fixed (float* pc = c)
            Gemm.MatMulTransB(pa, k, pw, k, pc, n, m, n, k);
        var expected = Naive(a, widened, m, n, k);
        for (int i = 0; i < c.Length; i++)
            Assert.True(Math.Abs(c[i] - expected[i]) <= 1e-4 * Math.Sqrt(k) + 1e-5, $"[{i / n},{i % n}] {c[i]} vs {expected[i]}");
    }
}
