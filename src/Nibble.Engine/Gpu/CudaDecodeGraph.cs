using Nibble.Backend;
using Nibble.Cuda.Backend;
using Nibble.Cuda.Kernels;
using Nibble.Models;

namespace Nibble.Engine.Gpu;

/// <summary>
/// One-token decode steps of a model on the CUDA backend replayed as a CUDA graph: the first step runs eagerly (kernel
/// loads, GEMM plans, scratch buffers), the second is captured (<see cref="CudaBackend.CaptureGraph"/>) and every step
/// after that is a host-to-device copy of [token id, position] plus one <c>cuGraphLaunch</c> instead of the ~10 kernel
/// launches per layer. Attention sizes its key splits from the cache capacity while capturing and reads the position
/// from device memory, so one graph serves every length up to the capacity. Models whose decode step cannot be captured
/// (MoE routing runs on the host; an activation observer) run eagerly: <see cref="Supported"/> says which.
/// The graph bakes in the cache's and the layers' device buffers: use it for one sequence (one cache), with no longer
/// forward pass of the same model in between (a quantized layer may regrow its scratch), and dispose it after.
/// </summary>
public sealed class CudaDecodeGraph : IDisposable
{
    readonly CausalLM _model;
    readonly CudaBackend _backend;
    readonly KvCache _cache;
    CudaGraph? _graph;
    int _eagerSteps;
    bool _failed;

    public CudaDecodeGraph(CausalLM model, KvCache cache)
    {
        _model = model;
        _backend = model.Backend as CudaBackend ?? throw new ArgumentException("CUDA graphs need a model on the CUDA backend.", nameof(model));
        _cache = cache;
    }

    /// <summary>Whether the model's decode step can be captured: CUDA backend, no MoE layer, no observer, head_dim the decode kernel takes.</summary>
    public static bool Supported(CausalLM model) =>
        model.Backend is CudaBackend { UseLegacyDecodeAttention: false } && model.Observer is null && AttentionKernel.DecodeSupports(model.Config.HeadDim)
        && model.Layers.All(l => l.Mlp is not MoeBlock);

    /// <summary>True once a graph is captured (later steps replay it).</summary>
    public bool Captured => _graph is not null;

    /// <summary>Device blocks the captured graph holds (0 before capture).</summary>
    public int ReservedBlocks => _graph?.ReservedBlocks ?? 0;

    /// <summary>Why capturing failed, when it did (steps then run eagerly).</summary>
    public string? FailureReason { get; private set; }

    /// <summary>
    /// Runs token <paramref name="token"/> at the cache's current length and returns its logits [1, vocab]. A replayed
    /// step returns the graph's own output tensor, rewritten by the next step: read it before then, do not dispose it.
    /// </summary>
    public Tensor Step(int token)
    {
        int position = _cache.Length;
        if (position + 1 > _cache.Capacity)
            throw new NibbleException($"{position + 1} tokens do not fit the KV cache of {_cache.Capacity}; use a shorter input or a larger context.");
        if ((uint)token >= (uint)_model.VocabSize)
            throw new NibbleException($"Token id {token} is outside the vocabulary of {_model.VocabSize}; the tokenizer does not match the model.");
        if (_graph is null)
        {
            if (_failed || _eagerSteps++ == 0) return _model.Forward([token], _cache, lastTokenOnly: true);
            _backend.SetStepInputs(token, position);
            try
            {
                _graph = _backend.CaptureGraph(() => _model.Forward([token], _cache, lastTokenOnly: true));
            }
            catch (NibbleException e)
            {
                _failed = true;
                FailureReason = e.Message;
                _cache.Length = position;
                return _model.Forward([token], _cache, lastTokenOnly: true);
            }
            _cache.Length = position + 1; // Forward advanced it while recording
            _graph.Launch();
            return _graph.Output;
        }
        _backend.SetStepInputs(token, position);
        _graph.Launch();
        _cache.Length = position + 1;
        return _graph.Output;
    }

    public void Dispose()
    {
        _graph?.Dispose();
        _graph = null;
    }
}
