using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Nibble.Cuda.Tests")]
[assembly: InternalsVisibleTo("Nibble.Bench")]

namespace Nibble.Cuda;

/// <summary>
/// The few host-side FP8 E4M3 ("fn": bias 7, max 448, no inf) and BF16 conversions the GPU twins need, with the
/// same rounding as the device's cvt.rn.satfinite: round to nearest even, saturate to +-448, NaN -> 0x7F.
/// Nibble.Numerics holds the project-wide versions; these stay private to the CUDA code's references.
/// </summary>
internal static class HostNumerics
{
    static readonly float[] E4M3Table = BuildTable();

    static float[] BuildTable()
    {
        var t = new float[256];
        for (int b = 0; b < 256; b++)
        {
            int e = (b >> 3) & 0xF, m = b & 7;
            float v = e == 0 ? m * MathF.ScaleB(1f, -9) : (1f + m / 8f) * MathF.ScaleB(1f, e - 7);
            if ((b & 0x7F) == 0x7F) v = float.NaN;
            t[b] = (b & 0x80) != 0 ? -v : v;
        }
        return t;
    }

    public static float DecodeE4M3(byte b) => E4M3Table[b];

    public static byte EncodeE4M3(float f)
    {
        if (float.IsNaN(f)) return 0x7F;
        byte sign = (byte)((BitConverter.SingleToUInt32Bits(f) >> 24) & 0x80);
        double a = Math.Abs((double)f);
        if (a >= 448) return (byte)(sign | 0x7E);
        if (a == 0) return sign;
        int e = Math.Max(Math.ILogB(a), -6);
        double quantum = Math.ScaleB(1.0, e - 3);
        double v = Math.Round(a / quantum, MidpointRounding.ToEven) * quantum;
        if (v == 0) return sign;
        if (v > 448) return (byte)(sign | 0x7E);
        int ev = Math.ILogB(v);
        if (ev < -6) return (byte)(sign | (int)(v / Math.ScaleB(1.0, -9)));
        int mant = (int)(v / Math.ScaleB(1.0, ev) * 8) - 8;
        return (byte)(sign | ((ev + 7) << 3) | mant);
    }

    public static float Bf16ToFloat(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    public static ushort FloatToBf16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
