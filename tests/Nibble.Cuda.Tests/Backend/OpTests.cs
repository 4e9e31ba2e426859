using Nibble.Backend;
using Nibble.Cpu;
using Nibble.Cuda.Backend;
using Nibble.Formats;
using static Nibble.Cuda.Tests.Backend.GpuBackend;

namespace Nibble.Cuda.Tests.Backend;

/// <summary>
/// Every CudaBackend op against CpuBackend on fresh random inputs at odd sizes, GPU outputs poisoned with NaN first.
/// Tolerances: element-wise, norm, RoPE and row ops 1e-5 abs + 1e-5 rel (float32 rounding and ordering only);
/// attention 2e-5; split-bf16 MatMul 3e-5 relative Frobenius; plain-bf16 MatMul 1e-2 (one bf16 rounding of x).
/// </summary>
public class OpTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1, 96, true)]
    [InlineData(7, 136, true)]
    [InlineData(33, 96, false)]
    public void Embedding_matches_cpu(int tokens, int hidden, bool bf16)
    {
        var gpu = Require();
        var rng = new Random(tokens * 1000 + hidden);
        int vocab = 37;
        var ids = Enumerable.Range(0, tokens).Select(_ => rng.Next(vocab)).ToArray();
        Tensor cpuTable, gpuTable;
        if (bf16) { var bits = RandomBf16(rng, vocab * hidden); cpuTable = HostTensor.WrapBf16(bits, vocab, hidden); gpuTable = gpu.FromHostBf16(bits, vocab, hidden); }
        else { var f = Random(rng, vocab * hidden); cpuTable = HostTensor.Wrap(f, vocab, hidden); gpuTable = gpu.FromHost(f, vocab, hidden); }
        var expected = CpuRef.Zeros(tokens, hidden);
        CpuRef.Embedding(cpuTable, ids, expected);
        var actual = Poisoned(gpu, tokens, hidden);
        gpu.Embedding(gpuTable, ids, actual);
        AssertClose(expected.ToArray(), actual.ToArray(), 0, 0, "embedding");
        Assert.Throws<NibbleException>(() => gpu.Embedding(gpuTable, [vocab], gpu.Zeros(1, hidden)));
    }

    [Theory]
    [InlineData(1, 96, false)]
    [InlineData(7, 136, true)]
    [InlineData(33, 2056, false)]
    [InlineData(3, 8200, true)]
    public void RmsNorm_and_fused_AddRmsNorm_match_cpu(int rows, int dim, bool bf16Weight)
    {
        var gpu = Require();
        var rng = new Random(rows * 31 + dim);
        var x = Random(rng, rows * dim, 3f);
        var delta = Random(rng, rows * dim);
        Tensor cw, gw;
        if (bf16Weight) { var bits = RandomBf16(rng, dim, 2f); cw = HostTensor.WrapBf16(bits, dim); gw = gpu.FromHostBf16(bits, dim); }
        else { var w = Random(rng, dim, 2f); cw = HostTensor.Wrap(w, dim); gw = gpu.FromHost(w, dim); }

        var ce = CpuRef.Zeros(rows, dim);
        CpuRef.RmsNorm(HostTensor.Wrap((float[])x.Clone(), rows, dim), cw, 1e-5f, ce);
        var ga = Poisoned(gpu, rows, dim);
        gpu.RmsNorm(gpu.FromHost(x, rows, dim), gw, 1e-5f, ga);
        AssertClose(ce.ToArray(), ga.ToArray(), 1e-5, 1e-5, "rmsnorm");

        var cRes = HostTensor.Wrap((float[])x.Clone(), rows, dim);
        var gRes = gpu.FromHost(x, rows, dim);
        var ce2 = CpuRef.Zeros(rows, dim);
        CpuRef.AddRmsNorm(cRes, HostTensor.Wrap(delta, rows, dim), cw, 1e-6f, ce2);
        var ga2 = Poisoned(gpu, rows, dim);
        gpu.AddRmsNorm(gRes, gpu.FromHost(delta, rows, dim), gw, 1e-6f, ga2);
        AssertClose(cRes.ToArray(), gRes.ToArray(), 0, 0, "residual after add");
        AssertClose(ce2.ToArray(), ga2.ToArray(), 1e-5, 1e-5, "add+rmsnorm");
    }

    [Fact]
    public void RmsNorm_in_place_per_head_matches_cpu()
    {
        var gpu = Require();
        var rng = new Random(5);
        int tokens = 7, heads = 3, d = 64;
        var x = Random(rng, tokens * heads * d, 4f);
        var w = Random(rng, d);
        var cx = HostTensor.Wrap((float[])x.Clone(), tokens, heads * d);
        CpuRef.RmsNorm(cx, HostTensor.Wrap(w, d), 1e-6f, cx);
        var gx = gpu.FromHost(x, tokens, heads * d);
        gpu.RmsNorm(gx, gpu.FromHost(w, d), 1e-6f, gx);
        AssertClose(cx.ToArray(), gx.ToArray(), 1e-5, 1e-5, "in-place q-norm");
    }

    [Theory]
    [InlineData(1, 96)]
    [InlineData(33, 136)]
    public void Add_SiluMul_and_sigmoid_gate_match_cpu(int rows, int width)
    {
        var gpu = Require();
        var rng = new Random(rows + width * 7);
        var a = Random(rng, rows * width, 6f);
        var b = Random(rng, rows * width, 2f);
        var g = Random(rng, rows, 5f);

        var ca = HostTensor.Wrap((float[])a.Clone(), rows, width);
        CpuRef.Add(ca, HostTensor.Wrap(b, rows, width));
        var ga = gpu.FromHost(a, rows, width);
        gpu.Add(ga, gpu.FromHost(b, rows, width));
        AssertClose(ca.ToArray(), ga.ToArray(), 0, 0, "add");

        var cs = CpuRef.Zeros(rows, width);
        CpuRef.SiluMul(HostTensor.Wrap(a, rows, width), HostTensor.Wrap(b, rows, width), cs);
        var gs = Poisoned(gpu, rows, width);
        gpu.SiluMul(gpu.FromHost(a, rows, width), gpu.FromHost(b, rows, width), gs);
        AssertClose(cs.ToArray(), gs.ToArray(), 1e-6, 1e-5, "silu_mul");

        var aliased = gpu.FromHost(a, rows, width); // output = gate, as GatedMlp calls it
        gpu.SiluMul(aliased, gpu.FromHost(b, rows, width), aliased);
        AssertClose(cs.ToArray(), aliased.ToArray(), 1e-6, 1e-5, "silu_mul in place");

        var cg = HostTensor.Wrap((float[])a.Clone(), rows, width);
        CpuRef.MulSigmoidGate(cg, HostTensor.Wrap(g, rows, 1));
        var gg = gpu.FromHost(a, rows, width);
        gpu.MulSigmoidGate(gg, gpu.FromHost(g, rows, 1));
        AssertClose(cg.ToArray(), gg.ToArray(), 1e-6, 1e-5, "sigmoid gate");
    }

    [Theory]
    [InlineData(1, 96, 136, false, DenseMatMulPrecision.SplitBf16)]
    [InlineData(7, 136, 96, true, DenseMatMulPrecision.SplitBf16)]
    [InlineData(33, 264, 200, true, DenseMatMulPrecision.SplitBf16)]
    [InlineData(33, 264, 37, false, DenseMatMulPrecision.SplitBf16)]
    [InlineData(7, 136, 96, true, DenseMatMulPrecision.Bf16)]
    [InlineData(1, 96, 136, false, DenseMatMulPrecision.Bf16)]
    public void MatMul_over_bf16_weights_matches_cpu(int m, int k, int n, bool bias, DenseMatMulPrecision precision)
    {
        var gpu = Require();
        gpu.MatMulPrecision = precision;
        var rng = new Random(m * 7 + k * 3 + n);
        var x = Random(rng, m * k, 3f);
        var w = RandomBf16(rng, n * k, 0.2f);
        var bb = RandomBf16(rng, n);
        var expected = CpuRef.Zeros(m, n);
        CpuRef.MatMul(HostTensor.Wrap(x, m, k), HostTensor.WrapBf16(w, n, k), bias ? HostTensor.WrapBf16(bb, n) : null, expected);
        var actual = Poisoned(gpu, m, n);
        gpu.MatMul(gpu.FromHost(x, m, k), gpu.FromHostBf16(w, n, k), bias ? gpu.FromHostBf16(bb, n) : null, actual);
        var e = expected.ToArray(); var a = actual.ToArray();
        Assert.All(a, v => Assert.False(float.IsNaN(v), "unwritten output"));
        double rel = RelativeFrobenius(a, e);
        output.WriteLine($"MatMul {precision} M={m} K={k} N={n} bias={bias}: rel. Frobenius {rel:E2}");
        Assert.True(rel < (precision == DenseMatMulPrecision.SplitBf16 ? 3e-5 : 1e-2), $"relative error {rel:E2}");
        gpu.MatMulPrecision = DenseMatMulPrecision.SplitBf16;
    }

    [Fact]
    public void MatMul_over_f32_weights_is_true_f32()
    {
        var gpu = Require();
        var rng = new Random(11);
        int m = 7, k = 136, n = 40;
        var x = Random(rng, m * k); var w = Random(rng, n * k, 0.1f); var b = Random(rng, n);
        var expected = CpuRef.Zeros(m, n);
        CpuRef.MatMul(HostTensor.Wrap(x, m, k), HostTensor.Wrap(w, n, k), HostTensor.Wrap(b, n), expected);
        var actual = Poisoned(gpu, m, n);
        gpu.MatMul(gpu.FromHost(x, m, k), gpu.FromHost(w, n, k), gpu.FromHost(b, n), actual);
        double rel = RelativeFrobenius(actual.ToArray(), expected.ToArray());
        output.WriteLine($"F32 MatMul rel. Frobenius {rel:E2}");
        Assert.True(rel < 1e-5, $"relative error {rel:E2} (TF32 would be ~3e-4)");
    }

    [Theory]
    [InlineData(1, 4, 64, "default", false)]
    [InlineData(7, 3, 96, "default", false)]
    [InlineData(33, 2, 64, "llama3", true)]
    public void Rope_matches_cpu(int tokens, int heads, int headDim, string type, bool scattered)
    {
        var gpu = Require();
        var rng = new Random(tokens + heads + headDim);
        var rope = new RopeTable(type == "llama3" ? new RopeConfig(500000, "llama3", 8, 1, 4, 64) : new RopeConfig(10000), headDim);
        var positions = scattered ? Enumerable.Range(0, tokens).Select(_ => rng.Next(4000)).ToArray() : Enumerable.Range(17, tokens).ToArray();
        var x = Random(rng, tokens * heads * headDim, 2f);
        var cx = HostTensor.Wrap((float[])x.Clone(), tokens, heads * headDim);
        CpuRef.Rope(cx, headDim, positions, rope);
        var gx = gpu.FromHost(x, tokens, heads * headDim);
        gpu.Rope(gx, headDim, positions, rope);
        AssertClose(cx.ToArray(), gx.ToArray(), 2e-5, 2e-5, "rope");
    }

    [Theory]
    [InlineData(9, 136, 5)]
    [InlineData(33, 96, 1)]
    public void Route_gather_and_scatter_add_match_cpu(int tokens, int hidden, int expertRows)
    {
        var gpu = Require();
        var rng = new Random(tokens * hidden);
        var logits = Random(rng, tokens * 6, 3f);
        var cr = CpuRef.Route(HostTensor.Wrap(logits, tokens, 6), 2, true);
        var gr = gpu.Route(gpu.FromHost(logits, tokens, 6), 2, true);
        Assert.Equal(cr.Experts, gr.Experts);
        Assert.Equal(cr.Weights, gr.Weights);

        var x = Random(rng, tokens * hidden);
        var rows = Enumerable.Range(0, tokens).OrderBy(_ => rng.Next()).Take(expertRows).ToArray();
        var cg = CpuRef.Zeros(expertRows, hidden);
        CpuRef.GatherRows(HostTensor.Wrap(x, tokens, hidden), rows, cg);
        var gg = Poisoned(gpu, expertRows, hidden);
        gpu.GatherRows(gpu.FromHost(x, tokens, hidden), rows, gg);
        AssertClose(cg.ToArray(), gg.ToArray(), 0, 0, "gather");

        var y = Random(rng, expertRows * hidden);
        var scales = Random(rng, expertRows);
        var acc = Random(rng, tokens * hidden);
        var cacc = HostTensor.Wrap((float[])acc.Clone(), tokens, hidden);
        CpuRef.ScatterAddRows(HostTensor.Wrap(y, expertRows, hidden), rows, scales, cacc);
        var gacc = gpu.FromHost(acc, tokens, hidden);
        gpu.ScatterAddRows(gpu.FromHost(y, expertRows, hidden), rows, scales, gacc);
        AssertClose(cacc.ToArray(), gacc.ToArray(), 1e-6, 1e-6, "scatter-add");
    }

    [Fact]
    public void Tensors_come_back_to_the_pool_and_are_reused()
    {
        var gpu = Require();
        var t = gpu.Zeros(1000, 37);
        long before = gpu.AllocatedBytes;
        t.Dispose();
        var u = gpu.Zeros(1000, 37);
        Assert.Equal(before, gpu.AllocatedBytes);
        Assert.All(u.ToArray(), v => Assert.Equal(0f, v));
        var view = u.SliceRows(10, 5);
        view.CopyFrom(Enumerable.Repeat(2f, 5 * 37).ToArray());
        var all = u.ToArray();
        Assert.Equal(2f, all[10 * 37]);
        Assert.Equal(0f, all[15 * 37]);
        u.Dispose();
    }
}
