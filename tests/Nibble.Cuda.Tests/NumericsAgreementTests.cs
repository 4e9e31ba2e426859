using Nibble.Cuda.Kernels;
using Nibble.Numerics;
using Xunit;

namespace Nibble.Cuda.Tests;

/// <summary>
/// The GPU kernels' CPU twins (which the GPU tests compare byte for byte) agree with the project's numerics contract in
/// Nibble.Numerics. The first three run on any machine (CI); the last compares the GPU GEMM with W4A8Reference itself.
/// </summary>
public class NumericsAgreementTests(ITestOutputHelper output)
{
    [Fact]
    public void The_prep_twin_recovers_the_same_FP8_group_scales_and_channel_scales_as_ScaleRecovery()
    {
        const int n = 128, k = 1024;
        var rng = new Random(11);
        var scales = Reference.RandomScales(rng, n, k, adversarial: true);
        var packed = Reference.RandomPacked(rng, n, k);
        var (sigma, c, _, _) = Reference.Prep(packed, scales, n, k);
        var expected = ScaleRecovery.Recover(scales, n, k / 128);
        Assert.Equal(expected.GroupScales, sigma);
        Assert.Equal(expected.ChannelScale, c);
    }

    [Fact]
    public void The_activation_quantization_twin_matches_TokenScale()
    {
        const int m = 9, k = 768;
        var x = Reference.RandomActivations(new Random(12), m, k);
        var x8 = new byte[m * k];
        var s = new float[m];
        ActivationQuantFp8.Reference(x, m, k, x8, s);
        var (x8Ref, sRef) = TokenScale.Quantize(x.Select(HostNumerics.Bf16ToFloat).ToArray(), m, k);
        Assert.Equal(sRef, s);
        Assert.Equal(x8Ref, x8);
    }

    [Fact]
    public void Host_e4m3_rounding_matches_Fp8E4M3_satfinite_on_boundaries_and_random_values()
    {
        var rng = new Random(13);
        var values = new List<float>();
        for (int b = 0; b < 256; b++)
        {
            if ((b & 0x7F) == 0x7F) continue;
            float v = Fp8E4M3.Decode((byte)b);
            values.Add(v); values.Add(BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(v) + 1)); values.Add(BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(v) - 1));
        }
        for (int i = 0; i < 20000; i++) values.Add((float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-14, 10))));
        values.AddRange([464f, 480f, 1e6f, -1e6f, MathF.ScaleB(1f, -10), -MathF.ScaleB(1f, -10), MathF.ScaleB(3f, -11)]);
        var bad = values.Where(v => HostNumerics.EncodeE4M3(v) != Fp8E4M3.EncodeSatFinite(v) && !(v == 0)).Take(5).ToList();
        Assert.True(bad.Count == 0, "differs at " + string.Join(", ", bad));
    }

    [Theory]
    [InlineData(3, 256, 1024)]
    [InlineData(40, 384, 512)]
    public void The_GPU_W4A8_GEMM_matches_W4A8Reference(int m, int n, int k)
    {
        Gpu.RequireHopper();
        var rng = new Random(m + 100 * n + k);
        var packed = Reference.RandomPacked(rng, n, k, minus8Rows: 1);
        var scales = Reference.RandomScales(rng, n, k, adversarial: true);
        var x = Reference.RandomActivations(rng, m, k);
        var weights = W4A8Weights.FromW4A16(QuantizedLinearWeights.FromPacked(packed, scales, n, k, 128));
        var expected = W4A8Reference.Gemm(x.Select(HostNumerics.Bf16ToFloat).ToArray(), m, weights);
        var (ctx, stream) = (Gpu.Context, Gpu.Stream);
        using var layer = new W4A8Linear(Gpu.Kernels, ctx, W4A8GemmOperands.FromCheckpoint(Gpu.Kernels, ctx, stream, packed, scales, n, k));
        using var dx = DeviceBuffer<ushort>.From(ctx, x, stream);
        using var dy = new DeviceBuffer<ushort>(ctx, (long)m * n);
        dy.FillBytes(0xFF, stream);
        layer.Run(stream, dx, dy, m);
        var got = dy.ToArray(stream);
        double num = 0, den = 0;
        int equal = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double g = HostNumerics.Bf16ToFloat(got[i]), e = HostNumerics.Bf16ToFloat(expected[i]);
            Assert.False(double.IsNaN(g), $"output {i} was not written");
            num += (g - e) * (g - e); den += e * e;
            if (got[i] == expected[i]) equal++;
        }
        double err = Math.Sqrt(num / den);
        output.WriteLine($"M={m} N={n} K={k}: rel. error vs W4A8Reference {err:E2}, {100.0 * equal / got.Length:F1}% bit-identical bf16 outputs");
        Assert.True(err <= 2.5e-3, $"relative error {err:E2}");
        layer.Operands.Dispose();
    }
}

public class ChannelWiseTests
{
    [Fact]
    public void Channel_wise_scales_expand_to_groups_that_recover_sigma_56_and_the_per_channel_scale()
    {
        const int n = 128, k = 512;
        var rng = new Random(21);
        var perChannel = Enumerable.Range(0, n).Select(_ => HostNumerics.FloatToBf16((float)(2e-3 + rng.NextDouble() * 1e-2))).ToArray(); // above 448/(448·512): no floor on c
        var expanded = W4A8WeightPrep.ExpandChannelScales(perChannel, n, k);
        var (sigma, c, _, _) = Reference.Prep(Reference.RandomPacked(rng, n, k), expanded, n, k);
        Assert.All(sigma, s => Assert.Equal(56f, HostNumerics.DecodeE4M3(s)));
        for (int r = 0; r < n; r++)
            Assert.Equal(8f * MathF.Max(HostNumerics.Bf16ToFloat(perChannel[r]) / 448f, 1f / (448f * 512f)), c[r]);
    }

    [Fact]
    public void A_group_size_other_than_128_or_K_is_refused_with_one_sentence()
    {
        GpuAvailability.RequireGpu();
        var e = Assert.Throws<NibbleException>(() => W4A8GemmOperands.FromCheckpoint(Gpu.Kernels, Gpu.Context, Gpu.Stream,
            new int[128 * 32], new ushort[128 * 4], 128, 256, groupSize: 64));
        Assert.Contains("group size 128", e.Message);
    }
}
