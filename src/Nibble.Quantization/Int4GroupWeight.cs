using Nibble.Numerics;
namespace Nibble.Quantization;

/// <summary>
/// A linear weight [N, K] quantized to symmetric int4 with one bf16 scale per (row, group of
/// <see cref="GroupSize"/> input channels) — the W4A16 form that compressed-tensors stores
/// (<c>weight_packed</c> + <c>weight_scale</c>). <see cref="GroupSize"/> = K is channel-wise.
/// </summary>
/// <param name="Q">Codes in [−8, 7], row-major [N, K].</param>
/// <param name="Scales">Group scales S (values exactly representable in bf16), row-major [N, K / GroupSize].</param>
public sealed record Int4GroupWeight(int N, int K, int GroupSize, sbyte[] Q, float[] Scales)
{
    public int Groups => K / GroupSize;

    /// <summary>
    /// Round-to-nearest with compressed-tensors semantics (w4a8-spec.md §2.4): per group S = bf16(absmax / 7.5)
    /// (a zero group gets the smallest positive scale), q = clamp(round(w / S), −8, 7), ties to even as torch.round.
    /// </summary>
    public static Int4GroupWeight Quantize(ReadOnlySpan<float> weight, int n, int k, int groupSize)
    {
        if (groupSize <= 0 || k % groupSize != 0)
            throw new NibbleException($"The input size {k} is not a multiple of the group size {groupSize}; use a group size that divides it (128, or the channel-wise group = {k}).");
        if (weight.Length != (long)n * k) throw new ArgumentException($"{weight.Length} weights do not fill [{n}, {k}].", nameof(weight));
        int groups = k / groupSize;
        var q = new sbyte[(long)n * k];
        var scales = new float[(long)n * groups];
        for (int r = 0; r < n; r++)
            for (int g = 0; g < groups; g++)
            {
                var w = weight.Slice(r * k + g * groupSize, groupSize);
                float absmax = 0;
                foreach (float v in w) absmax = MathF.Max(absmax, MathF.Abs(v));
                float s = BFloat16.Round(absmax / 7.5f);
                if (s == 0 || !float.IsFinite(s)) s = s == 0 ? MinScale : throw new NibbleException("A weight is not finite (NaN or infinity); the checkpoint is damaged.");
                scales[r * groups + g] = s;
                int o = r * k + g * groupSize;
                for (int i = 0; i < groupSize; i++)
                    q[o + i] = (sbyte)Math.Clamp(MathF.Round(w[i] / s, MidpointRounding.ToEven), -8f, 7f);
            }
        return new Int4GroupWeight(n, k, groupSize, q, scales);
    }

    /// <summary>Smallest positive bf16 normal, standing in for a zero scale (compressed-tensors replaces zero scales by eps).</summary>
    const float MinScale = 1.1754944e-38f;

    /// <summary>The W4A16 dequantized weight q · S, row-major [N, K].</summary>
    public float[] Dequantize()
    {
        var w = new float[(long)N * K];
        int groups = Groups;
        for (int r = 0; r < N; r++)
            for (int i = 0; i < K; i++)
                w[r * K + i] = Q[r * K + i] * Scales[r * groups + i / GroupSize];
        return w;
    }
}
