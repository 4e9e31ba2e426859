using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Nibble.Cuda.Kernels;
using Xunit;

namespace Nibble.Cuda.Tests;

/// <summary>Each kernel takes one by-value struct: its C# mirror must have the size the .cu asserts (runs without a GPU).</summary>
public partial class KernelParamsTests
{
    [GeneratedRegex(@"static_assert\(sizeof\((\w+)\) == (\d+)")]
    private static partial Regex SizeAssert();

    [Theory]
    [InlineData("W4A8Gemm.cu", "W4A8GemmParams", typeof(W4A8Gemm), "Params")]
    [InlineData("W4A8GemmMma.cu", "W4A8DecodeParams", typeof(W4A8GemmDecode), "Params")]
    [InlineData("W4A8GemmMma.cu", "W4A8X16Params", typeof(W4A8GemmDecode), "X16Params")]
    [InlineData("W4A8GemmWs.cu", "W4A8WsParams", typeof(W4A8Gemm), "WsParams")]
    [InlineData("W4A16Gemm.cu", "GemmParams", typeof(W4A8Gemm), "Params")]
    [InlineData("W4A8Gemm.cu", "LutProbeParams", typeof(W4A8Gemm), "ProbeParams")]
    [InlineData("W4A16Gemm.cu", "W4A16PrepParams", typeof(W4A16GemmOperands), "PrepParams")]
    [InlineData("W4A8WeightPrep.cu", "W4A8PrepParams", typeof(W4A8WeightPrep), "Params")]
    [InlineData("ActivationQuantFp8.cu", "ActQuantParams", typeof(ActivationQuantFp8), "Params")]
    [InlineData("RandomFill.cu", "FillParams", typeof(RandomFill), "Params")]
    [InlineData("QuantLinearIo.cu", "ActQuantF32Params", typeof(QuantLinearIoKernel), "ActQuantParams")]
    [InlineData("QuantLinearIo.cu", "Bf16ToF32Params", typeof(QuantLinearIoKernel), "Bf16ToF32Params")]
    public void The_CSharp_parameter_struct_has_the_size_the_kernel_asserts(string file, string cStruct, Type owner, string nested)
    {
        var asserted = SizeAssert().Matches(KernelCache.Source(file)).Where(m => m.Groups[1].Value == cStruct).Select(m => int.Parse(m.Groups[2].Value)).ToList();
        Assert.Single(asserted);
        var type = owner.GetNestedType(nested, BindingFlags.NonPublic | BindingFlags.Public)!;
        Assert.NotNull(type);
        Assert.Equal(asserted[0], Marshal.SizeOf(type));
    }

    [Theory]
    [InlineData("W4A8Gemm.cu")]
    [InlineData("W4A8GemmWs.cu")]
    public void Kernel_headers_are_spliced_once_and_no_include_reaches_NVRTC(string file)
    {
        var source = KernelCache.SpliceIncludes(KernelCache.Source(file));
        Assert.DoesNotContain("#include", source);
        Assert.Single(Regex.Matches(source, @"void build_lut\("));
        Assert.Single(Regex.Matches(source, @"u32 prmt\("));
    }

    [Fact]
    public void The_decode_kernel_source_splices_to_one_copy_of_the_common_helpers()
    {
        var source = KernelCache.SpliceIncludes(KernelCache.Source("W4A8GemmMma.cu"));
        Assert.DoesNotContain("#include", source);
        Assert.Single(Regex.Matches(source, @"u32 prmt\("));
    }

    // The decode plans (no GPU needed): every M <= 32 plan names a W4A8_INSTANCE the .cu builds, and that macro builds
    // the v6 (unguarded ring steps) form next to v3 under the name W4A8GemmDecode.KernelName gives it.
    [Fact]
    public void Decode_plans_name_built_kernels_in_both_the_v3_and_the_unguarded_form()
    {
        var source = KernelCache.Source("W4A8GemmMma.cu");
        Assert.Matches(@"w4a8_mma_m##MT##_w##WN\(const W4A8DecodeParams p\) \{\s*\\\s*w4a8_decode_impl<MT, WN, false>", source);
        Assert.Matches(@"w4a8_mma_m##MT##_w##WN##u\(const W4A8DecodeParams p\) \{\s*\\\s*w4a8_decode_impl<MT, WN, true>", source);
        Assert.Matches(@"w4a8_mma_m##MT##_w##WN##h\(const W4A8DecodeParams p\) \{\s*\\\s*w4a8_decode_impl<MT, WN, true, true, true>", source);
        foreach (int m in new[] { 1, 3, 7, 8, 9, 13, 16, 17, 31, 32 })
        foreach (var (n, k) in new[] { (384, 1152), (4096, 4096), (28672, 8192), (57344, 8192), (8192, 28672) })
        {
            var plan = GemmPlan.ChooseW4A8(m, n, k, 132, 32, _ => 4);
            Assert.True(plan.Mma);
            Assert.Matches($@"W4A8_INSTANCE\({plan.MT}, {plan.WN}\)", source);
            Assert.Equal($"w4a8_mma_m{plan.MT}_w{plan.WN}u", W4A8GemmDecode.KernelName(plan, unguarded: true));
            Assert.Equal($"w4a8_mma_m{plan.MT}_w{plan.WN}h", W4A8GemmDecode.KernelName(plan, unguarded: true, f16Activations: true));
            Assert.Equal(0, plan.KBlocksPerSplit % 2); // the unguarded steps rely on even split ends
        }
    }

