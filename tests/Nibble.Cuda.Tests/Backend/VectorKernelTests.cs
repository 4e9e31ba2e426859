using Nibble.Backend;
using Nibble.Cuda.Backend;
using Nibble.Cuda.Kernels;
using Nibble.Numerics;
using static Nibble.Cuda.Tests.Backend.GpuBackend;

namespace Nibble.Cuda.Tests.Backend;

/// <summary>
/// The v3 memory-bound kernels at the sizes where their paths change: float4 add/silu_mul over a large odd count
/// (vector loop, remainder loop and scalar tail) and from a base 4 bytes off 16-byte alignment (scalar fallback);
/// per-token FP8 quantization (bf16 and F32 inputs) with the row cached in registers, exactly at the cache limit
/// (16384 values) and just past it (two-pass loop), byte-exact against the CPU references, outputs poisoned.
/// </summary>
public class VectorKernelTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1 << 20 | 3, 0)]   // vector path + tail
    [InlineData(1 << 20 | 3, 1)]   // base one float past 16-byte alignment: scalar path
    [InlineData(4 * 256 * 4 * 1056 + 8, 0)] // more than one full wave of unrolled steps
    [InlineData(5, 0)]
    public void Add_and_silu_mul_match_cpu(int n, int offset)
    {
        var gpu = Require();
        var rng = new Random(n + offset);
        var a = GpuBackend.Random(rng, n + offset, 6f);
        var b = GpuBackend.Random(rng, n + offset, 2f);
        Tensor Slice(float[] v) => gpu.FromHost(v, n + offset, 1).SliceRows(offset, n);
        var ha = a.AsSpan(offset).ToArray();
        var hb = b.AsSpan(offset).ToArray();

        var cs = CpuRef.Zeros(n, 1);
        CpuRef.SiluMul(HostTensor.Wrap(ha, n, 1), HostTensor.Wrap(hb, n, 1), cs);
        var poison = new float[n + offset];
        Array.Fill(poison, float.NaN);
        var gs = Slice(poison);
        gpu.SiluMul(Slice(a), Slice(b), gs);
        double d1 = AssertClose(cs.ToArray(), gs.ToArray(), 1e-6, 1e-5, $"silu_mul n={n} offset={offset}");

        var ca = HostTensor.Wrap((float[])ha.Clone(), n, 1);
        CpuRef.Add(ca, HostTensor.Wrap(hb, n, 1));
        var ga = Slice(a);
        gpu.Add(ga, Slice(b));
        AssertClose(ca.ToArray(), ga.ToArray(), 0, 0, $"add n={n} offset={offset}");
        output.WriteLine($"n={n} offset={offset}: silu_mul max |diff| {d1:E2}, add exact");
    }

    [Theory]
    [InlineData(3, 16384, false)]
    [InlineData(3, 16384, true)]
    [InlineData(5, 16448, true)]   // past the register cache: two-pass loop
    [InlineData(2, 16392, false)]
    [InlineData(7, 24, false)]
    public void Bf16_token_quantization_matches_the_cpu_reference(int m, int k, bool gemmOrder)
    {
        GpuAvailability.RequireGpu();
        var (ctx, stream) = (Gpu.Context, Gpu.Stream);
        var rng = new Random(m * k);
        var x = RandomBf16(rng, m * k, 3f);
        var expected8 = new byte[m * k];
        var expectedS = new float[m];
        ActivationQuantFp8.Reference(x, m, k, expected8, expectedS);
        using var dx = DeviceBuffer<ushort>.From(ctx, x, stream);
        using var d8 = new DeviceBuffer<byte>(ctx, (long)m * k);
        using var ds = new DeviceBuffer<float>(ctx, m);
        d8.FillBytes(0x7F, stream);
        ds.FillBytes(0xFF, stream);
        ActivationQuantFp8.Run(Gpu.Kernels, stream, dx, d8, ds, m, k, gemmOrder);
        Assert.Equal(gemmOrder ? ActivationQuantFp8.ToGemmOrder(expected8, m, k) : expected8, d8.ToArray(stream));
        Assert.Equal(expectedS, ds.ToArray(stream));
    }

    [Theory]
    [InlineData(3, 16384, true)]
    [InlineData(4, 14336, true)]
    [InlineData(3, 16388, false)]  // past the register cache: two-pass loop
    [InlineData(2, 16448, true)]
    [InlineData(9, 44, false)]
    public void F32_token_quantization_matches_the_cpu_reference(int m, int k, bool gemmOrder)
    {
        GpuAvailability.RequireGpu();
        var (ctx, stream) = (Gpu.Context, Gpu.Stream);
        var rng = new Random(m + k);
        var x = GpuBackend.Random(rng, m * k, 5f);
        for (int i = 0; i < m * k; i += 97) x[i] *= 40f; // outliers set the scale
        var (exp8, expS) = TokenScale.Quantize(x, m, k);
        using var dx = DeviceBuffer<float>.From(ctx, x, stream);
        using var d8 = new DeviceBuffer<byte>(ctx, (long)m * k);
        using var ds = new DeviceBuffer<float>(ctx, m);
        d8.FillBytes(0x7F, stream);
        ds.FillBytes(0xFF, stream);
        QuantLinearIoKernel.ActivationQuantFp8F32(Gpu.Kernels, stream, dx.Pointer, d8, ds, m, k, gemmOrder);
        Assert.Equal(gemmOrder ? ActivationQuantFp8.ToGemmOrder(exp8, m, k) : exp8, d8.ToArray(stream));
        Assert.Equal(expS, ds.ToArray(stream));
    }
}
