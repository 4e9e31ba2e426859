using Nibble.Cuda.Backend;
using AttentionKernel = Nibble.Cuda.Kernels.AttentionKernel;
using DecodeAttentionVariant = Nibble.Cuda.Kernels.DecodeAttentionVariant;
using Nibble.Engine;
using Nibble.Engine.Gpu;
using Nibble.Models;
using Nibble.Tests;
using Nibble.Tests.Models;

namespace Nibble.Cuda.Tests.Backend;

/// <summary>
/// Decode steps replayed from a captured CUDA graph (<see cref="CudaDecodeGraph"/>) against the same steps run
/// eagerly on a second cache: logits per step (tolerance 1e-4 abs + 1e-4 rel: the graph's attention splits follow the
/// cache capacity instead of the current length, which only reorders float32 sums) and greedy tokens identical, with
/// and without graphs in <see cref="Generator"/>, and no device-memory growth over replays.
/// </summary>
public class CudaGraphTests(ITestOutputHelper output)
{
    static int ArgMax(float[] v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /// <summary>Greedy decode of <paramref name="steps"/> tokens after a prefill, eager on one cache and graph-replayed on another, comparing logits each step.</summary>
    void CompareGraphToEager(CausalLM lm, int[] prompt, int steps, int capacity, string what)
    {
        using var eagerCache = lm.CreateCache(capacity);
        using var graphCache = lm.CreateCache(capacity);
        var eager = lm.Forward(prompt, eagerCache, lastTokenOnly: true).ToArray();
        var viaGraph = lm.Forward(prompt, graphCache, lastTokenOnly: true).ToArray();
        using var graph = new CudaDecodeGraph(lm, graphCache);
        int a = ArgMax(eager), b = ArgMax(viaGraph);
        double max = 0;
        for (int i = 0; i < steps; i++)
        {
            Assert.Equal(a, b);
            var e = lm.Forward([a], eagerCache, lastTokenOnly: true).ToArray();
            var g = graph.Step(b).ToArray();
            max = Math.Max(max, GpuBackend.AssertClose(e, g, 1e-4, 1e-4, $"{what} step {i} (graph captured: {graph.Captured})"));
            Assert.Equal(eagerCache.Length, graphCache.Length);
            a = ArgMax(e); b = ArgMax(g);
        }
        Assert.True(graph.Captured, $"{what}: the decode step was not captured ({graph.FailureReason})");
        output.WriteLine($"{what}: {steps} graph-replayed decode steps vs eager, logits max |diff| {max:E2}");
    }

    [Fact]
    public void Nano_graph_replay_matches_eager_decode()
    {
        var gpu = GpuBackend.Require();
        using var lm = CausalLM.Load(TestPaths.BundledNano, gpu);
        CompareGraphToEager(lm, [5, 300, 41, 1999, 7, 12, 88], 24, 200, "nano");
    }

    [Theory]
    [InlineData("llama-tied")]
    [InlineData("llama3-rope")]
    [InlineData("mistral-window")] // sliding window 5: the window's start comes from the device-side position
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    public void Synthetic_family_graph_replay_matches_eager_decode(string name)
    {
        var gpu = GpuBackend.Require();
        using var tmp = TestPaths.CreateTempDir();
        SyntheticModel.Write(tmp.Path, SyntheticModel.FamilyConfig(name), seed: name.Length + 3);
        using var lm = CausalLM.Load(tmp.Path, gpu);
        CompareGraphToEager(lm, [3, 17, 90, 4, 4, 55, 12], 12, 40, name);
    }

    [Theory]
    [InlineData(DecodeAttentionVariant.V3a)]
    [InlineData(DecodeAttentionVariant.V3b)]
    [InlineData(DecodeAttentionVariant.Fused)]
    public void Graph_replay_matches_eager_while_the_sequence_fills_more_splits(DecodeAttentionVariant variant)
    {
        // A 300-token prompt, then 40 replayed steps on a 1000-position cache: the graph's attention is split for the
        // capacity (16 splits of 64 keys for 6/2 heads), so positions 300..339 fill 5, then 6 splits, each replay
        // taking the position (and so the chunking) from device memory; eager steps split for the current length.
        // With the fused kernel every replay also reuses the ticket counters of both layers.
        var gpu = GpuBackend.Require();
        var before = gpu.DecodeAttention;
        gpu.DecodeAttention = variant;
        try
        {
            using var tmp = TestPaths.CreateTempDir();
            var config = SyntheticModel.FamilyConfig("qwen2");
            config["max_position_embeddings"] = 1024;
            SyntheticModel.Write(tmp.Path, config, seed: 11);
            using var lm = CausalLM.Load(tmp.Path, gpu);
            var rng = new Random(300);
            int[] prompt = Enumerable.Range(0, 300).Select(_ => rng.Next(lm.VocabSize)).ToArray();
            int heads = lm.Config.NumHeads, kvHeads = lm.Config.NumKvHeads;
            int graphSplits = AttentionKernel.ChooseDecodeSplits(heads, kvHeads, lm.Config.HeadDim, 1000, gpu.Context.MultiprocessorCount, variant);
            Assert.True(graphSplits >= 6, $"the graph should split the 1000-position cache into at least 6 parts, not {graphSplits}");
            CompareGraphToEager(lm, prompt, 40, 1000, $"qwen2 {variant}, 300-token prompt, {graphSplits} graph splits");
        }
        finally { gpu.DecodeAttention = before; }
    }

    [Fact]
    public void Moe_models_are_not_captured()
    {
        var gpu = GpuBackend.Require();
        using var tmp = TestPaths.CreateTempDir();
        SyntheticModel.Write(tmp.Path, SyntheticModel.FamilyConfig("mixtral"));
        using var lm = CausalLM.Load(tmp.Path, gpu);
        Assert.False(CudaDecodeGraph.Supported(lm));
        // Forcing a capture fails cleanly (host routing cannot be recorded) and the step runs eagerly with the right logits.
        using var cache = lm.CreateCache(20);
        using var eagerCache = lm.CreateCache(20);
        lm.Forward([1, 2, 3], cache); lm.Forward([1, 2, 3], eagerCache);
        using var graph = new CudaDecodeGraph(lm, cache);
        for (int i = 0; i < 3; i++)
        {
            var g = graph.Step(5 + i).ToArray();
            var e = lm.Forward([5 + i], eagerCache, lastTokenOnly: true).ToArray();
            GpuBackend.AssertClose(e, g, 1e-5, 1e-5, $"MoE step {i}");
        }
        Assert.False(graph.Captured);
        Assert.Contains("CUDA graph", graph.FailureReason);
        Assert.False(gpu.IsCapturing);
        output.WriteLine($"MoE capture refused: {graph.FailureReason}");
    }

    [Fact]
    public void Generator_with_and_without_graphs_gives_the_cpu_tokens()
    {
        using var run = new NanoGreedyRun(GpuBackend.Require(), "Once upon a time", maxTokens: 40);
        var cpu = run.Cpu;
        var eager = run.OnGpu(cudaGraphs: false);
        var graphs = run.OnGpu(cudaGraphs: true);
        string line = $"nano 40 tokens: eager {eager.DecodeTokensPerSecond:F0} tok/s, graphs {graphs.DecodeTokensPerSecond:F0} tok/s, cpu {cpu.DecodeTokensPerSecond:F0} tok/s";
        output.WriteLine(line);
        Console.WriteLine("graphs-gpu " + line);
        Assert.Equal(cpu.TokenIds, eager.TokenIds);
        Assert.Equal(cpu.TokenIds, graphs.TokenIds);
    }

    [Fact]
    public void Replays_reuse_the_same_device_memory()
    {
        var gpu = GpuBackend.Require();
        using var lm = CausalLM.Load(TestPaths.BundledNano, gpu);
        using var cache = lm.CreateCache(120);
        lm.Forward([1, 2, 3, 4], cache);
        using var graph = new CudaDecodeGraph(lm, cache);
        graph.Step(9); graph.Step(10);
        Assert.True(graph.Captured, graph.FailureReason);
        static long Settled(CudaBackend b) { GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect(); b.Synchronize(); return b.AllocatedBytes; }
        for (int i = 0; i < 5; i++) graph.Step(11 + i);
        long before = Settled(gpu);
        for (int i = 0; i < 80; i++) graph.Step(20 + i);
        long after = Settled(gpu);
        output.WriteLine($"device bytes after 5 replays {before:N0}, after 85 {after:N0}");
        Assert.Equal(before, after);
        Assert.Equal(4 + 2 + 5 + 80, cache.Length);
        Assert.True(graph.ReservedBlocks > 0);
    }
}
