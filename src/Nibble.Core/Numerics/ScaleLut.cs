namespace Nibble.Numerics;

/// <summary>
/// The 8-byte scale lookup tables of CUTLASS's LUT dequant (spec §1.3, §1.5) and a bit-exact CPU emulation of the
/// 3-PRMT conversion that turns 8 unified int4 codes into e4m3 weights e4m3(q·σ).
/// A LUT is a ulong whose little-endian byte j (j = 0..7) is e4m3(σ·(j − 8)) (the "negative LUT", satfinite);
/// the positive LUT is derived by sign flips, which is exact in E4M3.
/// </summary>
public static class ScaleLut
{
    /// <summary>Negative LUT of an FP8 group scale σ: byte j = e4m3_satfinite(float(σ)·(j − 8)), product in FP32 (exact).</summary>
    public static ulong Negative(byte sigma)
    {
        float s = Fp8E4M3.Decode(sigma);
        ulong lut = 0;
        for (int j = 0; j < 8; j++) lut |= (ulong)Fp8E4M3.EncodeSatFinite(s * (j - 8)) << (8 * j);
        return lut;
    }

    /// <summary>Negative LUTs for every σ, in the given order (the kernel's packed scale tensor is 8 bytes per σ).</summary>
    public static ulong[] Negative(ReadOnlySpan<byte> sigmas)
    {
        var luts = new ulong[sigmas.Length];
        for (int i = 0; i < sigmas.Length; i++) luts[i] = Negative(sigmas[i]);
        return luts;
    }

    /// <summary>
    /// Positive LUT in registers: word0 = (neg0 AND 0xFFFFFF00) XOR 0x80808080, word1 = neg1 XOR 0x80808080, i.e.
    /// bytes [−0, +7σ, +6σ, …, +1σ] (the lop3 + xor of MixedInputUtils::lookup_table_convert).
    /// </summary>
    public static ulong Positive(ulong negative)
    {
        uint lo = (uint)negative, hi = (uint)(negative >> 32);
        uint posLo = (lo & 0xFFFFFF00u) ^ 0x80808080u;
        uint posHi = hi ^ 0x80808080u;
        return posLo | ((ulong)posHi << 32);
    }

    /// <summary>
    /// PTX <c>prmt.b32 d, a, b, c</c> in its default mode: result byte i is byte (c_i &amp; 7) of the 8-byte value
    /// {b:a} (a = bytes 0..3), with its top bit replicated over the byte when c_i &amp; 8 (sign mode).
    /// </summary>
    public static uint Prmt(uint a, uint b, uint selector)
    {
        ulong source = a | ((ulong)b << 32);
        uint result = 0;
        for (int i = 0; i < 4; i++)
        {
            uint sel = (selector >> (4 * i)) & 0xF;
            uint value = (uint)(source >> (int)(8 * (sel & 7))) & 0xFF;
            if ((sel & 8) != 0) value = (value & 0x80) != 0 ? 0xFFu : 0u;
            result |= value << (8 * i);
        }
        return result;
    }

    /// <summary>
    /// Converts one 32-bit register of 8 unified codes (code i in bits 4i..4i+3) to 8 e4m3 bytes, exactly as the
    /// kernel does: sign = ((src AND 0x88888888) OR 0x64206420) >> 1; index = src AND 0x77777777; per 4 values
    /// prmt from the negative LUT, prmt from the positive LUT, prmt between them by sign. Byte i of the result is
    /// e4m3(q_i·σ) for every q in [−8, 7], except that q = 0 gives −0 (0x80).
    /// </summary>
    public static ulong Convert(uint unifiedCodes, ulong negativeLut)
    {
        ulong positiveLut = Positive(negativeLut);
        uint negLo = (uint)negativeLut, negHi = (uint)(negativeLut >> 32);
        uint posLo = (uint)positiveLut, posHi = (uint)(positiveLut >> 32);
        uint sign = ((unifiedCodes & 0x88888888u) | 0x64206420u) >> 1;
        uint index = unifiedCodes & 0x77777777u;
        ulong result = 0;
        for (int half = 0; half < 2; half++)
        {
            uint neg4 = Prmt(negLo, negHi, index);
            uint pos4 = Prmt(posLo, posHi, index);
            uint out4 = Prmt(pos4, neg4, sign);
            result |= (ulong)out4 << (32 * half);
            index >>= 16;
            sign >>= 16;
        }
        return result;
    }

    /// <summary>The e4m3 byte the LUT path yields for one unified code (convenience over <see cref="Convert"/>).</summary>
    public static byte ConvertOne(int unifiedCode, byte sigma) => (byte)Convert((uint)(unifiedCode & 0xF), Negative(sigma));
}
