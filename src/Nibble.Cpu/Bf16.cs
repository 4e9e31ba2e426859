using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Nibble.Cpu;

/// <summary>bf16 → float widening used inside the kernels (bf16 is the top half of a float's bits).</summary>
internal static unsafe class Bf16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Widens <paramref name="count"/> bf16 values to float.</summary>
    public static void ToFloat(ushort* src, float* dst, int count)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= count; i += 16)
            {
                var v = Vector256.Load(src + i);
                Vector256.ShiftLeft(Vector256.WidenLower(v), 16).AsSingle().Store(dst + i);
                Vector256.ShiftLeft(Vector256.WidenUpper(v), 16).AsSingle().Store(dst + i + 8);
            }
        }
        for (; i < count; i++) dst[i] = ToFloat(src[i]);
    }

    /// <summary>Round-to-nearest-even float → bf16 (for tests and rewritten weights).</summary>
    public static ushort FromFloat(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
