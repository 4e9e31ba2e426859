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
}
