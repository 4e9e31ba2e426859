using Nibble.Evaluation;

namespace Nibble.Tests.Quantization;

public class SignTestTests
{
    /// <summary>Binomial(n, 1/2) tail by direct summation of exact binomial coefficients (BigInteger), the reference.</summary>
    static double Reference(int plus, int minus)
    {
        int n = plus + minus, low = Math.Min(plus, minus);
        System.Numerics.BigInteger c = 1, sum = 0;
        for (int i = 0; i <= low; i++)
        {
            if (i > 0) c = c * (n - i + 1) / i;
            sum += c;
        }
        return Math.Min(1, 2 * (double)sum / Math.Pow(2, n));
    }

    [Theory]
    [InlineData(8, 15)]
    [InlineData(7, 8)]
    [InlineData(0, 6)]
    [InlineData(30, 3)]
    [InlineData(120, 150)]
    public void The_two_sided_p_value_matches_the_exact_binomial_tail(int plus, int minus)
    {
        Assert.Equal(Reference(plus, minus), SignTest.TwoSided(plus, minus), 1e-9);
        Assert.Equal(SignTest.TwoSided(plus, minus), SignTest.TwoSided(minus, plus), 12);
    }

    [Fact]
    public void Known_values_and_edges()
    {
        Assert.Equal(1.0, SignTest.TwoSided(0, 0));
        Assert.Equal(1.0, SignTest.TwoSided(5, 5));
        Assert.Equal(2.0 / 64, SignTest.TwoSided(0, 6), 12);          // 2 · (1/2)^6
        Assert.Equal(0.2100, SignTest.TwoSided(8, 15), 3);             // quality.md's moe 512-trace flips
        Assert.Throws<ArgumentOutOfRangeException>(() => SignTest.TwoSided(-1, 3));
    }
}
