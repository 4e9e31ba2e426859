namespace Nibble.Cuda.Kernels;

/// <summary>
/// The decode table of the small-M W4A8 kernel (W4A8GemmMma.cu), one entry per FP8 group-scale byte σ: for each of the
/// 16 unified int4 codes the weight e4m3(q·σ) written as n·unit with unit = 2^(E−3) for σ = 1.xxx·2^E (2^−9 for a
/// subnormal σ) and an integer |n| ≤ 120, stored as the byte u = n + 128. The kernel turns a byte into the f16
/// 1024 + u (one PRMT under the exponent 0x64) and then into n·unit with one f16 FMA: (1024 + u)·unit − 1152·unit,
/// exact because n·unit is an e4m3 value (4 significant bits, 2^−9..448), so no weight passes through e4m3 at run time.
/// Layout: 256 × 16 bytes (codes 8..15 then 0..7, one byte each), then 256 × 8 bytes ((unit, unit) and
/// (−1152·unit, −1152·unit) as f16x2).
/// </summary>
public static class W4A8DecodeTable
{
    public const int Entries = 256;
    /// <summary>Bytes of the u-byte part (the f16 pairs follow it).</summary>
    public const int ScaleOffsetBytes = Entries * 16;
    public const int Bytes = Entries * 24;

    /// <summary>q of a unified sign-magnitude code (spec §1.2): sign bit set → idx − 8; else 8 − idx, and 0 for idx 0.</summary>
    public static int CodeValue(int code) => (code & 8) != 0 ? (code & 7) - 8 : (code & 7) == 0 ? 0 : 8 - (code & 7);

    /// <summary>The unit of σ: the spacing of every e4m3(q·σ), q = −8..7 (1 for σ = 0 or NaN, whose weights are all 0 or unused).</summary>
    public static double Unit(byte sigma)
    {
        float s = HostNumerics.DecodeE4M3(sigma);
        if (float.IsNaN(s) || s == 0) return 1;
        double a = Math.Abs((double)s);
        return a < Math.ScaleB(1.0, -6) ? Math.ScaleB(1.0, -9) : Math.ScaleB(1.0, Math.ILogB(a) - 3);
    }

    /// <summary>The 16 u bytes of one σ in code order 0..15 (u = e4m3(q·σ)/unit + 128).</summary>
    public static byte[] Bytes16(byte sigma)
    {
        float s = HostNumerics.DecodeE4M3(sigma);
        double unit = Unit(sigma);
        var u = new byte[16];
        for (int code = 0; code < 16; code++)
        {
            double w = float.IsNaN(s) ? 0 : HostNumerics.DecodeE4M3(HostNumerics.EncodeE4M3(CodeValue(code) * s));
            double n = w / unit;
            if (n != Math.Round(n) || Math.Abs(n) > 127)
                throw new InvalidOperationException($"e4m3({CodeValue(code)}·σ) = {w} is not a small multiple of {unit} for σ byte 0x{sigma:X2}.");
            u[code] = (byte)(n + 128);
        }
        return u;
    }

    /// <summary>The whole table as 32-bit words (<see cref="Bytes"/>/4 of them), ready to upload.</summary>
    public static uint[] Build()
    {
        var words = new uint[Bytes / 4];
        for (int sb = 0; sb < Entries; sb++)
        {
            var u = Bytes16((byte)sb);
            // Word 0/1: codes 8..15 (sign set: q = idx − 8), word 2/3: codes 0..7, byte i of a pair = index i.
            for (int i = 0; i < 8; i++)
            {
                words[sb * 4 + i / 4] |= (uint)u[8 + i] << (8 * (i % 4));
                words[sb * 4 + 2 + i / 4] |= (uint)u[i] << (8 * (i % 4));
            }
            double unit = Unit((byte)sb);
            uint unitBits = BitConverter.HalfToUInt16Bits((Half)unit), biasBits = BitConverter.HalfToUInt16Bits((Half)(-1152 * unit));
            words[ScaleOffsetBytes / 4 + sb * 2] = unitBits | (unitBits << 16);
            words[ScaleOffsetBytes / 4 + sb * 2 + 1] = biasBits | (biasBits << 16);
        }
        return words;
    }
}
