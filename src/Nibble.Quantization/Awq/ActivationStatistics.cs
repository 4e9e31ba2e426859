using Nibble.Backend;
using Nibble.Models;

namespace Nibble.Quantization.Awq;

/// <summary>
/// Per-input-channel mean |x| over the included calibration tokens of chosen linear layers (AWQ's x_mean,
/// llm-compressor's activation hook, w4a8-spec.md §4.3 step 1), optionally keeping the included input rows
/// themselves for searches whose parent is that linear. A token is included when the current
/// <see cref="Mask"/> is null or true at the token the row belongs to: the observer gets each row's token index,
/// so for MoE experts a masked token simply contributes nothing to any expert it was routed to.
/// </summary>
public sealed class ActivationStatistics : IActivationObserver
{
    sealed class Entry(int width, bool capture)
    {
        public readonly double[] AbsSum = new double[width];
        public long Count;
        public readonly List<float[]>? Rows = capture ? [] : null;
    }

    readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <summary>Tracks <paramref name="linearName"/>; with <paramref name="captureRows"/> also keeps its included input rows.</summary>
    public void Track(string linearName, int inFeatures, bool captureRows = false) =>
        _entries[linearName] = new Entry(inFeatures, captureRows);

    /// <summary>The mask of the sequence now running (indexed by token within the forward call), or null for all tokens.</summary>
    public bool[]? Mask { get; set; }

    public void Observe(string linearName, Tensor input, ReadOnlySpan<int> tokenIndices)
    {
        if (!_entries.TryGetValue(linearName, out var e)) return;
        var x = (input as HostTensor ?? throw new ArgumentException("Calibration statistics need host tensors (CPU backend).")).Floats;
        int width = e.AbsSum.Length;
        for (int r = 0; r < input.Rows; r++)
        {
            if (Mask is { } m && !m[tokenIndices[r]]) continue;
            var row = x.Slice(r * width, width);
            for (int i = 0; i < width; i++) e.AbsSum[i] += MathF.Abs(row[i]);
            e.Count++;
            e.Rows?.Add(row.ToArray());
        }
    }

    public long Count(string linearName) => _entries[linearName].Count;

    /// <summary>x_mean: Σ|x| / count per input channel (zeros when no token was included).</summary>
    public float[] MeanAbs(string linearName)
    {
        var e = _entries[linearName];
        var mean = new float[e.AbsSum.Length];
        if (e.Count == 0) return mean;
        for (int i = 0; i < mean.Length; i++) mean[i] = (float)(e.AbsSum[i] / e.Count);
        return mean;
    }

    /// <summary>The included input rows, concatenated [count, inFeatures].</summary>
    public float[] CapturedRows(string linearName)
    {
        var e = _entries[linearName];
        if (e.Rows is null) throw new InvalidOperationException($"'{linearName}' was tracked without captureRows.");
        int width = e.AbsSum.Length;
        var all = new float[(long)e.Rows.Count * width];
        for (int r = 0; r < e.Rows.Count; r++) e.Rows[r].CopyTo(all, (long)r * width);
        return all;
    }
}
