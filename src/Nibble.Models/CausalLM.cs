using Nibble.Backend;
using Nibble.Formats;

namespace Nibble.Models;

/// <summary>
/// A decoder-only language model of any supported family, built from the shared blocks
/// (<see cref="DecoderLayer"/>, <see cref="AttentionBlock"/>, <see cref="GatedMlp"/>, <see cref="MoeBlock"/>)
/// over one backend. Weights stay in the memory-mapped checkpoint, which lives as long as the model.
/// </summary>
public sealed class CausalLM : IDisposable
{
    internal CausalLM(string directory, ModelConfig config, IBackend backend, SafetensorsCheckpoint checkpoint,
        Tensor embedTokens, IReadOnlyList<DecoderLayer> layers, NormWeight finalNorm, ILinear lmHead)
    {
        (Directory, Config, Backend, Checkpoint, EmbedTokens, Layers, FinalNorm, LmHead) =
            (directory, config, backend, checkpoint, embedTokens, layers, finalNorm, lmHead);
    }

    /// <summary>Loads a Hugging Face model directory (config.json + safetensors) for <paramref name="backend"/>.</summary>
    public static CausalLM Load(string directory, IBackend backend, ModelLoadOptions? options = null) =>
        ModelBuilder.Build(directory, backend, options ?? new ModelLoadOptions());

    public string Directory { get; }
    public ModelConfig Config { get; }
    public IBackend Backend { get; }
    public SafetensorsCheckpoint Checkpoint { get; }
    public Tensor EmbedTokens { get; }
    public IReadOnlyList<DecoderLayer> Layers { get; }
    public NormWeight FinalNorm { get; }
    public ILinear LmHead { get; set; }
    public int VocabSize => Config.VocabSize;

    /// <summary>When set, sees the input of every linear layer in every forward call.</summary>
    public IActivationObserver? Observer { get; set; }

    /// <summary>A KV cache for one sequence of up to <paramref name="capacity"/> tokens.</summary>
    public KvCache CreateCache(int capacity)
    {
        if (capacity > Config.MaxPositionEmbeddings)
            throw new NibbleException($"A context of {capacity} tokens exceeds the model's max_position_embeddings ({Config.MaxPositionEmbeddings}); use a shorter input.");
        return Backend.CreateKvCache(Config.NumLayers, Config.NumKvHeads, Config.HeadDim, capacity);
    }

    /// <summary>Embeddings of <paramref name="tokens"/>: the residual stream before layer 0, [T, hidden].</summary>
    public Tensor Embed(ReadOnlySpan<int> tokens)
    {
        var hidden = Backend.Zeros(tokens.Length, Config.HiddenSize);
        Backend.Embedding(EmbedTokens, tokens, hidden);
        return hidden;
    }

    /// <summary>A context for tokens appended after the cache's current contents.</summary>
    public ForwardContext ContextFor(KvCache cache, int tokens) =>
        new(ForwardContext.Range(cache.Length, tokens), cache, Observer);

    /// <summary>
    /// Runs <paramref name="tokens"/> after what <paramref name="cache"/> holds and returns logits [T, vocab]
    /// (or [1, vocab] for the last token only, which skips most of the lm_head work during generation).
    /// </summary>
    public Tensor Forward(ReadOnlySpan<int> tokens, KvCache cache, bool lastTokenOnly = false)
    {
        if (tokens.Length == 0) throw new ArgumentException("No tokens to run.", nameof(tokens));
        if (cache.Length + tokens.Length > cache.Capacity)
            throw new NibbleException($"{cache.Length + tokens.Length} tokens do not fit the KV cache of {cache.Capacity}; use a shorter input or a larger context.");
        var ctx = ContextFor(cache, tokens.Length);
        var hidden = Embed(tokens);
        foreach (var layer in Layers) layer.Forward(hidden, ctx);
        cache.Length += tokens.Length;
        if (lastTokenOnly) hidden = hidden.SliceRows(hidden.Rows - 1, 1);
        return Logits(hidden);
    }

    /// <summary>Final RMSNorm then lm_head: logits [T, vocab] from the residual stream [T, hidden].</summary>
    public Tensor Logits(Tensor hidden)
    {
        var normed = Backend.Zeros(hidden.Rows, Config.HiddenSize);
        Backend.RmsNorm(hidden, FinalNorm.Tensor, FinalNorm.Eps, normed);
        var logits = Backend.Zeros(hidden.Rows, Config.VocabSize);
        Observer?.Observe("lm_head", normed, Enumerable.Range(0, hidden.Rows).ToArray());
        LmHead.Forward(normed, logits);
        return logits;
    }

    public void Dispose() => Checkpoint.Dispose();
}

/// <summary>How to load a model: which factory builds its linear layers (default: bf16/f32 <see cref="DenseLinear"/>).</summary>
public sealed record ModelLoadOptions
{
    /// <summary>Builds the factory once the checkpoint is open; quantized loaders plug in here.</summary>
    public Func<IBackend, SafetensorsCheckpoint, ModelConfig, ILinearFactory>? LinearFactory { get; init; }
}
