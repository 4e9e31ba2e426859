using Nibble.Numerics;

namespace Nibble.Quantization;

/// <summary>
/// Hands an in-memory <see cref="QuantizationResult"/> (AWQ-smoothed and quantized) to
/// <see cref="CompressedTensorsCheckpoint.Write"/>: each Linear's int4 weight and bf16 scales as computed, and the
/// tensors AWQ changed but leaves unquantized (RMSNorm weights divided by s, rescaled routers, biases divided by s)
/// as bf16 replacements. The checkpoint therefore holds exactly the model that was evaluated in memory.
/// </summary>
public sealed class QuantizationResultWriter(QuantizationResult result, string method = "awq") : ILinearQuantizer
{
    readonly Dictionary<string, QuantizedLinear> _linears = result.Linears.ToDictionary(l => l.Name + ".weight");
    readonly Dictionary<string, float[]> _replacements = BuildReplacements(result);

    public string Method => method;

    public QuantizedLinearWeights Quantize(string weightName, ReadOnlySpan<float> weightNK, int n, int k, int groupSize)
    {
        if (!_linears.TryGetValue(weightName, out var q))
            throw new NibbleException($"'{weightName}' was not quantized in memory; the model directory differs from the one that was calibrated.");
        if (q.Weight.N != n || q.Weight.K != k || q.Weight.GroupSize != groupSize)
            throw new NibbleException($"'{weightName}' was quantized as [{q.Weight.N}, {q.Weight.K}] group {q.Weight.GroupSize}, but the writer asks for [{n}, {k}] group {groupSize}; use the same --group-size.");
        return q.Weight;
    }

    public ushort[]? ReplaceUnquantized(string tensorName)
    {
        if (!_replacements.TryGetValue(tensorName, out var values)) return null;
        var bits = new ushort[values.Length];
        BFloat16.FromFloat(values, bits);
        return bits;
    }

    static Dictionary<string, float[]> BuildReplacements(QuantizationResult result)
    {
        var map = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var (name, values) in result.Norms) map[name] = values;
        foreach (var (name, (weight, bias)) in result.Bf16Linears)
        {
            map[name + ".weight"] = weight;
            if (bias is not null) map[name + ".bias"] = bias;
        }
        foreach (var l in result.Linears)
            if (l.Bias is not null) map[l.Name + ".bias"] = l.Bias;
        return map;
    }
}
