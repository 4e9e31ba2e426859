namespace Nibble.Evaluation;

/// <summary>Log-softmax helpers in double precision (the accumulations span 8k+ logits).</summary>
public static class LogProbs
{
    /// <summary>log Σ exp(logits).</summary>
    public static double LogSumExp(ReadOnlySpan<float> logits)
    {
        float max = float.NegativeInfinity;
        foreach (var v in logits) if (v > max) max = v;
        double sum = 0;
        foreach (var v in logits) sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }

    /// <summary>−log p(target) under softmax(logits).</summary>
    public static double Nll(ReadOnlySpan<float> logits, int target) => LogSumExp(logits) - logits[target];

    /// <summary>KL(P‖Q) = Σ p (log p − log q) for P = softmax(reference), Q = softmax(candidate).</summary>
    public static double KlDivergence(ReadOnlySpan<float> reference, ReadOnlySpan<float> candidate)
    {
        double lzP = LogSumExp(reference), lzQ = LogSumExp(candidate);
        double kl = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double logP = reference[i] - lzP;
            double p = Math.Exp(logP);
            if (p > 0) kl += p * (logP - (candidate[i] - lzQ));
        }
        return Math.Max(0, kl);
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
}
