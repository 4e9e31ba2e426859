using Nibble.Cuda.Kernels;
using Xunit;

namespace Nibble.Cuda.Tests;

/// <summary>
/// The small-M W4A8 kernel (W4A8GemmMma.cu): its σ decode table (CPU, exhaustive) and every kernel variant at odd M,
/// odd multiples of 128 for N and K, adversarial scales, bias on and off, with and without split-K, on poisoned outputs,
/// against the exact-product reference (double sums, the kernel's FP32 epilogue, bias before the one bf16 rounding).
/// </summary>
public class W4A8DecodeKernelTests(ITestOutputHelper output)
{
    [Fact]
    public void The_decode_table_gives_e4m3_of_q_times_sigma_exactly_through_one_f16_fma_for_every_sigma_and_code()
    {
        var words = W4A8DecodeTable.Build();
        Assert.Equal(W4A8DecodeTable.Bytes / 4, words.Length);
        int checkedValues = 0;
        for (int sb = 0; sb < 256; sb++)
        {
            if ((sb & 0x7F) == 0x7F) continue; // NaN scales are not produced by the preprocessing
            float sigma = HostNumerics.DecodeE4M3((byte)sb);
            uint unitBits = words[W4A8DecodeTable.ScaleOffsetBytes / 4 + 2 * sb], biasBits = words[W4A8DecodeTable.ScaleOffsetBytes / 4 + 2 * sb + 1];
            Assert.Equal(unitBits & 0xFFFF, unitBits >> 16);
            Assert.Equal(biasBits & 0xFFFF, biasBits >> 16);
            double unit = (double)BitConverter.UInt16BitsToHalf((ushort)unitBits), bias = (double)BitConverter.UInt16BitsToHalf((ushort)biasBits);
            for (int code = 0; code < 16; code++)
            {
                // The kernel's lookup: index = code & 7 into the sign-set bytes (words 0, 1) or the sign-clear ones (2, 3).
                int i = code & 7, word = sb * 4 + ((code & 8) != 0 ? 0 : 2) + i / 4;
                int u = (int)(words[word] >> (8 * (i % 4))) & 0xFF;
                // f16 fma (1024 + u)·unit + bias: every operand is an exact f16, so the double result is the exact one;
                // it must equal the e4m3 weight and be an f16 value, so the single rounding of the fma changes nothing.
                double x = 1024 + u;
                Assert.Equal(x, (double)(Half)x);
                double got = x * unit + bias;
                double expected = HostNumerics.DecodeE4M3(HostNumerics.EncodeE4M3(W4A8DecodeTable.CodeValue(code) * sigma));
                Assert.True(got == expected, $"sigma 0x{sb:X2} code {code}: {got} != {expected}");
                Assert.Equal(got, (double)(Half)got);
                checkedValues++;
            }
        }
        Assert.Equal(254 * 16, checkedValues);
    }

    public static TheoryData<int> Ms => new() { 1, 3, 7, 13, 16, 31 };

    [Theory]
    [MemberData(nameof(Ms))]
    public void Every_decode_variant_matches_the_exact_product_reference_at_odd_shapes(int m)
    {
        Gpu.RequireHopper();
        foreach (var (n, k) in new[] { (384, 1152), (640, 2432) })
        {
            var rng = new Random(m * 1000 + n + k);
            using var problem = new W4A8Problem(rng, m, n, k, minus8Rows: 2, adversarialScales: true);
            var bias = Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * 4)).ToArray(); // the draws after the activations
            var c = problem.ChannelScale;
            var acc = problem.Exact(channelScale: Enumerable.Repeat(1f, n).ToArray()); // ts·Σ, no c'

