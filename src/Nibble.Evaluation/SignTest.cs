namespace Nibble.Evaluation;

/// <summary>
/// The exact two-sided sign test for paired outcomes: under "no difference" each discordant pair (right in one row,
/// wrong in the other) is a fair coin, so the count of +flips among n = plus + minus is Binomial(n, 1/2).
/// </summary>
public static class SignTest
{
    /// <summary>p = min(1, 2·P[X ≤ min(plus, minus)]), X ~ Binomial(plus + minus, 1/2); 1 when there are no discordant pairs.</summary>
    public static double TwoSided(int plus, int minus)
    {
        if (plus < 0 || minus < 0) throw new ArgumentOutOfRangeException(plus < 0 ? nameof(plus) : nameof(minus), "Flip counts cannot be negative.");
        int n = plus + minus, low = Math.Min(plus, minus);
        if (n == 0) return 1;
        // Σ_{i ≤ low} C(n, i) / 2^n in log space (n can be in the hundreds).
        double tail = 0, logC = 0;
        for (int i = 0; i <= low; i++)
        {
            if (i > 0) logC += Math.Log(n - i + 1) - Math.Log(i);
            tail += Math.Exp(logC - n * Math.Log(2));
        }
        return Math.Min(1, 2 * tail);
    }
}
