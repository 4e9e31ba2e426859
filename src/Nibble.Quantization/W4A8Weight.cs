using Nibble.Numerics;

namespace Nibble.Quantization;

/// <summary>
/// The operands of the W4A8 numerics contract for one linear weight (w4a8-spec.md §3, §6): the FP8 weight
/// w8[n, k] = e4m3(q · σ[n, k/G]) (as floats, every one an exact E4M3 value) and the FP32 channel scale c'[n],
/// with σ and c' from <see cref="ScaleRecovery"/>.
/// </summary>
public sealed record W4A8Weight(int N, int K, float[] W8, float[] ChannelScale, RecoveredScales Scales)
{
    public static W4A8Weight From(QuantizedLinearWeights w, ScaleRecoveryMode mode)
    {
        int groups = w.Groups;
        var scales = w.RecoverScales(mode);
        var sigma = new float[scales.GroupScales.Length];
        Fp8E4M3.Decode(scales.GroupScales, sigma);
        var w8 = new float[(long)w.N * w.K];
        for (int n = 0; n < w.N; n++)
            for (int k = 0; k < w.K; k++)
                w8[n * w.K + k] = Fp8E4M3.RoundSatFinite(w.Q[n * w.K + k] * sigma[n * groups + k / w.GroupSize]);
        return new W4A8Weight(w.N, w.K, w8, scales.ChannelScale, scales);
    }
}
