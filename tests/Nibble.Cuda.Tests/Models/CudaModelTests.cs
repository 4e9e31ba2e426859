using System.Text.Json.Nodes;
using Nibble.Cpu;
using Nibble.Cuda.Backend;
using Nibble.Cuda.Tests.Backend;
using Nibble.Formats;
using Nibble.Models;
using Nibble.Tests;
using Nibble.Tests.Models;

namespace Nibble.Cuda.Tests.Models;

/// <summary>
/// Whole models through the same definition on both backends: GPU logits against CPU logits (split-bf16 linears,
/// float32 elsewhere: atol 2e-4 + rtol 2e-4 per logit on synthetic checkpoints, max |diff| 2e-3 on nano) and against
/// transformers' reference_outputs (the CPU parity bounds: max 2e-2, mean 2e-3). Prefill then KV-cached decode.
/// </summary>
public class CudaModelTests(ITestOutputHelper output)
{
    public static TheoryData<string> Families => new(SyntheticModel.Families);


    /// <summary>Logits of every token: the first <paramref name="prefill"/> in one call, the rest one decode step each.</summary>
    static float[] Logits(CausalLM lm, ReadOnlySpan<int> tokens, int prefill)
    {
        using var cache = lm.CreateCache(tokens.Length);
        var rows = new List<float>(tokens.Length * lm.VocabSize);
        rows.AddRange(lm.Forward(tokens[..prefill], cache).ToArray());
        for (int i = prefill; i < tokens.Length; i++) rows.AddRange(lm.Forward(tokens.Slice(i, 1), cache).ToArray());
        return rows.ToArray();
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Synthetic_family_matches_cpu_through_prefill_and_decode(string name)
    {
        var gpu = GpuBackend.Require();
        using var tmp = TestPaths.CreateTempDir();
        SyntheticModel.Write(tmp.Path, SyntheticModel.FamilyConfig(name), seed: name.Length);
        int[] tokens = [3, 17, 90, 4, 4, 55, 12, 0, 71, 33, 8];
        using var cpuLm = CausalLM.Load(tmp.Path, CpuBackend.Instance);
        using var gpuLm = CausalLM.Load(tmp.Path, gpu);
        var expected = Logits(cpuLm, tokens, 7);
        var actual = Logits(gpuLm, tokens, 7);
        double max = GpuBackend.AssertClose(expected, actual, 2e-4, 2e-4, name);
        output.WriteLine($"{name}: GPU vs CPU logits max |diff| {max:E2}");
    }

    (double Max, double Mean) CompareToReference(string model, string dir, CudaBackend gpu, double cpuTolerance)
    {
        using var reference = SafetensorsFile.Open(Path.Combine(dir, "reference_outputs.safetensors"));
        using var cpuLm = CausalLM.Load(dir, CpuBackend.Instance);
        using var gpuLm = CausalLM.Load(dir, gpu);
        var ids = reference.GetSpan<int>("input_ids").ToArray();
        var expected = reference.GetSpan<float>("logits").ToArray();
        int batch = (int)reference.GetInfo("input_ids").Shape[0], seq = (int)reference.GetInfo("input_ids").Shape[1], vocab = gpuLm.VocabSize;
        double maxRef = 0, sumRef = 0, maxCpu = 0, sumCpu = 0;
        for (int b = 0; b < batch; b++)
        {
            var row = ids.AsSpan(b * seq, seq);
            using var gc = gpuLm.CreateCache(seq);
            using var cc = cpuLm.CreateCache(seq);
            var g = gpuLm.Forward(row, gc).ToArray();
            var c = cpuLm.Forward(row, cc).ToArray();
            for (int i = 0; i < g.Length; i++)
            {
                Assert.False(float.IsNaN(g[i]), "NaN logit");
                double dr = Math.Abs(g[i] - expected[(long)b * seq * vocab + i]), dc = Math.Abs(g[i] - c[i]);
                maxRef = Math.Max(maxRef, dr); sumRef += dr;
                maxCpu = Math.Max(maxCpu, dc); sumCpu += dc;
            }
        }
        long n = (long)batch * seq * vocab;
        string line = $"{model} on {gpu.Context.Name}: GPU vs CPU logits max |diff| {maxCpu:E3} mean {sumCpu / n:E3}; GPU vs transformers max {maxRef:E3} mean {sumRef / n:E3} over {batch}x{seq}x{vocab}";
        output.WriteLine(line);
        Console.WriteLine("parity-gpu " + line);
        Assert.True(maxCpu < cpuTolerance, $"{model}: GPU and CPU logits differ by up to {maxCpu:E3} (tolerance {cpuTolerance})");
        Assert.True(maxRef < 2e-2, $"{model}: GPU logits differ from the reference by up to {maxRef:E3}");
        Assert.True(sumRef / n < 2e-3, $"{model}: GPU logits differ from the reference by {sumRef / n:E3} on average");
        return (maxCpu, sumCpu / n);
    }

    [Fact]
    public void Nano_logits_match_cpu_and_the_transformers_reference() =>
        CompareToReference("nano", TestPaths.BundledNano, GpuBackend.Require(), 2e-3);

    [Theory]
    [InlineData("small")]
    [InlineData("moe")]
    public void Shared_model_logits_match_cpu_and_the_transformers_reference(string model)
    {
        var gpu = GpuBackend.Require();
        CompareToReference(model, TestPaths.RequireSharedModel(model), gpu, 2e-3);
    }

    [Fact]
    public void Nano_kv_cached_decode_matches_cpu()
    {
        var gpu = GpuBackend.Require();
        using var cpuLm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        using var gpuLm = CausalLM.Load(TestPaths.BundledNano, gpu);
        int[] prompt = [5, 300, 41, 1999, 7, 12];
        double max = GpuBackend.AssertClose(Logits(cpuLm, [.. prompt, 88, 1021, 3, 4000, 17, 17], prompt.Length), Logits(gpuLm, [.. prompt, 88, 1021, 3, 4000, 17, 17], prompt.Length), 2e-3, 0, "nano decode");
        output.WriteLine($"nano prefill + 6 decode steps: max |diff| {max:E2}");
    }

    [Fact]
    public void Greedy_generation_on_cuda_gives_the_cpu_tokens()
    {
        using var run = new NanoGreedyRun(GpuBackend.Require(), "The Python interpreter", maxTokens: 32);
        var cpu = run.Cpu;
        var cuda = run.OnGpu();
        output.WriteLine($"cuda: {cuda.Text} ({cuda.DecodeTokensPerSecond:F1} tokens/s decode; cpu {cpu.DecodeTokensPerSecond:F1})");
        Console.WriteLine($"generate-gpu nano 32 tokens: cuda {cuda.DecodeTokensPerSecond:F1} tok/s, cpu {cpu.DecodeTokensPerSecond:F1} tok/s");
        Assert.Equal(cpu.TokenIds, cuda.TokenIds);
    }

    [Fact]
    public void Bf16_activation_mode_stays_close_to_cpu()
    {
        var gpu = GpuBackend.Require();
        gpu.MatMulPrecision = DenseMatMulPrecision.Bf16;
        try
        {
            using var reference = SafetensorsFile.Open(Path.Combine(TestPaths.BundledNano, "reference_outputs.safetensors"));
            var ids = reference.GetSpan<int>("input_ids").ToArray();
            int seq = (int)reference.GetInfo("input_ids").Shape[1];
            using var cpuLm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
            using var gpuLm = CausalLM.Load(TestPaths.BundledNano, gpu);
            int vocab = gpuLm.VocabSize;
            var c = Logits(cpuLm, ids.AsSpan(0, seq), seq);
            var g = Logits(gpuLm, ids.AsSpan(0, seq), seq);
            double max = 0, sum = 0;
            int agree = 0;
            for (int i = 0; i < c.Length; i++) { double d = Math.Abs(c[i] - g[i]); max = Math.Max(max, d); sum += d; }
            for (int t = 0; t < seq; t++)
                if (ArgMax(c.AsSpan(t * vocab, vocab)) == ArgMax(g.AsSpan(t * vocab, vocab))) agree++;
            string line = $"nano bf16-activation linears vs CPU: max |diff| {max:E3}, mean {sum / c.Length:E3}, top-1 agreement {agree}/{seq}";
            output.WriteLine(line);
            Console.WriteLine("parity-gpu " + line);
            Assert.True(sum / c.Length < 5e-2, line);
            Assert.True(agree >= seq * 9 / 10, line);
        }
        finally { gpu.MatMulPrecision = DenseMatMulPrecision.SplitBf16; }
    }

    static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    [Fact]
    public void Decode_steps_reuse_device_memory()
    {
        var gpu = GpuBackend.Require();
        long budget = gpu.CollectAfterBytes;
        gpu.CollectAfterBytes = 1 << 20;
        try
        {
        using var lm = CausalLM.Load(TestPaths.BundledNano, gpu);
        using var cache = lm.CreateCache(80);
        lm.Forward([1, 2, 3, 4], cache);
        long Settled()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            return gpu.AllocatedBytes;
        }
        for (int i = 0; i < 10; i++) lm.Forward([i + 5], cache, lastTokenOnly: true);
        long after10 = Settled();
        for (int i = 0; i < 60; i++) lm.Forward([i + 20], cache, lastTokenOnly: true);
        long after70 = Settled();
        output.WriteLine($"device bytes held after 10 decode steps {after10:N0}, after 70 {after70:N0} (collect every {gpu.CollectAfterBytes:N0} fresh bytes)");
        // Garbage activations come back through the finalizers: growth stays within about one collection budget.
        Assert.True(after70 - after10 <= 2 * gpu.CollectAfterBytes, $"decode leaked device memory: {after10:N0} -> {after70:N0} bytes");
        }
        finally { gpu.CollectAfterBytes = budget; }
    }
}
