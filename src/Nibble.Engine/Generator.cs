using System.Diagnostics;
using System.Runtime.CompilerServices;
using Nibble.Models;
using Nibble.Text.Tokenization;

namespace Nibble.Engine;

/// <summary>
/// KV-cached autoregressive generation with one model and its tokenizer: prefill the prompt in one
/// forward pass, then one token per step, detokenised incrementally so streamed pieces concatenate
/// to the full decode (multi-byte characters split across tokens are held back until complete).
/// </summary>
public sealed class Generator(CausalLM model, HfTokenizer tokenizer)
{
    public CausalLM Model { get; } = model;
    public HfTokenizer Tokenizer { get; } = tokenizer;

    /// <summary>
    /// Replay one-token decode steps as a CUDA graph when the model runs on the CUDA backend and its step can be
    /// captured (<see cref="Gpu.CudaDecodeGraph.Supported"/>; default on). Generations of fewer than 4 tokens run eagerly.
    /// </summary>
    public bool CudaGraphs { get; set; } = true;

    /// <summary>Stop ids: the tokenizer's eos (tokenizer_config + generation_config) and config.json's eos_token_id.</summary>
    public IReadOnlyList<int> DefaultStopTokenIds => Tokenizer.EosTokenIds.Concat(Model.Config.EosTokenIds).Distinct().ToList();

    /// <summary>Streams the text generated after <paramref name="prompt"/> (encoded without special-token additions).</summary>
    public async IAsyncEnumerable<string> GenerateAsync(string prompt, SamplingOptions options, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var token in GenerateTokensAsync(Tokenizer.Encode(prompt), options, cancellationToken))
            if (token.Text.Length > 0) yield return token.Text;
    }

    /// <summary>Streams generated tokens after <paramref name="promptIds"/>; the final piece may carry only flushed text (Id −1).</summary>
    public async IAsyncEnumerable<GeneratedToken> GenerateTokensAsync(int[] promptIds, SamplingOptions options, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var session = Start(promptIds, options);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var step = await Task.Run(session.Next, cancellationToken).ConfigureAwait(false);
            if (step is null) break;
            yield return step;
        }
        string tail = session.Decoder.Flush();
        if (tail.Length > 0) yield return new GeneratedToken(-1, tail);
    }

    /// <summary>Runs to completion and returns ids, text and timings.</summary>
    public GenerationResult Generate(int[] promptIds, SamplingOptions options, CancellationToken cancellationToken = default)
    {
        var session = Start(promptIds, options);
        var text = new System.Text.StringBuilder();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var step = session.Next();
            if (step is null) break;
            text.Append(step.Text);
        }
        text.Append(session.Decoder.Flush());
        return new GenerationResult(session.Generated.ToArray(), text.ToString(), session.Finish, promptIds.Length, session.PrefillTime, session.DecodeTime);
    }

    Session Start(int[] promptIds, SamplingOptions options)
    {
        options.Validate();
        if (promptIds.Length == 0) throw new NibbleException("The prompt is empty; give at least one token of input.");
        int limit = Model.Config.MaxPositionEmbeddings;
        if (promptIds.Length >= limit)
            throw new NibbleException($"The prompt has {promptIds.Length} tokens, more than the model's context of {limit}; shorten it.");
        int capacity = Math.Min(limit, promptIds.Length + options.MaxTokens);
        return new Session(this, promptIds, options, capacity);
    }

    sealed class Session(Generator owner, int[] prompt, SamplingOptions options, int capacity)
    {
        readonly Backend.KvCache _cache = owner.Model.CreateCache(capacity);
        readonly Sampler _sampler = new(options);
        readonly HashSet<int> _stop = [.. options.StopTokenIds ?? owner.DefaultStopTokenIds];
        Gpu.CudaDecodeGraph? _graph;
        bool _graphChecked;
        int _next = -1;
        bool _done;

        public StreamingDecoder Decoder { get; } = owner.Tokenizer.CreateStreamingDecoder(skipSpecialTokens: false);
        public List<int> Generated { get; } = [];
        public FinishReason Finish { get; private set; } = FinishReason.Length;
        public TimeSpan PrefillTime { get; private set; }
        public TimeSpan DecodeTime { get; private set; }

        /// <summary>Computes one more token; null when generation has ended.</summary>
        public GeneratedToken? Next()
        {
            if (_done) return null;
            if (Generated.Count >= options.MaxTokens || _cache.Length >= capacity) { End(FinishReason.Length); return null; }
            var watch = Stopwatch.StartNew();
            Backend.Tensor logits;
            if (_next < 0) logits = owner.Model.Forward(prompt, _cache, lastTokenOnly: true);
            else
            {
                if (!_graphChecked)
                {
                    _graphChecked = true;
                    if (owner.CudaGraphs && options.MaxTokens >= 4 && Gpu.CudaDecodeGraph.Supported(owner.Model)) _graph = new Gpu.CudaDecodeGraph(owner.Model, _cache);
                }
                logits = _graph?.Step(_next) ?? owner.Model.Forward([_next], _cache, lastTokenOnly: true);
            }
            int id = _sampler.Sample(logits.ToArray());
            if (_next < 0) PrefillTime = watch.Elapsed; else DecodeTime += watch.Elapsed;
            if (_stop.Contains(id)) { End(FinishReason.Stop); return null; }
            _next = id;
            Generated.Add(id);
            return new GeneratedToken(id, Decoder.Push(id));
        }

        void End(FinishReason reason)
        {
            _done = true;
            Finish = reason;
            _graph?.Dispose();
            _graph = null;
        }
    }
}
