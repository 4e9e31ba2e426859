namespace Nibble.Tests.Numerics;

/// <summary>Random float bit patterns that hit the interesting parts of a target format densely.</summary>
static class NumericSamples
{
    /// <summary>
    /// Samples whose exponent lies in [minExp, maxExp] (random mantissa and sign), fully random patterns,
    /// and the special values; callers add their own exact ties.
    /// </summary>
    public static float[] Floats(int count, int seed, int minExp, int maxExp)
    {
        var rng = new Random(seed);
        var values = new float[count];
        float[] specials = [0f, -0f, float.NaN, -float.NaN, float.PositiveInfinity, float.NegativeInfinity,
            float.MaxValue, -float.MaxValue, float.Epsilon, -float.Epsilon, BitConverter.UInt32BitsToSingle(0x007FFFFF),
            BitConverter.UInt32BitsToSingle(0x7F800001), BitConverter.UInt32BitsToSingle(0xFFC00001)];
        for (int i = 0; i < count; i++)
        {
            uint bits = (uint)rng.NextInt64(0, 1L << 32);
            values[i] = (i % 4) switch
            {
                0 => BitConverter.UInt32BitsToSingle(bits),
                1 or 2 => BitConverter.UInt32BitsToSingle((bits & 0x807FFFFF) | ((uint)(rng.Next(minExp, maxExp + 1) + 127) << 23)),
                _ => i / 4 < specials.Length ? specials[i / 4] : BitConverter.UInt32BitsToSingle((bits & 0x807FFFFF) | ((uint)(rng.Next(minExp, maxExp + 1) + 127) << 23)) ,
            };
        }
        return values;
    }
}
