using Nibble.Numerics;

namespace Nibble.Tests.Numerics;

public class ScaleLutTests
{
    static IEnumerable<byte> AllPositiveSigmas() => Enumerable.Range(0, 0x7F).Select(c => (byte)c);

    [Fact]
    public void The_negative_lut_holds_minus_8_to_minus_1_times_sigma_saturated()
    {
        byte sigma56 = Fp8E4M3.EncodeSatFinite(56f);
        ulong lut = ScaleLut.Negative(sigma56);
        // 7·56 = 392 → 384, 6·56 = 336 (tie) → 320, 5·56 = 280 → 288, 3·56 = 168 (tie) → 160.
        float[] expected = [-448, -384, -320, -288, -224, -160, -112, -56];
        for (int j = 0; j < 8; j++) Assert.Equal(expected[j], Fp8E4M3.Decode((byte)(lut >> (8 * j))));
        // σ = 60 (spec §5 H100 check): −8·60 = −480 saturates to −448; −7·60 = −420 → −416.
        lut = ScaleLut.Negative(Fp8E4M3.EncodeSatFinite(60f));
        Assert.Equal(-448f, Fp8E4M3.Decode((byte)lut));
        Assert.Equal(-416f, Fp8E4M3.Decode((byte)(lut >> 8)));
    }

    [Fact]
    public void The_positive_lut_derived_by_xor_equals_the_lut_built_directly_for_every_sigma()
    {
        foreach (byte sigma in AllPositiveSigmas())
        {
            ulong positive = ScaleLut.Positive(ScaleLut.Negative(sigma));
            Assert.Equal(0x80, (byte)positive); // −0
            float s = Fp8E4M3.Decode(sigma);
            for (int j = 1; j < 8; j++)
                Assert.Equal(Fp8E4M3.EncodeSatFinite(s * (8 - j)), (byte)(positive >> (8 * j)));
        }
    }

    [Fact]
    public void Prmt_selects_bytes_and_replicates_signs_like_ptx()
    {
        uint a = 0x83828180, b = 0x07060504;
        Assert.Equal(a, ScaleLut.Prmt(a, b, 0x3210));
        Assert.Equal(b, ScaleLut.Prmt(a, b, 0x7654));
        Assert.Equal(0x80070481u, ScaleLut.Prmt(a, b, 0x0741));
        Assert.Equal(0x00FF00FFu, ScaleLut.Prmt(a, b, 0xC8D8)); // bytes 0 (0x80 → FF), 5 (0x05 → 00), 0, 4
    }

    [Fact]
    public void The_three_prmt_conversion_gives_e4m3_of_q_times_sigma_for_all_codes_and_sigmas()
    {
        foreach (byte sigma in AllPositiveSigmas())
        {
            float s = Fp8E4M3.Decode(sigma);
            for (int q = -8; q <= 7; q++)
            {
                byte got = ScaleLut.ConvertOne(Int4Packing.UnifiedEncode(q), sigma);
                byte expected = Fp8E4M3.EncodeSatFinite(q * s);
                if (q == 0) Assert.Equal(0x80, got); // −0: the positive LUT's byte 0
                else Assert.Equal(expected, got);
                Assert.Equal(Fp8E4M3.Decode(expected), Fp8E4M3.Decode(got));
            }
        }
        // Spec §1.5 H100 example: σ = 0.3125, q = 7 → 2.1875 rounds to 2.25.
        Assert.Equal(2.25f, Fp8E4M3.Decode(ScaleLut.ConvertOne(Int4Packing.UnifiedEncode(7), Fp8E4M3.EncodeSatFinite(0.3125f))));
        Assert.Equal(-448f, Fp8E4M3.Decode(ScaleLut.ConvertOne(Int4Packing.UnifiedEncode(-8), Fp8E4M3.EncodeSatFinite(56f))));
    }

    [Fact]
    public void Whole_registers_of_eight_codes_convert_lane_by_lane()
    {
        var rng = new Random(2);
        for (int t = 0; t < 20000; t++)
        {
            uint codes = (uint)rng.NextInt64(0, 1L << 32);
            byte sigma = (byte)rng.Next(0, 0x7F);
            ulong result = ScaleLut.Convert(codes, ScaleLut.Negative(sigma));
            for (int lane = 0; lane < 8; lane++)
            {
                int q = Int4Packing.UnifiedDecode((int)(codes >> (4 * lane)) & 0xF);
                float expected = Fp8E4M3.Decode(Fp8E4M3.EncodeSatFinite(q * Fp8E4M3.Decode(sigma)));
                Assert.Equal(expected, Fp8E4M3.Decode((byte)(result >> (8 * lane))));
            }
        }
    }
}
