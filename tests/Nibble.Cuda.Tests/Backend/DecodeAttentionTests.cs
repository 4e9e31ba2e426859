using Nibble.Backend;
using Nibble.Cpu;
using Nibble.Cuda.Backend;
using AttentionKernel = Nibble.Cuda.Kernels.AttentionKernel;
using Nibble.Cuda.Native;
using static Nibble.Cuda.Tests.Backend.GpuBackend;

namespace Nibble.Cuda.Tests.Backend;

/// <summary>
/// The split-KV decode kernel (decode_attention_c*_g* + decode_combine) against the CPU backend's attention: caches of
/// odd lengths filled with the same fresh random keys/values on both sides, one decode step through
/// <see cref="CudaBackend.Attention"/>, then the kernel called directly with forced split counts (1, 3, 256: most
/// splits empty), with the position in device memory (the CUDA-graph path), and the v2 kernel for comparison.
/// Outputs poisoned with NaN first. Tolerance 2e-5 abs + 2e-5 rel (online base-2 vs two-pass float32 softmax).
/// </summary>
public class DecodeAttentionTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(6, 2, 64, 1, 0)]       // group 3 (4-head variant), empty cache before the step
    [InlineData(7, 7, 80, 65, 0)]      // MHA, head_dim 80 (lanes 20..31 idle)
    [InlineData(12, 4, 96, 1000, 0)]
    [InlineData(40, 5, 128, 3001, 0)]  // group 8
    [InlineData(32, 2, 128, 777, 0)]   // group 16: two head chunks per kv head
    [InlineData(2, 1, 256, 513, 0)]    // head_dim 256: two float4 per lane
    [InlineData(10, 2, 256, 2049, 0)]  // group 5 at head_dim 256
    [InlineData(8, 2, 36, 300, 0)]
    [InlineData(12, 4, 96, 1000, 257)] // sliding window
    [InlineData(6, 3, 64, 64, 5)]
    public void Decode_step_matches_cpu(int heads, int kvHeads, int d, int length, int window)
    {
        var gpu = Require();
        var rng = new Random(heads * 1000 + d * 7 + length + window);
        int capacity = length + 3;
        using var cpuCache = (CpuKvCache)CpuRef.CreateKvCache(1, kvHeads, d, capacity);
        using var gpuCache = (CudaKvCache)gpu.CreateKvCache(1, kvHeads, d, capacity);
        // Same random history on both sides (CPU arrays and device memory share the [kvHead][position][headDim] layout).
        var keys = GpuBackend.Random(rng, kvHeads * capacity * d, 2f);
        var values = GpuBackend.Random(rng, kvHeads * capacity * d);
        keys.CopyTo(cpuCache.Keys(0), 0);
        values.CopyTo(cpuCache.Values(0), 0);
        using (var kb = DeviceBuffer<float>.From(gpu.Context, keys, gpu.Stream))
        using (var vb = DeviceBuffer<float>.From(gpu.Context, values, gpu.Stream))
        {
            gpu.Context.Bind();
            CudaException.Check(Driver.cuMemcpyDtoDAsync(gpuCache.Keys(0), kb.Pointer, (nuint)kb.Bytes, gpu.Stream.Handle), "copy keys");
            CudaException.Check(Driver.cuMemcpyDtoDAsync(gpuCache.Values(0), vb.Pointer, (nuint)vb.Bytes, gpu.Stream.Handle), "copy values");
            gpu.Synchronize();
        }
        cpuCache.Length = gpuCache.Length = length;
        int? w = window > 0 ? window : null;

        var q = GpuBackend.Random(rng, heads * d, 2f);
        var k = GpuBackend.Random(rng, kvHeads * d, 2f);
        var v = GpuBackend.Random(rng, kvHeads * d);
        var expected = CpuRef.Zeros(1, heads * d);
        CpuRef.Attention(HostTensor.Wrap(q, 1, heads * d), HostTensor.Wrap(k, 1, kvHeads * d), HostTensor.Wrap(v, 1, kvHeads * d), cpuCache, 0, [length], w, expected);
        var exp = expected.ToArray();
        var gq = (CudaTensor)gpu.FromHost(q, 1, heads * d);
        var actual = Poisoned(gpu, 1, heads * d);
        gpu.Attention(gq, gpu.FromHost(k, 1, kvHeads * d), gpu.FromHost(v, 1, kvHeads * d), gpuCache, 0, [length], w, actual);
        int keysSeen = w is int ww ? Math.Min(ww, length + 1) : length + 1;
        int chosen = AttentionKernel.ChooseDecodeSplits(heads, kvHeads, d, keysSeen, gpu.Context.MultiprocessorCount);
        double diff = AssertClose(exp, actual.ToArray(), 2e-5, 2e-5, $"decode at {length} ({chosen} splits)");
        output.WriteLine($"heads {heads}/{kvHeads} d={d} L={length + 1} window={window}: backend ({chosen} splits) max |diff| {diff:E2}");

        // The kernel directly: forced split counts, position from device memory, and the v2 kernel.
        using var pos = DeviceBuffer<int>.From(gpu.Context, new[] { length }, gpu.Stream);
        using var pa = new DeviceBuffer<float>(gpu.Context, (long)heads * 256 * d);
        using var pm = new DeviceBuffer<float>(gpu.Context, (long)heads * 256 * 2);
        foreach (bool v3b in new[] { false, true })
            foreach (var (splits, devicePos) in new[] { (1, false), (3, true), (256, false), (chosen, true) })
            {
                var o = (CudaTensor)Poisoned(gpu, 1, heads * d);
                AttentionKernel.Decode(gpu.Kernels, gpu.Stream, gq.Pointer, gpuCache.Keys(0), gpuCache.Values(0), o.Pointer, heads, kvHeads, d, capacity,
                    devicePos ? pos.Pointer : 0, devicePos ? 0 : length, window, splits, pa.Pointer, pm.Pointer, v3b);
                string what = $"{(v3b ? "v3b" : "v3a")} {splits} splits, position in {(devicePos ? "device" : "kernel argument")}";
                double dd = AssertClose(exp, o.ToArray(), 2e-5, 2e-5, what);
                output.WriteLine($"  {what}: max |diff| {dd:E2}");
            }
        gpu.UseLegacyDecodeAttention = true;
        try
        {
            var o = Poisoned(gpu, 1, heads * d);
            // Same step again: the append rewrites the same k/v at the same position.
            gpu.Attention(gq, gpu.FromHost(k, 1, kvHeads * d), gpu.FromHost(v, 1, kvHeads * d), gpuCache, 0, [length], w, o);
            AssertClose(exp, o.ToArray(), 2e-5, 2e-5, "v2 decode kernel");
        }
        finally { gpu.UseLegacyDecodeAttention = false; }
    }

    [Fact]
    public void Decode_parameter_struct_has_the_size_the_kernel_asserts()
    {
        // Runs without a GPU: the C# mirror of DecodeParams must match Attention.cu's static_assert.
        var m = System.Text.RegularExpressions.Regex.Match(KernelCache.Source("Attention.cu"), @"static_assert\(sizeof\(DecodeParams\) == (\d+)");
        Assert.True(m.Success);
        var type = typeof(AttentionKernel).GetNestedType("DecodeParams", System.Reflection.BindingFlags.NonPublic)!;
        Assert.Equal(int.Parse(m.Groups[1].Value), System.Runtime.InteropServices.Marshal.SizeOf(type));
    }

    [Fact]
    public void Split_choice_fills_the_gpu_and_keeps_a_tile_per_split()
    {
        // 8 kv heads, 32 heads, head_dim 128, 132 SMs: ~2 CTAs per SM at long lengths, one 64-key tile per split at short ones.
        Assert.Equal(33, AttentionKernel.ChooseDecodeSplits(32, 8, 128, 32768, 132));
        Assert.Equal(2, AttentionKernel.ChooseDecodeSplits(32, 8, 128, 100, 132));
        Assert.Equal(1, AttentionKernel.ChooseDecodeSplits(32, 8, 128, 1, 132));
        Assert.Equal(256, AttentionKernel.ChooseDecodeSplits(4, 1, 64, 1 << 20, 132));
        Assert.True(AttentionKernel.DecodeSupports(80));
        Assert.False(AttentionKernel.DecodeSupports(30));
        Assert.False(AttentionKernel.DecodeSupports(260));
    }
}
