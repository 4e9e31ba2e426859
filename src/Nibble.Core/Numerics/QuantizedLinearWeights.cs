namespace Nibble.Numerics;

/// <summary>
/// A W4A16 linear weight as a compressed-tensors checkpoint stores it: signed int4 q [N, K] (row-major, one sbyte per
/// value), bf16 group scales S [N, K/G] (row-major bits), group size G (G = K means channel-wise).
/// Dequantized weight = q·S[n, k/G]. The starting point of both the W4A16 and (after scale recovery) the W4A8 path.
/// </summary>
public sealed record QuantizedLinearWeights
{
    public sbyte[] Q { get; }
    public ushort[] ScalesBf16 { get; }
    public int N { get; }
    public int K { get; }
    public int GroupSize { get; }
    public int Groups => K / GroupSize;

    public QuantizedLinearWeights(sbyte[] q, ushort[] scalesBf16, int n, int k, int groupSize)
    {
        if (n <= 0 || k <= 0) throw new ArgumentException($"Weight shape [{n}, {k}] must be positive.");
        if (groupSize <= 0 || k % groupSize != 0)
            throw new NibbleException($"Group size {groupSize} does not divide K = {k}; use a group size that divides the input features (or K for channel-wise).");
        if (q.Length != (long)n * k) throw new ArgumentException($"Expected {n}·{k} int4 values, got {q.Length}.", nameof(q));
        if (scalesBf16.Length != (long)n * (k / groupSize))
            throw new ArgumentException($"Expected {n}·{k / groupSize} group scales, got {scalesBf16.Length}.", nameof(scalesBf16));
        (Q, ScalesBf16, N, K, GroupSize) = (q, scalesBf16, n, k, groupSize);
    }

    /// <summary>From a checkpoint's <c>weight_packed</c> (uint4b8 int32 [N, K/8]) and <c>weight_scale</c> (bf16 [N, K/G]).</summary>
    public static QuantizedLinearWeights FromPacked(ReadOnlySpan<int> packedNK8, ushort[] scalesBf16, int n, int k, int groupSize) =>
        new(Int4Packing.UnpackUint4b8(packedNK8, n, k), scalesBf16, n, k, groupSize);

    public int[] PackUint4b8() => Int4Packing.PackUint4b8(Q, N, K);

    public float Scale(int n, int g) => BFloat16.ToFloat(ScalesBf16[n * Groups + g]);

    /// <summary>The W4A16 dequantized weight q·S in FP32 (exact: a 4-bit integer times a bf16 value).</summary>
    public float[] Dequantize()
    {
        var w = new float[Q.Length];
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) w[n * K + k] = Q[n * K + k] * Scale(n, k / GroupSize);
        return w;
    }

    /// <summary>FP8 group scales and FP32 channel scales for the W4A8 kernel (spec §3).</summary>
    public RecoveredScales RecoverScales(ScaleRecoveryMode mode = ScaleRecoveryMode.Recovered) =>
        ScaleRecovery.Recover(ScalesBf16, N, Groups, mode);
}
