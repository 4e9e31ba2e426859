using System.Runtime.CompilerServices;

namespace Nibble.Numerics;

/// <summary>
/// FP8 E4M3 "fn" (torch.float8_e4m3fn, CUDA __nv_fp8_e4m3): 1 sign, 4 exponent (bias 7), 3 mantissa bits, no
/// infinities, NaN = 0x7F / 0xFF, max finite 448 (0x7E), min normal 2^-6, min subnormal 2^-9.
/// Two float → e4m3 conversions, both round to nearest, ties to even:
/// <list type="bullet">
/// <item><see cref="Encode(float)"/> is torch's cast (<c>x.to(torch.float8_e4m3fn)</c>, c10 fp8e4m3fn_from_fp32_value):
/// the rounding is done as if the format went on past 448, and a result that lands on the 0x7F pattern (|x| > 464,
/// incl. ±Inf) is NaN; |x| = 464 ties to 448 (even mantissa). NaN keeps the sign of the input.</item>
/// <item><see cref="EncodeSatFinite(float)"/> is PTX <c>cvt.rn.satfinite.e4m3x2.f32</c> and CUTLASS's host
/// conversion (spec §1.3, §5): |x| beyond 448 (incl. ±Inf) gives ±448; NaN gives 0x7F.</item>
/// </list>
/// Values that round to zero keep their sign (−0 = 0x80), as on both reference implementations.
/// </summary>
public static class Fp8E4M3
{
    public const float MaxFinite = 448f;
    public const byte MaxFiniteCode = 0x7E;
    public const byte NaNCode = 0x7F;
    public static readonly float MinNormal = MathF.ScaleB(1f, -6);
    public static readonly float MinSubnormal = MathF.ScaleB(1f, -9);

    static readonly float[] Table = BuildTable();

    static float[] BuildTable()
    {
        var t = new float[256];
        for (int code = 0; code < 256; code++)
        {
            int exponent = (code >> 3) & 0xF, mantissa = code & 7;
            float magnitude = exponent == 0
                ? mantissa * MathF.ScaleB(1f, -9)
                : (8 + mantissa) * MathF.ScaleB(1f, exponent - 10);
            if ((code & 0x7F) == 0x7F) magnitude = float.NaN;
            t[code] = (code & 0x80) != 0 ? -magnitude : magnitude;
        }
        return t;
    }

    /// <summary>The exact value of a code (NaN for 0x7F / 0xFF).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Decode(byte code) => Table[code];

    public static bool IsNaN(byte code) => (code & 0x7F) == 0x7F;

    /// <summary>Round to nearest even; out of range → NaN (torch cast semantics, see the type's summary).</summary>
    public static byte Encode(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        byte sign = (byte)((bits >> 24) & 0x80);
        if (float.IsNaN(value)) return (byte)(sign | NaNCode);
        int magnitude = EncodeMagnitude(bits & 0x7FFFFFFF);
        return (byte)(sign | (magnitude > MaxFiniteCode ? NaNCode : magnitude));
    }

    /// <summary>Round to nearest even, saturating to ±448 (PTX cvt.rn.satfinite / CUTLASS host semantics).</summary>
    public static byte EncodeSatFinite(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return NaNCode;
        byte sign = (byte)((bits >> 24) & 0x80);
        int magnitude = EncodeMagnitude(bits & 0x7FFFFFFF);
        return (byte)(sign | Math.Min(magnitude, MaxFiniteCode));
    }

    /// <summary>
    /// The 7-bit code of a non-negative finite-or-Inf float rounded to nearest even, with codes above 0x7E meaning
    /// "beyond 448" (0x7F is the rounded value 480, anything larger is clamped to 0x80).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int EncodeMagnitude(uint abs)
    {
        const uint MinNormalBits = (127 - 6) << 23; // 2^-6
        if (abs >= 0x43F80000) return 0x80;          // ≥ 496: far past the 0x7F rounding bucket
        if (abs < MinNormalBits)
        {
            // Subnormal range: the grid is k·2^-9, k = 0..8; x·512 is exact in float, so rounding it is exact.
            float scaled = BitConverter.UInt32BitsToSingle(abs) * 512f;
            return (int)MathF.Round(scaled, MidpointRounding.ToEven);
        }
        // Normal range: keep 3 mantissa bits of the float with a round-to-nearest-even carry; the carry may bump
        // the exponent, which is still the right code. Rebias 127 → 7 (subtract 120 from the exponent field).
        uint rounded = abs + 0x7FFFFu + ((abs >> 20) & 1u);
        return (int)((rounded >> 20) - (120u << 3));
    }

    public static void Decode(ReadOnlySpan<byte> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("Destination is shorter than the source.", nameof(dst));
        for (int i = 0; i < src.Length; i++) dst[i] = Table[src[i]];
    }

    public static void Encode(ReadOnlySpan<float> src, Span<byte> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("Destination is shorter than the source.", nameof(dst));
        for (int i = 0; i < src.Length; i++) dst[i] = Encode(src[i]);
    }

    public static void EncodeSatFinite(ReadOnlySpan<float> src, Span<byte> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("Destination is shorter than the source.", nameof(dst));
        for (int i = 0; i < src.Length; i++) dst[i] = EncodeSatFinite(src[i]);
    }

    /// <summary>e4m3(x) as a float: the value the GPU sees after a satfinite conversion.</summary>
    public static float RoundSatFinite(float value) => Table[EncodeSatFinite(value)];
}
