using Nibble.Numerics;

namespace Nibble.Tests.Numerics;

public class Fp8E4M3Tests
{
    /// <summary>Magnitudes of codes 0x00..0x7F computed from the definition, with 0x7F standing for 480
    /// (the value the pattern would have if the format went on) so "rounds past 448" is visible.</summary>
    static readonly double[] Magnitudes = Enumerable.Range(0, 128).Select(c =>
    {
        int e = c >> 3, m = c & 7;
        return e == 0 ? m / 512.0 : (1 + m / 8.0) * Math.Pow(2, e - 7);
    }).ToArray();

    /// <summary>Brute force: the nearest of all 128 magnitudes by exact double distance, ties to the even code.</summary>
    static int NearestMagnitudeCode(double a)
    {
        int best = 0;
        double bestDistance = double.PositiveInfinity;
        for (int c = 0; c < 128; c++)
        {
            double d = Math.Abs(a - Magnitudes[c]);
            if (d < bestDistance || (d == bestDistance && c % 2 == 0)) { best = c; bestDistance = d; }
        }
        return best;
    }

    static byte ReferenceEncode(float x, bool satFinite)
    {
        if (float.IsNaN(x)) return satFinite ? (byte)0x7F : (byte)(0x7F | (BitConverter.SingleToUInt32Bits(x) >> 24 & 0x80));
        byte sign = (byte)(BitConverter.SingleToUInt32Bits(x) >> 24 & 0x80);
        double a = Math.Abs((double)x);
        if (satFinite) a = Math.Min(a, 448);
        // Past 480 every value is nearest the 0x7F bucket (the double distances would tie for huge values).
        int code = a >= 480 ? 0x7F : NearestMagnitudeCode(a);
        return (byte)(sign | code);
    }

    [Fact]
    public void The_decode_table_matches_the_format_definition()
    {
        for (int code = 0; code < 256; code++)
        {
            float v = Fp8E4M3.Decode((byte)code);
            if ((code & 0x7F) == 0x7F) { Assert.True(float.IsNaN(v)); Assert.True(Fp8E4M3.IsNaN((byte)code)); continue; }
            double expected = Magnitudes[code & 0x7F] * ((code & 0x80) != 0 ? -1 : 1);
            Assert.Equal(expected, (double)v);
            Assert.Equal((code & 0x80) != 0, float.IsNegative(v));
        }
        Assert.Equal(448f, Fp8E4M3.Decode(0x7E));
        Assert.Equal(MathF.ScaleB(1, -6), Fp8E4M3.Decode(0x08));
        Assert.Equal(MathF.ScaleB(1, -9), Fp8E4M3.Decode(0x01));
    }

    [Fact]
    public void Every_finite_code_round_trips_through_both_encoders()
    {
        for (int code = 0; code < 256; code++)
        {
            if ((code & 0x7F) == 0x7F) continue;
            float v = Fp8E4M3.Decode((byte)code);
            Assert.Equal(code, Fp8E4M3.Encode(v));
            Assert.Equal(code, Fp8E4M3.EncodeSatFinite(v));
        }
    }

    static float[] Samples()
    {
        var samples = NumericSamples.Floats(2_000_000, 5, -13, 10);
        // Exact midpoints between adjacent codes (incl. 0|2^-9 at 2^-10 and 448|480 at 464), both signs.
        var rng = new Random(6);
        for (int i = 3; i < samples.Length; i += 16)
        {
            int c = rng.Next(0, 127);
            double mid = (Magnitudes[c] + Magnitudes[c + 1]) / 2;
            samples[i] = (float)(rng.Next(2) == 0 ? mid : -mid);
        }
        float[] boundary = [448f, 449f, 463.99997f, 464f, 464.00003f, 479f, 480f, 495.9f, 496f, 512f, 1e6f, -464f, -470f,
            MathF.ScaleB(1, -10), MathF.ScaleB(1, -10) * 1.0000001f, MathF.ScaleB(1, -11), 0.015625f, 0.0156249f];
        boundary.CopyTo(samples, 7);
        return samples;
    }

    [Fact]
    public void Encode_is_the_nearest_code_with_nan_past_448_over_millions_of_samples()
    {
        var samples = Samples();
        int failures = 0;
        Parallel.For(0, samples.Length, i =>
        {
            if (Fp8E4M3.Encode(samples[i]) != ReferenceEncode(samples[i], satFinite: false)) Interlocked.Increment(ref failures);
        });
        Assert.Equal(0, failures);
        Assert.Equal(0x7E, Fp8E4M3.Encode(464f));     // tie with the 480 pattern goes to the even code 448
        Assert.Equal(0x7F, Fp8E4M3.Encode(464.00003f));
        Assert.Equal(0xFF, Fp8E4M3.Encode(float.NegativeInfinity));
        Assert.Equal(0x80, Fp8E4M3.Encode(-MathF.ScaleB(1, -10))); // tie with zero → −0
        Assert.Equal(0x01, Fp8E4M3.Encode(MathF.ScaleB(1, -10) * 1.0000001f));
    }

    [Fact]
    public void EncodeSatFinite_is_the_nearest_code_clamped_to_448_over_millions_of_samples()
    {
        var samples = Samples();
        int failures = 0;
        Parallel.For(0, samples.Length, i =>
        {
            if (Fp8E4M3.EncodeSatFinite(samples[i]) != ReferenceEncode(samples[i], satFinite: true)) Interlocked.Increment(ref failures);
        });
        Assert.Equal(0, failures);
        Assert.Equal(0x7E, Fp8E4M3.EncodeSatFinite(1e30f));
        Assert.Equal(0xFE, Fp8E4M3.EncodeSatFinite(float.NegativeInfinity));
        Assert.Equal(0x7F, Fp8E4M3.EncodeSatFinite(float.NaN));
        Assert.Equal(0x80, Fp8E4M3.EncodeSatFinite(-0f));
        Assert.Equal(0x00, Fp8E4M3.EncodeSatFinite(0f));
    }

    [Fact]
    public void Span_conversions_equal_the_scalar_ones()
    {
        var src = NumericSamples.Floats(1001, 9, -13, 10);
        var a = new byte[src.Length];
        var b = new byte[src.Length];
        Fp8E4M3.Encode(src, a);
        Fp8E4M3.EncodeSatFinite(src, b);
        var back = new float[src.Length];
        Fp8E4M3.Decode(b, back);
        for (int i = 0; i < src.Length; i++)
        {
            Assert.Equal(Fp8E4M3.Encode(src[i]), a[i]);
            Assert.Equal(Fp8E4M3.EncodeSatFinite(src[i]), b[i]);
            Assert.Equal(Fp8E4M3.Decode(b[i]), back[i]);
        }
    }
}
