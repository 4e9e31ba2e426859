using Nibble.Numerics;
using Nibble.Backend;
using Nibble.Models;

namespace Nibble.Quantization.Awq;

/// <summary>Builds the layer a candidate scale s turns a balance layer into, as the search evaluates it.</summary>
internal static class AwqCandidates
{
    /// <summary>W · diag(s): every input column k multiplied by s[k].</summary>
    public static float[] ScaleColumns(float[] w, int n, int k, ReadOnlySpan<float> s)
    {
        var r = new float[w.Length];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++) r[i * k + j] = w[i * k + j] * s[j];
        return r;
    }

    /// <summary>
    /// W4A16 (llm-compressor): the layer x · (Q(W·s) / s)ᵀ. W4A8-aware: the deployed layer exactly — W4A8 numerics of
    /// Q(W·s) applied to x / s (the smoothed input, which is what gets FP8-quantized per token after folding).
    /// </summary>
    public static ILinear Build(IBackend backend, float[] w, int n, int k, float[]? bias, float[] s, AwqOptions options)
    {
        var scaled = ScaleColumns(w, n, k, s);
        var q = RtnQuantizer.QuantizeWeight("AWQ candidate", scaled, n, k, options.GroupSizeFor(k));
        // W4A8-aware with grid rounding: the candidate is judged with the codes it would be deployed with.
        if (options.SearchScheme == QuantizationScheme.W4A8 && options.SearchRounding == WeightRounding.Grid)
            q = W4A8GridRounding.Round(scaled, q, options.SearchScales);
        if (options.SearchScheme == QuantizationScheme.W4A8)
            return new ScaledInputLinear(backend, new W4A8Linear(backend, q, options.SearchScales, bias), s);
        var deq = q.Dequantize();
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++) deq[i * k + j] /= s[j];
        return DenseLinear.FromFloat(backend, deq, n, k, bias);
    }
}

/// <summary>inner(x / s): a layer whose input is divided per channel by the smoothing scale first.</summary>
internal sealed class ScaledInputLinear(IBackend backend, ILinear inner, float[] scales) : ILinear
{
    readonly float[] _inverse = scales.Select(v => 1f / v).ToArray();

    public int InFeatures => inner.InFeatures;
    public int OutFeatures => inner.OutFeatures;

    public void Forward(Tensor input, Tensor output)
    {
        var x = input.ToArray();
        int k = InFeatures;
        for (int i = 0; i < x.Length; i++) x[i] *= _inverse[i % k];
        inner.Forward(backend.FromHost(x, input.Rows, k), output);
    }
}
