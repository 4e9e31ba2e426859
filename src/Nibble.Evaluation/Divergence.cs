using Nibble.Models;

namespace Nibble.Evaluation;

/// <summary>How far a candidate (e.g. quantized) model's next-token distributions are from a reference model's on the same tokens.</summary>
public sealed record DivergenceResult(double MeanKl, double Top1Agreement, long Positions, int Windows, double CandidatePerplexity, double ReferencePerplexity);

public static class Divergence
{
    /// <summary>Mean KL(reference ‖ candidate) and the fraction of positions where both argmaxes agree.</summary>
    public static DivergenceResult Evaluate(CausalLM candidate, CausalLM reference, int[] tokens, WindowOptions? options = null,
        IProgress<EvaluationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (candidate.VocabSize != reference.VocabSize)
            throw new NibbleException($"The candidate's vocabulary ({candidate.VocabSize}) differs from the reference's ({reference.VocabSize}); compare models that share a tokenizer.");
        options ??= new WindowOptions();
        var starts = options.Starts(tokens.Length);
        int vocab = candidate.VocabSize;
        double klSum = 0, nllCand = 0, nllRef = 0;
        long agree = 0, count = 0;
        using var cacheC = candidate.CreateCache(options.Length);
        using var cacheR = reference.CreateCache(options.Length);
        for (int w = 0; w < starts.Count; w++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            cacheC.Length = 0;
            cacheR.Length = 0;
            var window = tokens.AsSpan(starts[w], options.Length);
            var lc = candidate.Forward(window, cacheC).ToArray();
            var lr = reference.Forward(window, cacheR).ToArray();
            for (int t = options.FirstScored(w); t < options.Length - 1; t++)
            {
                var c = lc.AsSpan(t * vocab, vocab);
                var r = lr.AsSpan(t * vocab, vocab);
                klSum += LogProbs.KlDivergence(r, c);
                if (LogProbs.ArgMax(c) == LogProbs.ArgMax(r)) agree++;
                nllCand += LogProbs.Nll(c, window[t + 1]);
                nllRef += LogProbs.Nll(r, window[t + 1]);
                count++;
            }
            progress?.Report(new EvaluationProgress("kl", w + 1, starts.Count));
        }
        return new DivergenceResult(klSum / count, (double)agree / count, count, starts.Count, Math.Exp(nllCand / count), Math.Exp(nllRef / count));
    }
}