            using var db = DeviceBuffer<float>.From(Gpu.Context, bias, Gpu.Stream);
            using var gemm = new W4A8Gemm(Gpu.Kernels, Gpu.Context) { DecodeUnguarded = false, DecodeF16Activations = false, DecodeF16Auto = false };
            using var gemmFast = new W4A8Gemm(Gpu.Kernels, Gpu.Context) { DecodeUnguarded = true, DecodeF16Activations = false, DecodeF16Auto = false };
            using var gemmHalf = new W4A8Gemm(Gpu.Kernels, Gpu.Context) { DecodeUnguarded = true, DecodeF16Activations = true, DecodeF16Auto = false };
            // 1, 2, 4 slabs per warp, each as v3, v6 (unguarded ring steps) and v8 (v6 with late refills + f16 activations).
            foreach (var (mt, wn, ks) in new[] { (8, 1, 1), (8, 2, 1), (8, 4, 1), (16, 1, 1), (16, 2, 1), (32, 1, 1), (32, 2, 1) })
            foreach (var g in new[] { gemm, gemmFast, gemmHalf })
            {
                if (n % (64 * wn) != 0) continue;
                int groups = k / 128, mTiles = (m + mt - 1) / mt, nTiles = n / (64 * wn);
                // whole K, one group per split, three (ragged last split), four (v6: one unguarded ring step, then the guarded tail)
                foreach (int gps in new[] { groups, 1, 3, 4 })
                    foreach (bool withBias in new[] { false, true })
                    {
                        int splits = (groups + gps - 1) / gps;
                        var plan = new GemmPlan(mt, wn, ks, splits, 2 * gps, mTiles, nTiles, 8, Mma: true);
                        var got = problem.RunPoisoned(g, plan, withBias ? db : null);
                        var expected = new double[acc.Length];
                        int same = 0;
                        for (int i = 0; i < acc.Length; i++)
                        {
                            // The kernel's epilogue in FP32: c'·(s_tok·Σ) + bias, then bf16 (acc here is already s_tok·Σ in double).
                            float v = c[i % n] * (float)acc[i];
                            if (withBias) v += bias[i % n];
                            expected[i] = v;
                            if (got[i] == HostNumerics.FloatToBf16(v)) same++;
                        }
                        double err = Reference.RelativeError(got, expected);
                        string name = $"{W4A8GemmDecode.KernelName(plan, g.DecodeUnguarded, g.DecodeF16Activations)} splits={splits} bias={withBias}";
                        if (gps == groups && !withBias)
                            output.WriteLine($"M={m} N={n} K={k} {name}: rel. error {err:E2}, {same}/{got.Length} bf16 outputs identical");
                        Assert.True(err <= 1e-3, $"M={m} N={n} K={k} {name}: relative error {err:E3} > 1e-3; worst rows {Reference.WorstRows(got, expected, m, n)}");
                    }
            }
        }
    }

    [Theory]
    [InlineData(1, 1152, 4096, false)]
    [InlineData(16, 3072, 1408, false)]
    [InlineData(32, 384, 8192, false)]
    // v6: shapes whose planned splits are long enough for unguarded ring steps before the guarded tail (wide N, few
    // splits), and one whose splits are all tail.
    [InlineData(1, 8192, 4096, true)]
    [InlineData(7, 3072, 1408, true)]
    [InlineData(13, 28672, 1024, true)]
    [InlineData(31, 12288, 2048, true)]
    // v8 (v6 with late refills + f16 activations) at the same shapes.
    [InlineData(1, 8192, 4096, true, true)]
    [InlineData(7, 3072, 1408, true, true)]
    [InlineData(13, 28672, 1024, true, true)]
    [InlineData(31, 12288, 2048, true, true)]
    public void The_planned_decode_kernel_matches_the_reference_twice_in_a_row(int m, int n, int k, bool unguarded, bool half = false)
    {
        Gpu.RequireHopper();
        using var problem = new W4A8Problem(new Random(m + n + k), m, n, k, minus8Rows: 1, adversarialScales: true);
        var expected = problem.Exact();
        using var gemm = new W4A8Gemm(Gpu.Kernels, Gpu.Context) { DecodeUnguarded = unguarded, DecodeF16Activations = half, DecodeF16Auto = false, DecodeWideOnlyAbove16 = false };
        var plan = gemm.Plan(m, n, k);
        Assert.True(plan.Mma, $"M={m} should plan the decode kernel, got {plan}");
        for (int rep = 0; rep < 2; rep++) // split-K tickets must reset themselves
        {
            var err = Reference.RelativeError(problem.RunPoisoned(gemm, plan), expected);
            output.WriteLine($"M={m} N={n} K={k} {W4A8GemmDecode.KernelName(plan, unguarded, half)} splits={plan.Splits}: rel. error {err:E2}");
            Assert.True(err <= 1e-3, $"relative error {err:E3} > 1e-3");
        }
    }

    // The default settings: v6 up to M = 8, v8 (f16 activation pass) above it on matrices of at least 100M weights.
    [Theory]
    [InlineData(8, "u")]
    [InlineData(11, "h")]
    public void The_default_decode_kernel_switches_to_f16_activations_above_M_8_on_large_matrices(int m, string suffix)
    {
        Gpu.RequireHopper();
        const int n = 16384, k = 6144; // 100.7M weights
        using var problem = new W4A8Problem(new Random(m * 31 + 5), m, n, k, minus8Rows: 1, adversarialScales: true);
        var expected = problem.Exact();
        using var gemm = new W4A8Gemm(Gpu.Kernels, Gpu.Context);
        string kernel = gemm.KernelFor(m, n, k);
        Assert.EndsWith(suffix, kernel);
        for (int rep = 0; rep < 2; rep++)
        {
            var err = Reference.RelativeError(problem.RunPoisoned(gemm), expected);
            output.WriteLine($"M={m} N={n} K={k} {kernel}: rel. error {err:E2}");
            Assert.True(err <= 1e-3, $"relative error {err:E3} > 1e-3");
        }
    }

    [Theory]
    [MemberData(nameof(Ms))]
    public void W4A16_small_M_plans_with_one_and_two_slabs_per_warp_match_the_exact_product_reference(int m)
    {
        GpuAvailability.RequireGpu();
        foreach (var (n, k) in new[] { (384, 1152), (640, 2432) })
        {
            using var problem = new W4A16Problem(new Random(m * 77 + n + k), m, n, k, minus8Rows: 1, adversarialScales: true);
            var expected = problem.Exact();
            foreach (int wn in new[] { 1, 2, -1 })
            {
                using var gemm = new W4A16Gemm(Gpu.Kernels, Gpu.Context) { SmallMWn = wn };
                var plan = gemm.Plan(m, n, k);
                for (int rep = 0; rep < 2; rep++)
                {
                    var err = Reference.RelativeError(problem.RunPoisoned(gemm, plan), expected);
                    if (rep == 0) output.WriteLine($"W4A16 M={m} N={n} K={k} wn={plan.WN} splits={plan.Splits}: rel. error {err:E2}");
                    Assert.True(err <= 1e-3, $"W4A16 M={m} N={n} K={k} wn={plan.WN}: relative error {err:E3} > 1e-3");
                }
            }
        }
    }
}
