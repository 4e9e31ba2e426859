namespace Nibble.Numerics;

/// <summary>How W4A16 bf16 group scales become the W4A8 kernel's FP8 group scales and FP32 channel scales.</summary>
public enum ScaleRecoveryMode
{
    /// <summary>Spec §3 (vLLM #23570, convert_bf16_scales_to_fp8): per-row FP8 normalisation, σ ÷ 8, c' = 8c.</summary>
    Recovered,
    /// <summary>σ = e4m3(S) cast directly (torch cast semantics), c' = 1: vLLM's kernel-test reference and the #23198
    /// placeholder; kept to measure what the recovery buys.</summary>
    Naive,
}

/// <summary>FP8 group scales σ [n, groups] (e4m3 codes, row-major) and FP32 channel scales c' [n].</summary>
public sealed record RecoveredScales(byte[] GroupScales, float[] ChannelScale, int N, int Groups)
{
    public float Sigma(int n, int g) => Fp8E4M3.Decode(GroupScales[n * Groups + g]);
}

/// <summary>
/// Scale recovery, spec §3. Per output row n of the bf16 group scales S [n, g]:
/// c = max(max_g |S| / 448, 1/(448·512)); σ1 = e4m3(clamp(S · (1/c), ±448)); σ = e4m3(σ1 / 8); c' = 8c.
/// The effective weight c'·e4m3(q·σ) ≈ q·S. σ1 / 8 is an exact exponent shift for σ1 ≥ 2^-3; smaller groups lose
/// mantissa bits and σ1 &lt; 2^-7 flushes to 0 (spec §3 properties). All casts are RNE; the clamp makes them satfinite.
/// </summary>
public static class ScaleRecovery
{
    /// <summary>c[n] (before the ×8) of one row of group scales, as FP32.</summary>
    public static float ChannelScale(ReadOnlySpan<float> rowScales) => TokenScale.Compute(rowScales);

    /// <summary>Recovers σ and c' from bf16 group scales [n, groups] (row-major bf16 bits).</summary>
    public static RecoveredScales Recover(ReadOnlySpan<ushort> scalesBf16NG, int n, int groups, ScaleRecoveryMode mode = ScaleRecoveryMode.Recovered)
    {
        if (n < 0 || groups <= 0 || scalesBf16NG.Length != (long)n * groups)
            throw new ArgumentException($"Expected {n}·{groups} group scales, got {scalesBf16NG.Length}.", nameof(scalesBf16NG));
        var sigma = new byte[scalesBf16NG.Length];
        var channel = new float[n];
        var row = new float[groups];
        for (int r = 0; r < n; r++)
        {
            BFloat16.ToFloat(scalesBf16NG.Slice(r * groups, groups), row);
            if (mode == ScaleRecoveryMode.Naive)
            {
                for (int g = 0; g < groups; g++) sigma[r * groups + g] = Fp8E4M3.Encode(row[g]);
                channel[r] = 1f;
                continue;
            }
            float c = ChannelScale(row);
            float inverse = 1f / c;
            for (int g = 0; g < groups; g++)
            {
                float sigma1 = Fp8E4M3.Decode(Fp8E4M3.EncodeSatFinite(Math.Clamp(row[g] * inverse, -448f, 448f)));
                sigma[r * groups + g] = Fp8E4M3.EncodeSatFinite(sigma1 / 8f);
            }
            channel[r] = 8f * c;
        }
        return new RecoveredScales(sigma, channel, n, groups);
    }
}
