using Nibble.Backend;
using Nibble.Cpu;
using Nibble.Cuda.Backend;
using static Nibble.Cuda.Tests.Backend.GpuBackend;

namespace Nibble.Cuda.Tests.Backend;

/// <summary>
/// KV-cached causal GQA attention on the GPU against the CPU kernel, step by step over one sequence (prefill, decode,
/// chunked prefill, decode), with and without a sliding window, outputs poisoned. Tolerance 2e-5 abs + 2e-5 rel
/// (online vs two-pass float32 softmax).
/// </summary>
public class AttentionTests(ITestOutputHelper output)
{
    sealed class Pair(CudaBackend gpu, int layers, int kvHeads, int headDim, int capacity) : IDisposable
    {
        public readonly KvCache Cpu = CpuBackend.Instance.CreateKvCache(layers, kvHeads, headDim, capacity);
        public readonly KvCache Gpu = gpu.CreateKvCache(layers, kvHeads, headDim, capacity);
        public void Dispose() { Cpu.Dispose(); Gpu.Dispose(); }
    }

    static double Step(CudaBackend gpu, Random rng, Pair caches, int layer, int heads, int kvHeads, int d, int[] positions, int? window, string what)
    {
        int t = positions.Length;
        var q = GpuBackend.Random(rng, t * heads * d, 2f);
        var k = GpuBackend.Random(rng, t * kvHeads * d, 2f);
        var v = GpuBackend.Random(rng, t * kvHeads * d);
        var expected = GpuBackend.CpuRef.Zeros(t, heads * d);
        GpuBackend.CpuRef.Attention(HostTensor.Wrap(q, t, heads * d), HostTensor.Wrap(k, t, kvHeads * d), HostTensor.Wrap(v, t, kvHeads * d),
            caches.Cpu, layer, positions, window, expected);
        var actual = Poisoned(gpu, t, heads * d);
        gpu.Attention(gpu.FromHost(q, t, heads * d), gpu.FromHost(k, t, kvHeads * d), gpu.FromHost(v, t, kvHeads * d),
            caches.Gpu, layer, positions, window, actual);
        return AssertClose(expected.ToArray(), actual.ToArray(), 2e-5, 2e-5, what);
    }

    [Theory]
    [InlineData(6, 2, 64, 0)]
    [InlineData(4, 4, 80, 0)]
    [InlineData(8, 2, 128, 5)]
    [InlineData(2, 1, 256, 0)]
    public void Prefill_then_decode_matches_cpu(int heads, int kvHeads, int d, int window)
    {
        var gpu = Require();
        var rng = new Random(heads * 100 + d + window);
        using var caches = new Pair(gpu, 2, kvHeads, d, 64);
        int? w = window > 0 ? window : null;
        int pos = 0;
        foreach (int t in new[] { 7, 1, 33, 1, 1 })
        {
            var positions = Enumerable.Range(pos, t).ToArray();
            for (int layer = 0; layer < 2; layer++)
            {
                double diff = Step(gpu, rng, caches, layer, heads, kvHeads, d, positions, w, $"layer {layer} tokens [{pos}, {pos + t})");
                output.WriteLine($"heads {heads}/{kvHeads} d={d} window={window} layer {layer} T={t} at {pos}: max |diff| {diff:E2}");
            }
            pos += t;
            caches.Cpu.Length = caches.Gpu.Length = pos;
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(300)]
    public void Split_key_decode_over_a_long_cache_matches_cpu(int window)
    {
        var gpu = Require();
        var rng = new Random(77 + window);
        int heads = 4, kvHeads = 2, d = 64, prompt = 1000;
        using var caches = new Pair(gpu, 1, kvHeads, d, 1100);
        int? w = window > 0 ? window : null;
        Step(gpu, rng, caches, 0, heads, kvHeads, d, Enumerable.Range(0, prompt).ToArray(), w, "long prefill");
        int splits = Nibble.Cuda.Kernels.AttentionKernel.ChooseSplits(1, heads, window > 0 ? window : prompt + 1, gpu.Context.MultiprocessorCount);
        Assert.True(splits > 1, "the decode step should use several key splits");
        for (int i = 0; i < 3; i++)
        {
            double diff = Step(gpu, rng, caches, 0, heads, kvHeads, d, [prompt + i], w, $"decode at {prompt + i}");
            output.WriteLine($"decode at {prompt + i} with {splits} splits, window {window}: max |diff| {diff:E2}");
        }
        // A few tokens at once (speculative / chunked decode): splits whose range is empty for the earlier tokens.
        int multi = Nibble.Cuda.Kernels.AttentionKernel.ChooseSplits(3, heads, window > 0 ? window : prompt + 6, gpu.Context.MultiprocessorCount);
        Assert.True(multi > 1);
        double d3 = Step(gpu, rng, caches, 0, heads, kvHeads, d, [prompt + 3, prompt + 4, prompt + 5], w, "3 tokens over the long cache");
        output.WriteLine($"3 tokens at {prompt + 3} with {multi} splits, window {window}: max |diff| {d3:E2}");
    }

    [Fact]
    public void Scattered_positions_and_prefix_copy_match_cpu()
    {
        var gpu = Require();
        var rng = new Random(3);
        int heads = 4, kvHeads = 2, d = 64;
        using var a = new Pair(gpu, 1, kvHeads, d, 40);
        Step(gpu, rng, a, 0, heads, kvHeads, d, [0, 5, 9, 3], null, "scattered positions");
        Step(gpu, rng, a, 0, heads, kvHeads, d, Enumerable.Range(10, 12).ToArray(), null, "prefill after scattered");
        a.Cpu.Length = a.Gpu.Length = 22;
        using var b = new Pair(gpu, 1, kvHeads, d, 30);
        b.Cpu.CopyPrefixFrom(a.Cpu, 15);
        b.Gpu.CopyPrefixFrom(a.Gpu, 15);
        Assert.Equal(15, b.Gpu.Length);
        Step(gpu, rng, b, 0, heads, kvHeads, d, [15], null, "decode after prefix copy");
    }
}
