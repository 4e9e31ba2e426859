using Nibble.Cpu;
using Nibble.Cuda.Backend;
using Nibble.Engine;
using Nibble.Models;
using Nibble.Tests;
using Nibble.Text.Tokenization;

namespace Nibble.Cuda.Tests.Backend;

/// <summary>
/// Greedy generation on the bundled nano, CPU against GPU: loads the tokenizer and the model on both backends, encodes
/// the prompt and generates on the CPU (<see cref="Cpu"/>, the tokens every GPU run must give); <see cref="OnGpu"/>
/// generates with the same prompt and options on the GPU. No stop tokens, so every run is maxTokens long.
/// </summary>
sealed class NanoGreedyRun : IDisposable
{
    readonly HfTokenizer tokenizer;
    readonly CausalLM? cpuLm, gpuLm;
    readonly int[] ids;
    readonly SamplingOptions options;

    public NanoGreedyRun(CudaBackend gpu, string prompt, int maxTokens)
    {
        tokenizer = HfTokenizer.Load(TestPaths.BundledNano);
        try
        {
            cpuLm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
            gpuLm = CausalLM.Load(TestPaths.BundledNano, gpu);
            ids = tokenizer.Encode(prompt);
            options = new SamplingOptions { MaxTokens = maxTokens, StopTokenIds = [] };
            Cpu = new Generator(cpuLm, tokenizer).Generate(ids, options, TestContext.Current.CancellationToken);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The CPU run.</summary>
    public GenerationResult Cpu { get; }

    /// <summary>A GPU run, with CUDA graphs (the <see cref="Generator"/> default) or without.</summary>
    public GenerationResult OnGpu(bool cudaGraphs = true) =>
        new Generator(gpuLm!, tokenizer) { CudaGraphs = cudaGraphs }.Generate(ids, options, TestContext.Current.CancellationToken);

    public void Dispose()
    {
        gpuLm?.Dispose();
        cpuLm?.Dispose();
    }
}
