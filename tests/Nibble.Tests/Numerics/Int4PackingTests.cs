using Nibble.Numerics;

namespace Nibble.Tests.Numerics;

public class Int4PackingTests
{
    static sbyte[] RandomQ(Random rng, int count) => Enumerable.Range(0, count).Select(_ => (sbyte)rng.Next(-8, 8)).ToArray();

    [Theory]
    [InlineData(1, 8)]
    [InlineData(3, 24)]
    [InlineData(7, 136)]
    [InlineData(0, 16)]
    public void Uint4b8_packing_round_trips_and_puts_k_8w_in_the_low_bits(int n, int k)
    {
        var rng = new Random(n * 1000 + k);
        var q = RandomQ(rng, n * k);
        int[] packed = Int4Packing.PackUint4b8(q, n, k);
        Assert.Equal(n * k / 8, packed.Length);
        for (int r = 0; r < n; r++)
            for (int c = 0; c < k; c++)
            {
                uint word = (uint)packed[r * (k / 8) + c / 8];
                Assert.Equal(q[r * k + c] + 8, (int)((word >> (4 * (c % 8))) & 0xF));
            }
        Assert.Equal(q, Int4Packing.UnpackUint4b8(packed, n, k));
    }

    [Fact]
    public void Every_value_in_every_nibble_position_round_trips()
    {
        for (int v = -8; v <= 7; v++)
            for (int pos = 0; pos < 8; pos++)
            {
                var q = new sbyte[8];
                q[pos] = (sbyte)v;
                int word = Int4Packing.PackUint4b8(q, 1, 8)[0];
                uint expected = 0x88888888u & ~(0xFu << (4 * pos)) | ((uint)(v + 8) << (4 * pos));
                Assert.Equal(expected, (uint)word);
                Assert.Equal(q, Int4Packing.UnpackUint4b8([word], 1, 8));
                // vLLM's in-place uint4b8 → int4: flip bit 3 of each nibble = two's-complement nibbles.
                Assert.Equal(q, Int4Packing.UnpackSigned(BitConverter.GetBytes(Int4Packing.Uint4b8ToSignedWord((uint)word)), 8));
            }
    }

    [Fact]
    public void A_k_that_is_not_a_multiple_of_8_is_a_clear_error()
    {
        var ex = Assert.Throws<NibbleException>(() => Int4Packing.PackUint4b8(new sbyte[12], 1, 12));
        Assert.Contains("multiple of 8", ex.Message);
        Assert.Throws<NibbleException>(() => Int4Packing.UnpackUint4b8(new int[2], 1, 12));
        Assert.Throws<NibbleException>(() => Int4Packing.UnpackUint4b8(new int[3], 1, 16));
        Assert.Throws<ArgumentOutOfRangeException>(() => Int4Packing.PackUint4b8(Enumerable.Repeat((sbyte)8, 8).ToArray(), 1, 8));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(17)]
    [InlineData(1000)]
    public void Signed_nibble_packing_round_trips_with_element_i_in_bits_4_times_i_mod_2(int count)
    {
        var q = RandomQ(new Random(count), count);
        byte[] packed = Int4Packing.PackSigned(q);
        Assert.Equal((count + 1) / 2, packed.Length);
        for (int i = 0; i < count; i++)
        {
            int nibble = (packed[i / 2] >> (4 * (i % 2))) & 0xF;
            Assert.Equal(q[i] < 0 ? q[i] + 16 : q[i], nibble);
        }
        if (count % 2 == 1) Assert.Equal(0, packed[^1] >> 4);
        Assert.Equal(q, Int4Packing.UnpackSigned(packed, count));
    }

    [Fact]
    public void Unified_encoding_follows_cutlass_for_all_sixteen_values()
    {
        // Spec §1.2: 1 → 0b0111, 2 → 0b0110, …, 7 → 0b0001; 0 and negatives keep their two's-complement nibble.
        int[] expected = [8, 9, 10, 11, 12, 13, 14, 15, 0, 7, 6, 5, 4, 3, 2, 1]; // q = −8..7
        for (int q = -8; q <= 7; q++)
        {
            int code = Int4Packing.UnifiedEncode(q);
            Assert.Equal(expected[q + 8], code);
            Assert.Equal(q, Int4Packing.UnifiedDecode(code));
            Assert.Equal(code, Int4Packing.UnifiedEncodeNibble(q & 0xF));
            if (q is >= 1 and <= 7)
            {
                int negative = Int4Packing.UnifiedEncode(-q);
                Assert.Equal(negative & 7, code & 7); // same magnitude index 8 − q
                Assert.Equal(8, negative ^ code);     // differ only in the sign bit
            }
        }
    }

    [Fact]
    public void Packed_and_word_unified_encoding_equal_the_per_nibble_map()
    {
        var rng = new Random(3);
        var bytes = new byte[257];
        rng.NextBytes(bytes);
        var unified = new byte[bytes.Length];
        Int4Packing.UnifiedEncodePacked(bytes, unified);
        var q = Int4Packing.UnpackSigned(bytes, bytes.Length * 2);
        for (int i = 0; i < q.Length; i++)
            Assert.Equal(Int4Packing.UnifiedEncode(q[i]), (unified[i / 2] >> (4 * (i % 2))) & 0xF);
        for (int i = 0; i + 4 <= bytes.Length; i += 4)
            Assert.Equal(BitConverter.ToUInt32(unified, i), Int4Packing.UnifiedEncodeWord(BitConverter.ToUInt32(bytes, i)));
    }
}
