using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Nibble.Numerics;

/// <summary>
/// bfloat16: the top 16 bits of an IEEE float32 (1 sign, 8 exponent, 7 mantissa bits).
/// float → bf16 rounds to nearest, ties to even (what torch's <c>.to(torch.bfloat16)</c> and CUDA's
/// <c>__float2bfloat16_rn</c> do); overflow rounds to ±Inf; NaN stays NaN and is made quiet (mantissa bit 6 set)
/// so a signalling payload can never truncate to the Inf pattern.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct BFloat16 : IEquatable<BFloat16>
{
    public ushort Bits { get; }

    public BFloat16(ushort bits) => Bits = bits;

    public static BFloat16 FromBits(ushort bits) => new(bits);

    public float ToSingle() => ToFloat(Bits);

    public bool IsNaN => (Bits & 0x7FFF) > 0x7F80;

    public static explicit operator BFloat16(float value) => new(FromFloat(value));
    public static explicit operator float(BFloat16 value) => ToFloat(value.Bits);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Round to nearest even; NaN → quiet NaN with the same sign.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) return (ushort)((bits >> 16) | 0x0040);
        // Adding 0x7FFF (+1 when the kept lsb is odd) carries into the kept half exactly when the dropped half is
        // above one half ulp, or equal to it with an odd kept half; a carry out of the mantissa bumps the exponent,
        // which is the correct rounding (up to Inf at the top).
        uint rounding = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>Rounds a float to the nearest bf16 value and returns it as a float (the "bf16(x)" of the specs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(float value) => ToFloat(FromFloat(value));

    /// <summary>Widens bf16 to float; <paramref name="dst"/> must be at least as long as <paramref name="src"/>.</summary>
    public static void ToFloat(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("Destination is shorter than the source.", nameof(dst));
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref uint d = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(dst));
        int n = src.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= n; i += 32)
            {
                var v = Vector512.LoadUnsafe(ref s, (nuint)i);
                Vector512.ShiftLeft(Vector512.WidenLower(v), 16).StoreUnsafe(ref d, (nuint)i);
                Vector512.ShiftLeft(Vector512.WidenUpper(v), 16).StoreUnsafe(ref d, (nuint)(i + 16));
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector256.LoadUnsafe(ref s, (nuint)i);
                Vector256.ShiftLeft(Vector256.WidenLower(v), 16).StoreUnsafe(ref d, (nuint)i);
                Vector256.ShiftLeft(Vector256.WidenUpper(v), 16).StoreUnsafe(ref d, (nuint)(i + 8));
            }
        }
        for (; i < n; i++) Unsafe.Add(ref d, i) = (uint)Unsafe.Add(ref s, i) << 16;
    }

    /// <summary>Rounds floats to bf16 (same rounding as <see cref="FromFloat(float)"/>, bit for bit).</summary>
    public static void FromFloat(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("Destination is shorter than the source.", nameof(dst));
        ref uint s = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(src));
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        int n = src.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= n; i += 32)
            {
                var lo = Round512(Vector512.LoadUnsafe(ref s, (nuint)i));
                var hi = Round512(Vector512.LoadUnsafe(ref s, (nuint)(i + 16)));
                Vector512.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                var lo = Round256(Vector256.LoadUnsafe(ref s, (nuint)i));
                var hi = Round256(Vector256.LoadUnsafe(ref s, (nuint)(i + 8)));
                Vector256.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        for (; i < n; i++) Unsafe.Add(ref d, i) = FromFloat(BitConverter.UInt32BitsToSingle(Unsafe.Add(ref s, i)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<uint> Round256(Vector256<uint> bits)
    {
        var rounded = Vector256.ShiftRightLogical(bits + Vector256.Create(0x7FFFu) + (Vector256.ShiftRightLogical(bits, 16) & Vector256<uint>.One), 16);
        var quiet = Vector256.ShiftRightLogical(bits, 16) | Vector256.Create(0x40u);
        var isNaN = Vector256.GreaterThan(bits & Vector256.Create(0x7FFFFFFFu), Vector256.Create(0x7F800000u));
        return Vector256.ConditionalSelect(isNaN, quiet, rounded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<uint> Round512(Vector512<uint> bits)
    {
        var rounded = Vector512.ShiftRightLogical(bits + Vector512.Create(0x7FFFu) + (Vector512.ShiftRightLogical(bits, 16) & Vector512<uint>.One), 16);
        var quiet = Vector512.ShiftRightLogical(bits, 16) | Vector512.Create(0x40u);
        var isNaN = Vector512.GreaterThan(bits & Vector512.Create(0x7FFFFFFFu), Vector512.Create(0x7F800000u));
        return Vector512.ConditionalSelect(isNaN, quiet, rounded);
    }

    public bool Equals(BFloat16 other) => Bits == other.Bits;
    public override bool Equals(object? obj) => obj is BFloat16 b && Equals(b);
    public override int GetHashCode() => Bits;
    public override string ToString() => ToSingle().ToString("R", System.Globalization.CultureInfo.InvariantCulture);
}
