using Nibble.Numerics;

namespace Nibble.Tests.Numerics;

public class BFloat16Tests
{
    /// <summary>Independent reference: nearest of the two bf16 neighbours by exact double distance, ties to even.</summary>
    static ushort NearestBf16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        if (float.IsNaN(x)) return 0; // not used
        ushort sign = (ushort)((bits >> 16) & 0x8000);
        uint abs = bits & 0x7FFFFFFF;
        if (abs >= 0x7F800000) return (ushort)(sign | 0x7F80);
        ushort below = (ushort)(abs >> 16), above = (ushort)(below + 1);
        double a = BitConverter.UInt32BitsToSingle(abs);
        double vBelow = BitConverter.UInt32BitsToSingle((uint)below << 16);
        // The code above the largest finite bf16 is Inf; for rounding it acts as the value 2^128.
        double vAbove = above == 0x7F80 ? Math.Pow(2, 128) : BitConverter.UInt32BitsToSingle((uint)above << 16);
        double dBelow = a - vBelow, dAbove = vAbove - a;
        ushort chosen = dBelow < dAbove ? below : dAbove < dBelow ? above : (below % 2 == 0 ? below : above);
        return (ushort)(sign | chosen);
    }

    [Fact]
    public void Every_bf16_code_round_trips_through_float()
    {
        for (int code = 0; code < 65536; code++)
        {
            float f = BFloat16.ToFloat((ushort)code);
            Assert.Equal(BitConverter.SingleToUInt32Bits(f), (uint)code << 16);
            ushort back = BFloat16.FromFloat(f);
            bool isNaN = (code & 0x7FFF) > 0x7F80;
            if (isNaN)
            {
                Assert.True(BFloat16.FromBits(back).IsNaN);
                Assert.Equal(code & 0x8000, back & 0x8000);
                Assert.Equal(0x40, back & 0x40); // quiet
            }
            else Assert.Equal(code, back);
        }
    }

    [Fact]
    public void Float_to_bf16_is_the_nearest_value_ties_to_even_over_millions_of_samples()
    {
        var samples = NumericSamples.Floats(3_000_000, 11, -140, 127);
        // Exact ties: low half exactly 0x8000 (both odd and even kept halves), incl. subnormals and the overflow tie.
        var rng = new Random(12);
        for (int i = 3; i < samples.Length; i += 8)
            samples[i] = BitConverter.UInt32BitsToSingle(((uint)rng.Next() & 0xFFFF0000u) | 0x8000u);
        samples[5] = BitConverter.UInt32BitsToSingle(0x7F7F8000); // halfway between max bf16 and 2^128 → Inf
        samples[13] = BitConverter.UInt32BitsToSingle(0x00008000); // tie in the subnormals
        int failures = 0;
        Parallel.For(0, samples.Length, i =>
        {
            float x = samples[i];
            ushort got = BFloat16.FromFloat(x);
            bool ok = float.IsNaN(x) ? BFloat16.FromBits(got).IsNaN : got == NearestBf16(x);
            if (!ok) Interlocked.Increment(ref failures);
        });
        Assert.Equal(0, failures);
        Assert.Equal(0x7F80, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x7F7F8000)));
        Assert.Equal(0x7F7F, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x7F7F7FFF)));
        Assert.Equal(0x8000, BFloat16.FromFloat(-0f));
        Assert.Equal(0x3F80, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F808000))); // tie, even stays
        Assert.Equal(0x3F82, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F818000))); // tie, odd goes up
    }

    [Fact]
    public void A_signalling_nan_whose_payload_sits_in_the_dropped_half_stays_nan()
    {
        float snan = BitConverter.UInt32BitsToSingle(0x7F800001);
        Assert.True(float.IsNaN(snan));
        Assert.True(BFloat16.FromBits(BFloat16.FromFloat(snan)).IsNaN);
        Span<ushort> dst = stackalloc ushort[40];
        var src = Enumerable.Repeat(snan, 40).ToArray();
        BFloat16.FromFloat(src, dst);
        foreach (var b in dst) Assert.True(BFloat16.FromBits(b).IsNaN);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(17)]
    [InlineData(33)]
    [InlineData(100_003)]
    public void Vectorised_conversions_equal_the_scalar_ones(int length)
    {
        var src = NumericSamples.Floats(length, 21 + length, -140, 127);
        var bf = new ushort[length];
        BFloat16.FromFloat(src, bf);
        for (int i = 0; i < length; i++) Assert.Equal(BFloat16.FromFloat(src[i]), bf[i]);

        var back = new float[length];
        BFloat16.ToFloat(bf, back);
        for (int i = 0; i < length; i++)
            Assert.Equal(BitConverter.SingleToUInt32Bits(BFloat16.ToFloat(bf[i])), BitConverter.SingleToUInt32Bits(back[i]));
    }

    [Fact]
    public void Explicit_conversions_and_round_agree()
    {
        var b = (BFloat16)1.00390625f; // 1 + 2^-8: tie between 1 and 1 + 2^-7, even → 1
        Assert.Equal(1f, (float)b);
        Assert.Equal(1.0078125f, BFloat16.Round(1.005f));
        Assert.Equal(0x3F80, b.Bits);
    }
}
