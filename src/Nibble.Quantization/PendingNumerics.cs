namespace Nibble.Quantization;

/// <summary>
/// The few scalar numerics AWQ and the CPU W4A8 layer need (E4M3 rounding, bf16 rounding), kept here only
/// until Nibble.Numerics (branch numerics) lands in main; then callers switch to Fp8E4M3 / BFloat16 and this goes.
/// Definitions: w4a8-spec.md notation (E4M3 "fn": max 448, min subnormal 2^-9, round-to-nearest-even, saturating).
/// </summary>
internal static class PendingNumerics
{
    /// <summary>e4m3(v) as a float: RNE to 3 mantissa bits, subnormal step 2^-9, saturating at ±448 (satfinite).</summary>
    public static float E4m3(float v)
    {
        if (float.IsNaN(v)) return v;
        float a = MathF.Abs(v);
        float r;
        if (a < 0.015625f) r = MathF.Round(a * 512f, MidpointRounding.ToEven) / 512f; // subnormal range: fixed step 2^-9
        else
        {
            int bits = BitConverter.SingleToInt32Bits(a);
            int lsb = (bits >> 20) & 1;
            bits = (bits + 0x7FFFF + lsb) & ~0xFFFFF; // keep 3 of float's 23 mantissa bits, ties to even
            r = BitConverter.Int32BitsToSingle(bits);
            if (r > 448f) r = 448f;
        }
        return v < 0 ? -r : r;
    }

    /// <summary>bf16(v) as a float (round to nearest even).</summary>
    public static float Bf16(float v)
    {
        if (float.IsNaN(v)) return v;
        int bits = BitConverter.SingleToInt32Bits(v);
        int lsb = (bits >> 16) & 1;
        bits = (bits + 0x7FFF + lsb) & unchecked((int)0xFFFF0000);
        return BitConverter.Int32BitsToSingle(bits);
    }
}
