namespace Nibble.Quantization.Awq;

/// <summary>
/// The candidate smoothing scales of one mapping (w4a8-spec.md §4.3 steps 3–4, after llm-compressor's
/// <c>_compute_best_scale</c>; re-derived, not copied): with duo scaling
/// s = max(x_mean^α / (w_mean^(1−α) + 1e-4), 1e-4), without s = max(x_mean^α, 1e-4); then
/// s ← s / sqrt(max(s)·min(s)) and non-finite entries → 1.
/// </summary>
public static class AwqGrid
{
    public readonly record struct Candidate(double Alpha, bool Duo, bool Identity);

    /// <summary>The grid: duo on → identity + α = i/(n−2), i = 0..n−2; off → α = i/(n−1); both → α = i/(n/2−1) for off then on.</summary>
    public static IReadOnlyList<Candidate> Candidates(DuoScaling duo, int points)
    {
        if (points < 2) throw new NibbleException($"The AWQ grid needs at least 2 points, got {points}.");
        var list = new List<Candidate>();
        switch (duo)
        {
            case DuoScaling.On:
                list.Add(new(0, false, true));
                for (int i = 0; i <= points - 2; i++) list.Add(new((double)i / (points - 2), true, false));
                break;
            case DuoScaling.Off:
                for (int i = 0; i < points; i++) list.Add(new((double)i / (points - 1), false, i == 0));
                break;
            default:
                int half = Math.Max(2, points / 2);
                foreach (bool d in new[] { false, true })
                    for (int i = 0; i < half; i++) list.Add(new((double)i / (half - 1), d, !d && i == 0));
                break;
        }
        return list;
    }

    public static float[] Scales(Candidate c, ReadOnlySpan<float> xMean, ReadOnlySpan<float> wMean)
    {
        var s = new float[xMean.Length];
        if (c.Identity) { Array.Fill(s, 1f); return s; }
        for (int i = 0; i < s.Length; i++)
        {
            double v = Math.Pow(xMean[i], c.Alpha);
            if (c.Duo) v /= Math.Pow(wMean[i], 1 - c.Alpha) + 1e-4;
            s[i] = (float)Math.Max(v, 1e-4);
        }
        float max = s.Max(), min = s.Min();
        float norm = MathF.Sqrt(max * min);
        for (int i = 0; i < s.Length; i++)
        {
            s[i] /= norm;
            if (!float.IsFinite(s[i])) s[i] = 1f;
        }
        return s;
    }

    /// <summary>
    /// w_mean: per input channel, mean over every row of every balance layer of |w| divided by the max |w| of its
    /// quantization group (a row's <paramref name="groupSize"/> chunk).
    /// </summary>
    public static float[] WeightMeans(IReadOnlyList<(float[] Weight, int Rows)> layers, int k, int groupSize)
    {
        var sum = new double[k];
        long rows = 0;
        foreach (var (w, n) in layers)
        {
            for (int r = 0; r < n; r++)
                for (int g = 0; g < k; g += groupSize)
                {
                    var chunk = w.AsSpan(r * k + g, Math.Min(groupSize, k - g));
                    float max = 0;
                    foreach (float v in chunk) max = MathF.Max(max, MathF.Abs(v));
                    if (max == 0) continue;
                    for (int i = 0; i < chunk.Length; i++) sum[g + i] += MathF.Abs(chunk[i]) / max;
                }
            rows += n;
        }
        var mean = new float[k];
        for (int i = 0; i < k; i++) mean[i] = (float)(sum[i] / Math.Max(1, rows));
        return mean;
    }
}
