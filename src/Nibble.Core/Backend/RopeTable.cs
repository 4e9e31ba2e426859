using Nibble.Formats;

namespace Nibble.Backend;

/// <summary>
/// Rotary-embedding inverse frequencies for one head size, with the llama3 frequency scaling when
/// configured. Computed in float32 like the transformers reference so angles agree bit-for-bit in
/// the frequencies (cos/sin then differ only by libm rounding).
/// </summary>
public sealed class RopeTable
{
    public int HeadDim { get; }
    public float[] InverseFrequencies { get; }

    public RopeTable(RopeConfig config, int headDim)
    {
        HeadDim = headDim;
        int half = headDim / 2;
        var inv = new float[half];
        for (int i = 0; i < half; i++)
            inv[i] = 1f / MathF.Pow((float)config.Theta, 2 * i / (float)headDim);
        if (config.Type == "llama3") ApplyLlama3(inv, config);
        InverseFrequencies = inv;
    }

    // Llama 3.1 "rope_type: llama3": long wavelengths are divided by the factor, short ones kept,
    // the band between interpolated smoothly (transformers' _compute_llama3_parameters).
    static void ApplyLlama3(float[] inv, RopeConfig c)
    {
        double lowWavelen = c.OriginalMaxPositionEmbeddings / c.LowFreqFactor;
        double highWavelen = c.OriginalMaxPositionEmbeddings / c.HighFreqFactor;
        for (int i = 0; i < inv.Length; i++)
        {
            double f = inv[i];
            double wavelen = 2 * Math.PI / f;
            if (wavelen > lowWavelen) f /= c.Factor;
            else if (wavelen >= highWavelen)
            {
                double smooth = (c.OriginalMaxPositionEmbeddings / wavelen - c.LowFreqFactor) / (c.HighFreqFactor - c.LowFreqFactor);
                f = (1 - smooth) * f / c.Factor + smooth * f;
            }
            inv[i] = (float)f;
        }
    }

    /// <summary>cos and sin of position·frequency for the first half of a head.</summary>
    public void Angles(int position, Span<float> cos, Span<float> sin)
    {
        for (int i = 0; i < InverseFrequencies.Length; i++)
        {
            float angle = position * InverseFrequencies[i];
            cos[i] = MathF.Cos(angle);
            sin[i] = MathF.Sin(angle);
        }
    }
}
