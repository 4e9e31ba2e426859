using Nibble.Numerics;

namespace Nibble.Quantization;

/// <summary>How the int4 codes q are chosen once the bf16 group scales S are fixed.</summary>
public enum WeightRounding
{
    /// <summary>compressed-tensors RTN against S (W4A16 semantics, <see cref="RtnQuantizer"/>).</summary>
    Rtn,
    /// <summary>Nearest value on the grid the W4A8 kernel actually uses, c'[n]·e4m3(q·σ[n,g]) (<see cref="W4A8GridRounding"/>).</summary>
    Grid,
}

/// <summary>
/// Grid-aware rounding for W4A8. The bf16 scales S stay exactly RTN's (so the checkpoint format and vLLM's scale
/// recovery are unchanged and deterministic); only q changes. Per (row n, group g) the loader recovers σ[n,g] and c'[n]
/// (<see cref="ScaleRecovery"/>, spec §3), and the weight the GEMM multiplies is c'[n]·e4m3_satfinite(q·σ[n,g])
/// (<see cref="ScaleLut"/> / <see cref="W4A8Reference"/>). RTN picks q against q·S, which ignores both the e4m3
/// rounding of σ (S/c, up to 2^-4 relative) and of the LUT product q·σ for |q| ∈ {3, 5, 6, 7}; here each q[n,k] ∈ [−8, 7]
/// is the candidate among the group's 16 dequantized values nearest to bf16(w) (distance in double). Ties — equal
/// distances, including candidates that collapse to the same value (tiny σ, saturation) — go to the smaller |q|
/// (then the positive q, which never matters in practice as ±q are symmetric about 0 only for w = 0, where q = 0 wins).
/// The result is still a valid pack-quantized weight: same S, different q.
/// </summary>
public static class W4A8GridRounding
{
    /// <summary>The 16 dequantized values c'·e4m3(q·σ) of one group, indexed by q + 8, as the loader computes them.</summary>
    public static void GroupGrid(float sigma, float channelScale, Span<double> grid)
    {
        for (int q = -8; q <= 7; q++)
            grid[q + 8] = (double)channelScale * Fp8E4M3.Decode(Fp8E4M3.EncodeSatFinite(q * sigma));
    }

    /// <summary>The q ∈ [−8, 7] whose grid value is nearest to <paramref name="weight"/>; ties → smaller |q|, then positive.</summary>
    public static sbyte Nearest(double weight, ReadOnlySpan<double> grid)
    {
        // Candidates in order 0, 1, −1, 2, −2, …, 7, −7, −8: the first minimum wins, which realises the tie rule.
        int best = 0;
        double bestDistance = Math.Abs(weight - grid[8]);
        for (int m = 1; m <= 8; m++)
        {
            if (m <= 7)
            {
                double d = Math.Abs(weight - grid[8 + m]);
                if (d < bestDistance) (best, bestDistance) = (m, d);
            }
            double dn = Math.Abs(weight - grid[8 - m]);
            if (dn < bestDistance) (best, bestDistance) = (-m, dn);
        }
        return (sbyte)best;
    }

    /// <summary>
    /// Re-chooses q for weight [n, k] (row-major floats, rounded to bf16 first as RTN does) on the W4A8 grid of
    /// <paramref name="rtn"/>'s bf16 scales; returns a new weight with the same scales.
    /// </summary>
    public static QuantizedLinearWeights Round(ReadOnlySpan<float> weightNK, QuantizedLinearWeights rtn, ScaleRecoveryMode mode = ScaleRecoveryMode.Recovered)
    {
        int n = rtn.N, k = rtn.K, groupSize = rtn.GroupSize, groups = rtn.Groups;
        if (weightNK.Length != (long)n * k)
            throw new ArgumentException($"Expected {n}·{k} weights, got {weightNK.Length}.", nameof(weightNK));
        var scales = rtn.RecoverScales(mode);
        var q = new sbyte[weightNK.Length];
        unsafe
        {
            fixed (float* pw = weightNK)
            {
                float* w = pw;
                Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = (long)n * k >= 1 << 16 ? -1 : 1 }, row =>
                {
                    Span<double> grid = stackalloc double[16];
                    float channel = scales.ChannelScale[row];
                    for (int g = 0; g < groups; g++)
                    {
                        GroupGrid(scales.Sigma(row, g), channel, grid);
                        long start = (long)row * k + g * groupSize;
                        for (int i = 0; i < groupSize; i++) q[start + i] = Nearest(BFloat16.Round(w[start + i]), grid);
                    }
                });
            }
        }
        return new QuantizedLinearWeights(q, rtn.ScalesBf16, n, k, groupSize);
    }

    /// <summary>RTN scales and codes, then grid rounding: the W4A8 weight of one linear.</summary>
    public static QuantizedLinearWeights Quantize(string weightName, ReadOnlySpan<float> weightNK, int n, int k, int groupSize, ScaleRecoveryMode mode = ScaleRecoveryMode.Recovered) =>
        Round(weightNK, RtnQuantizer.QuantizeWeight(weightName, weightNK, n, k, groupSize), mode);
}

/// <summary>`nibble quantize --method rtn --scheme w4a8 --rounding grid`: RTN scales, q on the W4A8 grid.</summary>
public sealed class GridRoundedRtnQuantizer : ILinearQuantizer
{
    public static readonly GridRoundedRtnQuantizer Instance = new();

    public string Method => "rtn";

    public QuantizedLinearWeights Quantize(string weightName, ReadOnlySpan<float> weightNK, int n, int k, int groupSize) =>
        W4A8GridRounding.Quantize(weightName, weightNK, n, k, groupSize);
}
