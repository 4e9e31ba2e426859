namespace Nibble.Engine;

/// <summary>Picks the next token from a row of logits under <see cref="SamplingOptions"/>.</summary>
public sealed class Sampler
{
    readonly SamplingOptions _options;
    readonly Random _random;
    float[] _probs = [];
    int[] _order = [];

    public Sampler(SamplingOptions options)
    {
        options.Validate();
        _options = options;
        _random = options.Seed is int seed ? new Random(seed) : new Random();
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }

    public int Sample(ReadOnlySpan<float> logits)
    {
        if (_options.Temperature == 0) return ArgMax(logits);
        int n = logits.Length;
        if (_probs.Length != n) { _probs = new float[n]; _order = new int[n]; }
        float max = float.NegativeInfinity;
        foreach (var v in logits) max = Math.Max(max, v);
        for (int i = 0; i < n; i++) { _order[i] = i; _probs[i] = MathF.Exp((logits[i] - max) / _options.Temperature); }

        // Candidates sorted by probability (descending, lowest id first on ties).
        var probs = _probs;
        Array.Sort(_order, (a, b) => probs[b] != probs[a] ? probs[b].CompareTo(probs[a]) : a.CompareTo(b));
        int keep = _options.TopK > 0 ? Math.Min(_options.TopK, n) : n;
        double total = 0;
        for (int i = 0; i < keep; i++) total += probs[_order[i]];
        if (_options.TopP < 1)
        {
            double cumulative = 0;
            for (int i = 0; i < keep; i++)
            {
                cumulative += probs[_order[i]] / total;
                if (cumulative >= _options.TopP) { keep = i + 1; break; }
            }
            total = 0;
            for (int i = 0; i < keep; i++) total += probs[_order[i]];
        }
        double r = _random.NextDouble() * total;
        for (int i = 0; i < keep; i++)
        {
            r -= probs[_order[i]];
            if (r <= 0) return _order[i];
        }
        return _order[keep - 1];
    }
}
