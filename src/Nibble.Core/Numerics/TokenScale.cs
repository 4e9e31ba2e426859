namespace Nibble.Numerics;

/// <summary>How a scale is applied before the FP8 cast: x / s, or x · (1/s).</summary>
public enum ScaleApplication
{
    /// <summary>x / s: vLLM's CUDA <c>dynamic_per_token_scaled_fp8_quant</c> ("we don't use inverted scales so we can
    /// match FBGemm") and Nibble's ActivationQuantFp8 kernel.</summary>
    Divide,
    /// <summary>x · (1/s): vLLM's <c>QuantFP8.forward_native</c> (torch path) and the scale recovery of spec §3.</summary>
    MultiplyByReciprocal,
}

/// <summary>
/// Dynamic per-token FP8 activation quantization (spec §2.2, architecture "numerics contract"):
/// s_tok[m] = max(max_k |x[m,k]| / 448, 1/(448·512)) in FP32, x8[m,k] = e4m3(clamp(x[m,k] / s_tok[m], −448, 448)).
/// The default divides (the CUDA path vLLM runs on H100 and our kernel); both ways differ at most in the last float
/// ulp of the quotient, which changes an FP8 code only when it sits on a rounding boundary.
/// The clamp makes the satfinite and NaN-producing casts identical; NaN inputs stay NaN.
/// </summary>
public static class TokenScale
{
    /// <summary>1/(448·512): the floor that keeps an all-zero row from giving a zero (or denormal) scale.</summary>
    public const float MinScale = 1f / (448f * 512f);

    /// <summary>s_tok of one row.</summary>
    public static float Compute(ReadOnlySpan<float> row)
    {
        float absMax = 0;
        foreach (float v in row) absMax = MathF.Max(absMax, MathF.Abs(v));
        return MathF.Max(absMax / Fp8E4M3.MaxFinite, MinScale);
    }

    /// <summary>Quantizes one row to e4m3 codes; returns its scale.</summary>
    public static float QuantizeRow(ReadOnlySpan<float> row, Span<byte> x8, ScaleApplication application = ScaleApplication.Divide)
    {
        if (x8.Length < row.Length) throw new ArgumentException("Destination is shorter than the row.", nameof(x8));
        float s = Compute(row);
        float inverse = 1f / s;
        for (int i = 0; i < row.Length; i++)
        {
            float scaled = application == ScaleApplication.Divide ? row[i] / s : row[i] * inverse;
            x8[i] = Fp8E4M3.EncodeSatFinite(Math.Clamp(scaled, -Fp8E4M3.MaxFinite, Fp8E4M3.MaxFinite));
        }
        return s;
    }

    /// <summary>Quantizes x [m, k] (row-major) to e4m3 codes x8 [m, k] and FP32 scales [m]; rows in parallel.</summary>
    public static void Quantize(ReadOnlySpan<float> x, int m, int k, Span<byte> x8, Span<float> scales,
        ScaleApplication application = ScaleApplication.Divide)
    {
        if (x.Length != (long)m * k) throw new ArgumentException($"Expected {m}·{k} values, got {x.Length}.", nameof(x));
        if (x8.Length < x.Length || scales.Length < m) throw new ArgumentException("Destination buffers are too short.");
        unsafe
        {
            fixed (float* px = x)
            fixed (byte* p8 = x8)
            fixed (float* ps = scales)
            {
                float* xs = px; byte* xq = p8; float* ss = ps;
                Parallel.For(0, m, new ParallelOptions { MaxDegreeOfParallelism = (long)m * k >= 1 << 16 ? -1 : 1 }, r =>
                {
                    ss[r] = QuantizeRow(new ReadOnlySpan<float>(xs + (long)r * k, k), new Span<byte>(xq + (long)r * k, k), application);
                });
            }
        }
    }

    /// <summary>Convenience overload that allocates the outputs.</summary>
    public static (byte[] X8, float[] Scales) Quantize(ReadOnlySpan<float> x, int m, int k, ScaleApplication application = ScaleApplication.Divide)
    {
        var x8 = new byte[x.Length];
        var scales = new float[m];
        Quantize(x, m, k, x8, scales, application);
        return (x8, scales);
    }
}
