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
    [InlineData("W4A8GemmMma.cu", "W4A8GemmParams", typeof(W4A8Gemm), "Params")]
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
    [InlineData("W4A8GemmMma.cu")]
    [InlineData("W4A8GemmWs.cu")]
    public void Kernel_headers_are_spliced_once_and_no_include_reaches_NVRTC(string file)
    {
        var source = KernelCache.SpliceIncludes(KernelCache.Source(file));
        Assert.DoesNotContain("#include", source);
        Assert.Single(Regex.Matches(source, @"void build_lut\("));
        Assert.Single(Regex.Matches(source, @"u32 prmt\("));
    }
    // The warp-specialized plan (no GPU needed): every plan names a kernel instance the .cu builds, fits Hopper's 227 KB
    // of shared memory, tiles N exactly and covers K with whole 128-wide groups, for both cost models.
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
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
            Assert.Equal(0, n % (64 * plan.WN));
            Assert.Equal(n / (64 * plan.WN), plan.NTiles);
            Assert.Equal((m + plan.MT - 1) / plan.MT, plan.MTiles);
            Assert.Equal(0, plan.KBlocksPerSplit % 2);
            Assert.True((long)plan.KBlocksPerSplit * plan.Splits >= k / 64, $"splits do not cover K={k}");
            Assert.True((long)plan.KBlocksPerSplit * (plan.Splits - 1) < k / 64, $"an empty split at K={k}");
        }
    }
}
