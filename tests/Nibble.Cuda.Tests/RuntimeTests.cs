using Nibble.Cuda.Kernels;
using Xunit;

namespace Nibble.Cuda.Tests;

public class RuntimeTests(ITestOutputHelper output)
{
    [Fact]
    public void Opening_a_GPU_that_does_not_exist_gives_one_clear_sentence()
    {
        GpuAvailability.RequireGpu();
        var e = Assert.Throws<NibbleException>(() => CudaContext.Open(99));
        Assert.Contains("GPU 99 does not exist", e.Message);
    }

    [Fact]
    public void Device_buffers_round_trip_and_report_the_device()
    {
        GpuAvailability.RequireGpu();
        var data = Enumerable.Range(0, 1000).Select(i => i * 3 - 7).ToArray();
        using var b = DeviceBuffer<int>.From(Gpu.Context, data);
        Assert.Equal(data, b.ToArray());
        output.WriteLine($"{Gpu.Context.Name} {Gpu.Context.Arch} SMs={Gpu.Context.MultiprocessorCount} driver {Gpu.Context.DriverVersionText} NVRTC {KernelCache.NvrtcVersion()}");
        Assert.True(Gpu.Context.MultiprocessorCount > 0);
    }

    [Fact]
    public void A_second_kernel_cache_loads_the_cubin_from_disk()
    {
        GpuAvailability.RequireGpu();
        var dir = Path.Combine(Path.GetTempPath(), "nibble-kc-" + Guid.NewGuid().ToString("N"));
        try
        {
            using (var cold = new KernelCache(Gpu.Context, dir)) { cold.Load("ActivationQuantFp8.cu"); Assert.False(cold.Loads[0].FromDisk); output.WriteLine($"cold {cold.Loads[0].Milliseconds:F1} ms"); }
            using var warm = new KernelCache(Gpu.Context, dir);
            warm.Load("ActivationQuantFp8.cu");
            Assert.True(warm.Loads[0].FromDisk);
            output.WriteLine($"warm {warm.Loads[0].Milliseconds:F1} ms");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData(1, 256, 512)]
    [InlineData(77, 384, 1024)]
    public void CuBLASLt_BF16_and_FP8_baselines_compute_the_product(int m, int n, int k)
    {
        GpuAvailability.RequireGpu();
        var rng = new Random(m + n);
        var (ctx, stream) = (Gpu.Context, Gpu.Stream);
        var x = Reference.RandomActivations(rng, m, k);
        var w = Enumerable.Range(0, n * k).Select(_ => HostNumerics.FloatToBf16((float)(rng.NextDouble() - 0.5))).ToArray();
        var yRef = new double[m * n];
        for (int r = 0; r < m; r++)
            for (int c = 0; c < n; c++)
            {
                double acc = 0;
                for (int i = 0; i < k; i++) acc += (double)HostNumerics.Bf16ToFloat(x[r * k + i]) * HostNumerics.Bf16ToFloat(w[c * k + i]);
                yRef[r * n + c] = acc;
            }
        using var lt = new CublasLt(ctx);
        using var dx = DeviceBuffer<ushort>.From(ctx, x, stream);
        using var dw = DeviceBuffer<ushort>.From(ctx, w, stream);
        using var dy = new DeviceBuffer<ushort>(ctx, (long)m * n);
        dy.FillBytes(0xFF, stream);
        lt.Bf16(stream, dx, dw, dy, m, n, k);
        var errBf16 = Reference.RelativeError(dy.ToArray(stream), yRef);
        output.WriteLine($"cuBLASLt BF16 error {errBf16:E2}");
        Assert.True(errBf16 < 1e-3);

        var x8 = Enumerable.Range(0, m * k).Select(_ => (byte)rng.Next(0, 0x7E)).Select((b, i) => (byte)(b | (i % 3 == 0 ? 0x80 : 0))).ToArray();
        var w8 = Enumerable.Range(0, n * k).Select(_ => (byte)rng.Next(0, 0x6E)).Select((b, i) => (byte)(b | (i % 2 == 0 ? 0x80 : 0))).ToArray();
        var ts = Enumerable.Range(0, m).Select(i => 1e-3f * (1 + i)).ToArray();
        var cs = Enumerable.Range(0, n).Select(i => 0.5f + i * 1e-3f).ToArray();
        using var d8 = DeviceBuffer<byte>.From(ctx, x8, stream);
        using var dw8 = DeviceBuffer<byte>.From(ctx, w8, stream);
        using var dts = DeviceBuffer<float>.From(ctx, ts, stream);
        using var dcs = DeviceBuffer<float>.From(ctx, cs, stream);
        dy.FillBytes(0xFF, stream);
        bool outer = lt.Fp8(stream, d8, dw8, dts, dcs, dy, m, n, k);
        output.WriteLine($"cuBLASLt FP8 scale mode: {lt.Fp8ScaleMode}");
        var y8 = new double[m * n];
        for (int r = 0; r < m; r++)
            for (int c = 0; c < n; c++)
            {
                double acc = 0;
                for (int i = 0; i < k; i++) acc += (double)HostNumerics.DecodeE4M3(x8[r * k + i]) * HostNumerics.DecodeE4M3(w8[c * k + i]);
                y8[r * n + c] = outer ? cs[c] * ts[r] * acc : acc;
            }
        var errFp8 = Reference.RelativeError(dy.ToArray(stream), y8);
        output.WriteLine($"cuBLASLt FP8 error {errFp8:E2}");
        Assert.True(errFp8 < 1e-2);
    }
}
