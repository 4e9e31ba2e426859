namespace Nibble.Quantization;

/// <summary>
/// The operands of the W4A8 numerics contract for one linear weight (w4a8-spec.md §3, §6): the FP8 weight
/// w8[n, k] = e4m3(q · σ[n, k/G]) (stored as floats, every one an exact E4M3 value) and the FP32 channel scale c'[n].
/// </summary>
public sealed record W4A8Weight(int N, int K, float[] W8, float[] ChannelScale, float[] GroupScalesFp8)
{
    public static W4A8Weight From(Int4GroupWeight w, ScaleMode mode)
    {
        int groups = w.Groups;
        var sigma = new float[w.Scales.Length];
        var channel = new float[w.N];
        for (int n = 0; n < w.N; n++)
        {
            var s = w.Scales.AsSpan(n * groups, groups);
            if (mode == ScaleMode.Naive)
            {
                for (int g = 0; g < groups; g++) sigma[n * groups + g] = PendingNumerics.E4m3(s[g]);
                channel[n] = 1f;
                continue;
            }
            float rowMax = 0;
            foreach (float v in s) rowMax = MathF.Max(rowMax, MathF.Abs(v));
            float c = MathF.Max(rowMax / 448f, 1f / (448f * 512f));
            float inv = 1f / c;
            for (int g = 0; g < groups; g++)
            {
                float sigma1 = PendingNumerics.E4m3(Math.Clamp(s[g] * inv, -448f, 448f));
                sigma[n * groups + g] = PendingNumerics.E4m3(sigma1 / 8f);
            }
            channel[n] = 8f * c;
        }
        var w8 = new float[(long)w.N * w.K];
        for (int n = 0; n < w.N; n++)
            for (int k = 0; k < w.K; k++)
                w8[n * w.K + k] = PendingNumerics.E4m3(w.Q[n * w.K + k] * sigma[n * groups + k / w.GroupSize]);
        return new W4A8Weight(w.N, w.K, w8, channel, sigma);
    }
}
