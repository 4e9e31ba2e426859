using Nibble.Numerics;

namespace Nibble.Quantization;

/// <summary>
/// Round-to-nearest symmetric int4 with compressed-tensors semantics (spec §2.4; compressed-tensors
/// <c>calculate_qparams</c> + <c>_quantize</c>, memoryless min-max observer), computed the way torch does on a bf16
/// weight:
/// <list type="bullet">
/// <item>per (row, group): min/max widened to include 0, so absmax = max |w| (or 0);</item>
/// <item>scale = bf16(absmax / 7.5) (bit range 15 / 2; bf16 tensor op = FP32 divide, one bf16 rounding);
/// a zero scale becomes bf16 eps = 2^-7;</item>
/// <item>q = clamp(round_half_even(bf16(w / scale)), −8, 7): the quotient of two bf16 tensors is itself rounded to
/// bf16 before torch.round, which matters (e.g. −1.0234375 / 0.13671875 = −7.4857 → bf16 −7.5 → −8).</item>
/// </list>
/// Hence q = −8 does occur (the group's most negative value when the ratio rounds to −7.5) while +8 is clamped to 7.
/// </summary>
public sealed class RtnQuantizer : ILinearQuantizer
{
    public static readonly RtnQuantizer Instance = new();

    /// <summary>torch.finfo(torch.bfloat16).eps, compressed-tensors' replacement for a zero scale.</summary>
    public const float ZeroScaleReplacement = 0.0078125f;

    public string Method => "rtn";

    public QuantizedLinearWeights Quantize(string weightName, ReadOnlySpan<float> weightNK, int n, int k, int groupSize) =>
        QuantizeWeight(weightName, weightNK, n, k, groupSize);

    /// <summary>Quantizes weight [n, k]; <paramref name="groupSize"/> = k gives channel-wise scales.</summary>
    public static QuantizedLinearWeights QuantizeWeight(string weightName, ReadOnlySpan<float> weightNK, int n, int k, int groupSize)
    {
        if (groupSize <= 0 || k % groupSize != 0)
            throw new NibbleException($"Layer '{weightName}' has {k} input features, not a multiple of the group size {groupSize}; use --group-size {k} (channel-wise) or a divisor of {k}.");
        if (weightNK.Length != (long)n * k)
            throw new ArgumentException($"Expected {n}·{k} weights, got {weightNK.Length}.", nameof(weightNK));
        int groups = k / groupSize;
        var q = new sbyte[weightNK.Length];
        var scales = new ushort[n * groups];
        unsafe
        {
            fixed (float* pw = weightNK)
            {
                float* w = pw;
                Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = (long)n * k >= 1 << 16 ? -1 : 1 }, row =>
                {
                    for (int g = 0; g < groups; g++)
                    {
                        var group = new ReadOnlySpan<float>(w + (long)row * k + g * groupSize, groupSize);
                        ushort scaleBits = GroupScale(group);
                        scales[row * groups + g] = scaleBits;
                        float scale = BFloat16.ToFloat(scaleBits);
                        for (int i = 0; i < groupSize; i++)
                            q[(long)row * k + g * groupSize + i] = QuantizeValue(group[i], scale);
                    }
                });
            }
        }
        return new QuantizedLinearWeights(q, scales, n, k, groupSize);
    }

    /// <summary>The bf16 scale of one group: bf16(max(|min(w,0)|, max(w,0)) / 7.5), zero → 2^-7.</summary>
    public static ushort GroupScale(ReadOnlySpan<float> group)
    {
        float absMax = 0;
        foreach (float v in group) absMax = MathF.Max(absMax, MathF.Abs(BFloat16.Round(v)));
        float scale = BFloat16.Round(absMax / 7.5f);
        return BFloat16.FromFloat(scale == 0 ? ZeroScaleReplacement : scale);
    }

    /// <summary>q = clamp(round_half_even(bf16(bf16(w) / scale)), −8, 7).</summary>
    public static sbyte QuantizeValue(float weight, float scale)
    {
        float scaled = BFloat16.Round(BFloat16.Round(weight) / scale);
        return (sbyte)Math.Clamp(MathF.Round(scaled, MidpointRounding.ToEven), Int4Packing.MinValue, Int4Packing.MaxValue);
    }
}
