using Nibble.Backend;
using Nibble.Cpu;
using Nibble.Cuda.Backend;
using AttentionKernel = Nibble.Cuda.Kernels.AttentionKernel;
using Nibble.Cuda.Native;
using DecodeAttentionVariant = Nibble.Cuda.Kernels.DecodeAttentionVariant;
using static Nibble.Cuda.Tests.Backend.GpuBackend;

namespace Nibble.Cuda.Tests.Backend;

/// <summary>
/// The split-KV decode kernels (v3a: decode_attention_c*_g* + decode_combine; v3b; fused: one launch whose last CTA per
/// kv head merges the splits) against the CPU backend's attention: caches of odd lengths filled with the same fresh
/// random keys/values on both sides, one decode step through <see cref="CudaBackend.Attention"/> with each variant, then
/// the kernels called directly with forced split counts (1, 3, 256: most splits empty, and each variant's own choice),
/// with the position in device memory (the CUDA-graph path), and the v2 kernel for comparison. Outputs poisoned with
/// NaN first. Tolerance 2e-5 abs + 2e-5 rel (online base-2 vs two-pass float32 softmax). The fused kernel's ticket
/// counters must be back at zero after every launch (graph replays and the next layer reuse them).
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
        int keysSeen = w is int ww ? Math.Min(ww, length + 1) : length + 1;
        var variants = new[] { DecodeAttentionVariant.V3a, DecodeAttentionVariant.V3b, DecodeAttentionVariant.Fused };
        var before = gpu.DecodeAttention;
        try
        {
            foreach (var variant in variants)
            {
                gpu.DecodeAttention = variant;
                var actual = Poisoned(gpu, 1, heads * d);
                // Same step each time: the append rewrites the same k/v at the same position.
                gpu.Attention(gq, gpu.FromHost(k, 1, kvHeads * d), gpu.FromHost(v, 1, kvHeads * d), gpuCache, 0, [length], w, actual);
                int chosen = AttentionKernel.ChooseDecodeSplits(heads, kvHeads, d, keysSeen, gpu.Context.MultiprocessorCount, variant);
                double diff = AssertClose(exp, actual.ToArray(), 2e-5, 2e-5, $"{variant} decode at {length} ({chosen} splits)");
                output.WriteLine($"heads {heads}/{kvHeads} d={d} L={length + 1} window={window}: backend {variant} ({chosen} splits) max |diff| {diff:E2}");
            }
        }
        finally { gpu.DecodeAttention = before; }

        // The kernels directly: forced split counts, position from device memory, and the v2 kernel.
        using var pos = DeviceBuffer<int>.From(gpu.Context, new[] { length }, gpu.Stream);
        using var pa = new DeviceBuffer<float>(gpu.Context, (long)heads * 256 * d);
        using var pm = new DeviceBuffer<float>(gpu.Context, (long)heads * 256 * 2);
        int ticketCount = AttentionKernel.FusedTickets(heads, kvHeads);
        using var tickets = new DeviceBuffer<uint>(gpu.Context, ticketCount);
        tickets.FillBytes(0, gpu.Stream);
        foreach (var variant in variants)
        {
            int chosen = AttentionKernel.ChooseDecodeSplits(heads, kvHeads, d, keysSeen, gpu.Context.MultiprocessorCount, variant);
            foreach (var (splits, devicePos) in new[] { (1, false), (3, true), (256, false), (chosen, true), (chosen, false) })
            {
                var o = (CudaTensor)Poisoned(gpu, 1, heads * d);
                pa.FillBytes(0xFF, gpu.Stream); // NaN partials: a split the merge reads before it is written cannot pass
                AttentionKernel.Decode(gpu.Kernels, gpu.Stream, gq.Pointer, gpuCache.Keys(0), gpuCache.Values(0), o.Pointer, heads, kvHeads, d, capacity,
                    devicePos ? pos.Pointer : 0, devicePos ? 0 : length, window, splits, pa.Pointer, pm.Pointer, variant, tickets.Pointer);
                string what = $"{variant} {splits} splits, position in {(devicePos ? "device" : "kernel argument")}";
                double dd = AssertClose(exp, o.ToArray(), 2e-5, 2e-5, what);
                output.WriteLine($"  {what}: max |diff| {dd:E2}");
                if (variant == DecodeAttentionVariant.Fused)
                    Assert.All(tickets.ToArray(gpu.Stream), t => Assert.Equal(0u, t));
            }
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

    [Theory]
    [InlineData(32, 8, 128, 1500, 8)]   // several splits per kv head, group 4
    [InlineData(7, 7, 80, 900, 5)]      // MHA, odd head count, head_dim 80
    [InlineData(40, 5, 128, 3001, 17)]  // group 8, odd split count
    [InlineData(32, 2, 256, 2049, 256)] // two head chunks per kv head (2 tickets each), head_dim 256, most splits empty
    public void Fused_decode_reuses_its_tickets_and_repeats_bit_for_bit(int heads, int kvHeads, int d, int length, int splits)
    {
        // Ticket reuse: consecutive launches on the same counters (as the layers of a step and graph replays do) must
        // each see a complete merge. Any leftover count would make a later launch merge early (missing or NaN splits)
        // or never (output left poisoned), so the runs must agree bit for bit with each other and with v3a's values.
        var gpu = Require();
        var rng = new Random(heads * 31 + length + splits);
        int capacity = length + 1;
        using var keys = DeviceBuffer<float>.From(gpu.Context, GpuBackend.Random(rng, kvHeads * capacity * d, 2f), gpu.Stream);
        using var values = DeviceBuffer<float>.From(gpu.Context, GpuBackend.Random(rng, kvHeads * capacity * d), gpu.Stream);
        using var q = DeviceBuffer<float>.From(gpu.Context, GpuBackend.Random(rng, heads * d, 2f), gpu.Stream);
        using var pa = new DeviceBuffer<float>(gpu.Context, (long)heads * splits * d);
        using var pm = new DeviceBuffer<float>(gpu.Context, (long)heads * splits * 2);
        using var tickets = new DeviceBuffer<uint>(gpu.Context, AttentionKernel.FusedTickets(heads, kvHeads));
        tickets.FillBytes(0, gpu.Stream);
        float[] Run(DecodeAttentionVariant variant)
        {
            using var o = new DeviceBuffer<float>(gpu.Context, heads * d);
            o.FillBytes(0xFF, gpu.Stream);
            AttentionKernel.Decode(gpu.Kernels, gpu.Stream, q.Pointer, keys.Pointer, values.Pointer, o.Pointer, heads, kvHeads, d, capacity, 0, length, 0,
                splits, pa.Pointer, pm.Pointer, variant, tickets.Pointer);
            return o.ToArray(gpu.Stream);
        }
        var reference = Run(DecodeAttentionVariant.V3a);
        var first = Run(DecodeAttentionVariant.Fused);
        var second = Run(DecodeAttentionVariant.Fused);
        Assert.All(tickets.ToArray(gpu.Stream), t => Assert.Equal(0u, t));
        var third = Run(DecodeAttentionVariant.Fused);
        Assert.Equal(first, second);
        Assert.Equal(first, third);
        double diff = AssertClose(reference, first, 1e-6, 1e-6, $"fused vs v3a, {splits} splits");
        output.WriteLine($"heads {heads}/{kvHeads} d={d} L={length + 1} {splits} splits: 3 fused launches identical, vs v3a max |diff| {diff:E2}");
    }

    [Fact]
    public void Decode_variant_names_parse_and_a_bad_one_says_which_exist()
    {
        // Runs without a GPU.
        Assert.Equal(DecodeAttentionVariant.Fused, AttentionKernel.ParseDecodeVariant(" Fused ", "test"));
        Assert.Equal(DecodeAttentionVariant.V3a, AttentionKernel.ParseDecodeVariant("v3a", "test"));
        Assert.Equal(DecodeAttentionVariant.V3b, AttentionKernel.ParseDecodeVariant("V3B", "test"));
        var e = Assert.Throws<NibbleException>(() => AttentionKernel.ParseDecodeVariant("v4", AttentionKernel.DecodeEnvironmentVariable));
        Assert.Contains("NIBBLE_DECODE_ATTENTION is 'v4'", e.Message);
        Assert.Contains("fused, v3a or v3b", e.Message);
    }

    [Fact]
    public void Fused_split_choice_uses_fewer_fatter_splits_on_short_caches()
    {
        // Runs without a GPU. 32/8 heads, head_dim 128 (64-key tiles), 132 SMs.
        var fused = DecodeAttentionVariant.Fused;
        Assert.Equal(8, AttentionKernel.ChooseDecodeSplits(32, 8, 128, 1024, 132, fused));   // v3a: 16 one-tile splits
        Assert.Equal(16, AttentionKernel.ChooseDecodeSplits(32, 8, 128, 4096, 132, fused));  // v3a: 33
        Assert.Equal(32, AttentionKernel.ChooseDecodeSplits(32, 8, 128, 32768, 132, fused)); // 16 tiles each, no stub split
        Assert.Equal(1, AttentionKernel.ChooseDecodeSplits(32, 8, 128, 1, 132, fused));
        Assert.Equal(16, AttentionKernel.ChooseDecodeSplits(32, 8, 128, 1024, 132));
        for (int keys = 1; keys <= 40000; keys += 97)
            foreach (var (h, kv, d) in new[] { (32, 8, 128), (7, 7, 80), (40, 5, 128), (32, 2, 256), (4, 1, 64) })
            {
                int s = AttentionKernel.ChooseDecodeSplits(h, kv, d, keys, 132, fused);
                Assert.InRange(s, 1, Math.Min(AttentionKernel.FusedMaxSplits, AttentionKernel.ChooseDecodeSplits(h, kv, d, keys, 132)));
            }
        Assert.Equal(8, AttentionKernel.FusedTickets(32, 8));
        Assert.Equal(4, AttentionKernel.FusedTickets(32, 2));
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
