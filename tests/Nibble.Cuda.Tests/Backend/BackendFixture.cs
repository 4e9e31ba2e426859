using Nibble.Backend;
using Nibble.Cpu;
using Nibble.Cuda.Backend;

namespace Nibble.Cuda.Tests.Backend;

/// <summary>The CUDA backend shared by the backend tests (over <see cref="Gpu"/>'s context, kernels and stream), and comparison helpers.</summary>
static class GpuBackend
{
    static readonly Lazy<CudaBackend> shared = new(() => new CudaBackend(Gpu.Context, Gpu.Kernels, Gpu.Stream));

    /// <summary>Skips without a GPU; otherwise the shared backend in its default (split-bf16) precision.</summary>
    public static CudaBackend Require()
    {
        GpuAvailability.RequireGpu();
        var b = shared.Value;
        b.MatMulPrecision = DenseMatMulPrecision.SplitBf16;
        return b;
    }

    public static CpuBackend CpuRef => CpuBackend.Instance;

    public static float[] Random(Random rng, int n, float scale = 1f) =>
        Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();

    public static ushort[] RandomBf16(Random rng, int n, float scale = 1f) =>
        Random(rng, n, scale).Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)).ToArray();

    /// <summary>A GPU F32 tensor filled with NaN, so an element the op fails to write cannot pass.</summary>
    public static Tensor Poisoned(CudaBackend gpu, params int[] shape)
    {
        var t = gpu.Zeros(shape);
        t.CopyFrom(Enumerable.Repeat(float.NaN, (int)t.ElementCount).ToArray());
        return t;
    }

    /// <summary>Asserts every element is finite and within atol + rtol·|expected|; returns the max abs difference.</summary>
    public static double AssertClose(float[] expected, float[] actual, double atol, double rtol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.False(float.IsNaN(actual[i]) || float.IsInfinity(actual[i]), $"{what}: element {i} is {actual[i]} (not written or overflowed)");
            double diff = Math.Abs(expected[i] - (double)actual[i]);
            max = Math.Max(max, diff);
            Assert.True(diff <= atol + rtol * Math.Abs(expected[i]), $"{what}: element {i} is {actual[i]}, CPU {expected[i]} (|diff| {diff:E2} > {atol} + {rtol}·|cpu|)");
        }
        return max;
    }

    /// <summary>‖a − b‖ / ‖b‖.</summary>
    public static double RelativeFrobenius(float[] actual, float[] expected)
    {
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++) { double d = actual[i] - (double)expected[i]; num += d * d; den += (double)expected[i] * expected[i]; }
        return Math.Sqrt(num / Math.Max(den, 1e-300));
    }
}
