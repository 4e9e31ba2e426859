using Nibble.Models;

namespace Nibble.Evaluation;

/// <summary>Window settings for perplexity and divergence. Stride = length gives the non-overlapping protocol.</summary>
public sealed record WindowOptions
{
    public int Length { get; init; } = 1024;
    /// <summary>Tokens between window starts (null: Length). With a smaller stride only the new positions of each later window are scored.</summary>
    public int? Stride { get; init; }
    /// <summary>Evaluate only the first N windows (null: all).</summary>
    public int? MaxWindows { get; init; }

    internal int EffectiveStride => Stride ?? Length;

    /// <summary>First position (within a window) whose next-token prediction is scored.</summary>
    internal int FirstScored(int windowIndex) => windowIndex == 0 ? 0 : Math.Max(0, Length - 1 - EffectiveStride);

    internal IReadOnlyList<int> Starts(int tokenCount)
    {
        var starts = TextCorpus.WindowStarts(tokenCount, Length, EffectiveStride);
        if (starts.Count == 0) throw new NibbleException($"The text has {tokenCount} tokens, fewer than one window of {Length}; use a longer text or a shorter --window.");
        return MaxWindows is int m && m < starts.Count ? starts.Take(m).ToList() : starts;
    }
}

public sealed record PerplexityResult(double Perplexity, double MeanNll, long PredictedTokens, int Windows);

/// <summary>exp(mean next-token NLL) over windows of a token stream (../shared/data/README.md protocol by default).</summary>
public static class Perplexity
{
    public static PerplexityResult Evaluate(CausalLM model, int[] tokens, WindowOptions? options = null,
        IProgress<EvaluationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new WindowOptions();
        var starts = options.Starts(tokens.Length);
        double nllSum = 0;
        long count = 0;
        int vocab = model.VocabSize;
        using var cache = model.CreateCache(options.Length);
        for (int w = 0; w < starts.Count; w++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            cache.Length = 0;
            var window = tokens.AsSpan(starts[w], options.Length);
            var logits = model.Forward(window, cache).ToArray();
            for (int t = options.FirstScored(w); t < options.Length - 1; t++)
            {
                nllSum += LogProbs.Nll(logits.AsSpan(t * vocab, vocab), window[t + 1]);
                count++;
            }
            progress?.Report(new EvaluationProgress("perplexity", w + 1, starts.Count));
        }
        double mean = nllSum / count;
        return new PerplexityResult(Math.Exp(mean), mean, count, starts.Count);
    }
}
