namespace Nibble.Quantization.Awq;

/// <summary>
/// Calibration inputs of one decoder layer's quantized linears after AWQ smoothing (included tokens only, evenly
/// strided down to a cap): what the clip search (<see cref="ClipSearch"/>) judges each weight on. Linears that read the
/// same input (q/k/v; a gated MLP's gate/up) share one <see cref="LinearInput"/>, so its moments are computed once.
/// </summary>
public sealed class LayerInputs
{
    readonly Dictionary<string, LinearInput> _inputs = new(StringComparer.Ordinal);

    public void Add(LinearInput input, params string[] linearNames)
    {
        foreach (string name in linearNames) _inputs[name] = input;
    }

    public LinearInput? For(string linearName) => _inputs.GetValueOrDefault(linearName);

    public int Count => _inputs.Count;
}

/// <summary>Rows [Rows, K] of one linear input (row-major floats).</summary>
public sealed class LinearInput(float[] x, int rows, int k)
{
    public float[] X { get; } = x;
    public int Rows { get; } = rows;
    public int K { get; } = k;

    /// <summary>Moments computed at most once per numerics (cached: q/k/v or gate/up share them).</summary>
    internal readonly Dictionary<(int GroupSize, bool Fp8), GroupMoments> Moments = [];

    public GroupMoments MomentsFor(int groupSize, bool fp8)
    {
        lock (Moments)
        {
            if (!Moments.TryGetValue((groupSize, fp8), out var m)) Moments[(groupSize, fp8)] = m = GroupMoments.Compute(X, Rows, K, groupSize, fp8);
            return m;
        }
    }

    /// <summary>At most <paramref name="maxRows"/> of <paramref name="rows"/> rows of x, evenly strided, each divided per column by <paramref name="divideBy"/> when given.</summary>
    public static LinearInput Take(ReadOnlySpan<float> x, int rows, int k, int maxRows, float[]? divideBy = null)
    {
        int take = Math.Min(rows, maxRows);
        var result = new float[(long)take * k];
        for (int i = 0; i < take; i++)
        {
            int src = (int)((long)i * rows / take);
            var dst = result.AsSpan(i * k, k);
            x.Slice(src * k, k).CopyTo(dst);
            if (divideBy is not null)
                for (int j = 0; j < k; j++) dst[j] /= divideBy[j];
        }
        return new LinearInput(result, take, k);
    }
}