    // The warp-specialized plan (no GPU needed): every plan names a kernel instance the .cu builds, fits Hopper's 227 KB
    // of shared memory, tiles N exactly and covers K with whole 128-wide groups, for every cost model.
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Warp_specialized_plans_name_built_kernels_and_cover_the_problem(int model)
    {
        var source = KernelCache.Source("W4A8GemmWs.cu");
        foreach (int m in new[] { 33, 64, 65, 100, 128, 129, 256, 511, 2048, 8193 })
        foreach (var (n, k) in new[] { (128, 128), (384, 1152), (4096, 4096), (6144, 4096), (28672, 4096), (4096, 14336), (57344, 8192), (12288, 12288) })
        {
            var plan = GemmPlan.ChooseWs(m, n, k, 132, model);
            Assert.True(plan.Ws);
            Assert.Matches($@"W4A8_WS_INSTANCE\({plan.WN / 2}, {plan.MT}, {plan.KS}\)", source);
            Assert.Equal($"w4a8_ws_n{plan.MT}_r{plan.WN / 2}_w{plan.KS}", plan.W4A8Kernel);
            Assert.InRange((int)plan.W4A8SharedBytes, 1, 232448);
            Assert.InRange(GemmPlan.WsSharedBytes(plan.MT, plan.WN / 2, tmaStore: false), 1, 232448);
            if (plan.MT * (plan.WN / 2) <= 128) // two CTAs per SM: each within half the SM's shared memory, at least 2 stages
                Assert.InRange(GemmPlan.WsSharedBytes(plan.MT, plan.WN / 2, tmaStore: true, ctasPerSm: 2), 1, 115712);
            Assert.Equal(0, n % (64 * plan.WN));
            Assert.Equal(n / (64 * plan.WN), plan.NTiles);
            Assert.Equal((m + plan.MT - 1) / plan.MT, plan.MTiles);
            Assert.Equal(0, plan.KBlocksPerSplit % 2);
            Assert.True((long)plan.KBlocksPerSplit * plan.Splits >= k / 64, $"splits do not cover K={k}");
            Assert.True((long)plan.KBlocksPerSplit * (plan.Splits - 1) < k / 64, $"an empty split at K={k}");
        }
    }

    // Cost model 2 against the gemm-large2 H100 sweep (bench/results/gemm-large2-h100-sweep.txt): at these points the
    // fastest measured plan (token tile : 64-row slices : splits) differed from the old model's pick, by up to 2x.
    [Theory]
    [InlineData(256, 4096, 4096, "64:2:1")]     // old pick n256 s3: 42.6 us; measured best 21.5
    [InlineData(128, 4096, 4096, "64:2:2")]     // old n128 s2: 23.7; best 17.2
    [InlineData(64, 4096, 4096, "64:2:4")]      // old n64 s2: 18.9; best 15.6
    [InlineData(64, 8192, 28672, "64:2:2")]     // old n64x256 rows s3: 80.3; best 62.4
    [InlineData(128, 8192, 28672, "128:2:2")]   // old n128x256 rows s4: 101.2; best 73.2
    [InlineData(128, 12288, 12288, "128:2:1")]  // old n128x256 rows s2: 76.2; best 58.2
    [InlineData(2048, 28672, 4096, "256:2:1")]  // large M: unchanged
    public void Cost_model_2_picks_the_fastest_measured_plan(int m, int n, int k, string measuredBest)
    {
        var p = GemmPlan.ChooseWs(m, n, k, 132, costModel: 2);
        Assert.Equal(measuredBest, $"{p.MT}:{p.WN}:{p.Splits}");
    }
}
