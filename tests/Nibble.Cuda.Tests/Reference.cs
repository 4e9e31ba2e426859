using Nibble.Cuda.Kernels;

namespace Nibble.Cuda.Tests;

/// <summary>
/// Exact-product CPU references (double accumulation) for the GPU GEMMs, and random/adversarial checkpoint data.
/// Private to the tests until Nibble.Numerics' W4A8Reference/W4A16Reference are merged.
/// </summary>
static class Reference
{
    /// <summary>Logical (n, g) FP8 sigma and c' recovered by the CPU twin of the prep kernels.</summary>
    public static (byte[] Sigma, float[] ChannelScale, byte[] Tiled, byte[] SigmaTiled) Prep(int[] packed, ushort[] scales, int n, int k)
    {
        int groups = k / 128;
        var tiled = new byte[(long)n * k / 2];
        var sigmaTiled = new byte[n * groups];
        var c = new float[n];
        W4A8WeightPrep.Reference(packed, scales, n, k, tiled, sigmaTiled, c);
        var sigma = new byte[n * groups];
        for (int row = 0; row < n; row++)
            for (int g = 0; g < groups; g++)
                sigma[row * groups + g] = sigmaTiled[((((row >> 4) * groups + g) * 8) + (row & 7)) * 2 + ((row >> 3) & 1)];
        return (sigma, c, tiled, sigmaTiled);
    }

    public static int Q(int[] packed, int k, int row, int col) => ((packed[row * (k / 8) + col / 8] >> (4 * (col % 8))) & 0xF) - 8;

    /// <summary>Y = c'[n]·s[m]·Σ x8·e4m3(q·σ), exact products, double sums (not rounded to bf16).</summary>
    public static double[] W4A8(byte[] x8, float[] tokenScale, int[] packed, byte[] sigma, float[] channelScale, int m, int n, int k)
    {
        int groups = k / 128;
        var w = new float[(long)n * k];
        Parallel.For(0, n, row =>
        {
            for (int col = 0; col < k; col++)
            {
                float s = HostNumerics.DecodeE4M3(sigma[row * groups + col / 128]);
                w[(long)row * k + col] = HostNumerics.DecodeE4M3(HostNumerics.EncodeE4M3(Q(packed, k, row, col) * s));
            }
        });
        var x = x8.Select(HostNumerics.DecodeE4M3).ToArray();
        var y = new double[(long)m * n];
        Parallel.For(0, m, r =>
        {
            for (int c = 0; c < n; c++)
            {
                double acc = 0;
                for (int i = 0; i < k; i++) acc += (double)x[(long)r * k + i] * w[(long)c * k + i];
                y[(long)r * n + c] = channelScale[c] * (tokenScale[r] * acc);
            }
        });
        return y;
    }

    /// <summary>Y = Σ_k x·q·S (exact products, double sums).</summary>
    public static double[] W4A16(ushort[] x, int[] packed, ushort[] scales, int m, int n, int k)
    {
        int groups = k / 128;
        var w = new double[(long)n * k];
        Parallel.For(0, n, row =>
        {
            for (int col = 0; col < k; col++)
                w[(long)row * k + col] = Q(packed, k, row, col) * (double)HostNumerics.Bf16ToFloat(scales[row * groups + col / 128]);
        });
        var xf = x.Select(v => (double)HostNumerics.Bf16ToFloat(v)).ToArray();
        var y = new double[(long)m * n];
        Parallel.For(0, m, r =>
        {
            for (int c = 0; c < n; c++)
            {
                double acc = 0;
                for (int i = 0; i < k; i++) acc += xf[(long)r * k + i] * w[(long)c * k + i];
                y[(long)r * n + c] = acc;
            }
        });
        return y;
    }

    /// <summary>‖got − bf16(ref)‖ / ‖ref‖ over all elements; NaN (an unwritten, poisoned output) gives +∞.</summary>
    public static double RelativeError(ushort[] got, double[] reference)
    {
        double num = 0, den = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double g = HostNumerics.Bf16ToFloat(got[i]);
            if (!double.IsFinite(g)) return double.PositiveInfinity;
            double r = HostNumerics.Bf16ToFloat(HostNumerics.FloatToBf16((float)reference[i]));
            num += (g - r) * (g - r);
            den += reference[i] * reference[i];
        }
        return Math.Sqrt(num / Math.Max(den, 1e-300));
    }

    /// <summary>The three rows with the largest relative error, as "row:error" (diagnostics).</summary>
    public static string WorstRows(ushort[] got, double[] reference, int m, int n)
    {
        var rows = Enumerable.Range(0, m).Select(r =>
        {
            double num = 0, den = 0;
            for (int c = 0; c < n; c++)
            {
                double g = HostNumerics.Bf16ToFloat(got[(long)r * n + c]), e = reference[(long)r * n + c];
                num += (g - e) * (g - e); den += e * e;
            }
            return (r, err: den == 0 ? (num == 0 ? 0 : double.PositiveInfinity) : Math.Sqrt(num / den));
        }).OrderByDescending(t => t.err).Take(3);
        return string.Join(" ", rows.Select(t => $"{t.r}:{t.err:E1}"));
    }

    public static int[] RandomPacked(Random rng, int n, int k, int minus8Rows = 0)
    {
        var p = new int[n * (k / 8)];
        for (int i = 0; i < p.Length; i++) p[i] = rng.Next() ^ (rng.Next() << 16);
        for (int r = 0; r < Math.Min(minus8Rows, n); r++) // q = -8 (uint4b8 nibble 0) everywhere: the LUT's largest entry
            for (int w = 0; w < k / 8; w++) p[r * (k / 8) + w] = 0;
        return p;
    }

    /// <summary>Group scales like real int4 checkpoints (1e-3..2e-2), with adversarial rows: tiny and huge groups in one
    /// row (subnormal and flushed FP8 sigma), an all-tiny row (clamped channel scale), and a zero group.</summary>
    public static ushort[] RandomScales(Random rng, int n, int k, bool adversarial)
    {
        int groups = k / 128;
        var s = new ushort[n * groups];
        for (int i = 0; i < s.Length; i++) s[i] = HostNumerics.FloatToBf16((float)(1e-3 + rng.NextDouble() * 2e-2));
        if (adversarial && n >= 4)
        {
            for (int g = 0; g < groups; g++)
            {
                s[1 * groups + g] = HostNumerics.FloatToBf16(g % 2 == 0 ? 3.0f : (float)(1e-6 * (1 + g)));
                s[2 * groups + g] = HostNumerics.FloatToBf16(1e-12f);
            }
            s[3 * groups] = 0;
            s[3 * groups + groups - 1] = HostNumerics.FloatToBf16(40f);
        }
        return s;
    }

    /// <summary>bf16 activations with per-row magnitudes from 1e-3 to 1e2, and an all-zero row when there is room.</summary>
    public static ushort[] RandomActivations(Random rng, int m, int k)
    {
        var x = new ushort[(long)m * k];
        for (int r = 0; r < m; r++)
        {
            double mag = Math.Pow(10, -3 + 5 * rng.NextDouble());
            bool zero = m > 2 && r == m / 2;
            for (int c = 0; c < k; c++)
                x[(long)r * k + c] = zero ? (ushort)0 : HostNumerics.FloatToBf16((float)(mag * (rng.NextDouble() * 2 - 1) * (rng.Next(64) == 0 ? 8 : 1)));
        }
        return x;
    }
}
