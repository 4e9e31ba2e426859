using Nibble.Numerics;
namespace Nibble.Quantization.Awq;

/// <summary>llm-compressor's <c>duo_scaling</c>: activation statistics only, activations and weights, or both grids.</summary>
public enum DuoScaling { Off, On, Both }

/// <summary>AWQ settings (w4a8-spec.md §4.1); the defaults are llm-compressor's.</summary>
public sealed record AwqOptions
{
    /// <summary>Input channels per int4 scale (128; the channel-wise scheme uses the layer's K).</summary>
    public int GroupSize { get; init; } = 128;
    /// <summary>True: one group spans a whole row (channel-wise), whatever K is.</summary>
    public bool ChannelWise { get; init; }
    public DuoScaling Duo { get; init; } = DuoScaling.On;
    /// <summary>Candidates per mapping (<c>n_grid</c>).</summary>
    public int GridPoints { get; init; } = 20;
    /// <summary>
    /// The numerics each candidate is evaluated with: W4A16 fake-quant (llm-compressor, which searches in 16-bit) or
    /// the exact W4A8 numerics (per-token FP8 activations of the smoothed input, FP8 group scales, channel scales).
    /// </summary>
    public QuantizationScheme SearchScheme { get; init; } = QuantizationScheme.W4A16;
    /// <summary>Scale mode of W4A8-aware candidates.</summary>
    public ScaleRecoveryMode SearchScales { get; init; } = ScaleRecoveryMode.Recovered;
    /// <summary>Codes of W4A8-aware candidates. RTN by default: judging candidates with grid-rounded codes did not help
    /// in the one measurement made (quality.md, "Grid-aware rounding": small 1.091× vs 1.087×, moe 1.094× vs 1.042×).</summary>
    public WeightRounding SearchRounding { get; init; } = WeightRounding.Rtn;
    /// <summary>Rows per chunk when a parent runs over many calibration tokens (bounds temporary memory).</summary>
    public int ChunkRows { get; init; } = 2048;
    /// <summary>When &gt; 0, each layer's smoothed linear inputs (included tokens, at most this many rows per input) are handed
    /// to the layer callback (<see cref="LayerInputs"/>), for the clip search. 0 = none (no extra memory).</summary>
    public int CaptureInputRows { get; init; }

    public int GroupSizeFor(int k) => ChannelWise ? k : GroupSize;
}

/// <summary>What AWQ chose for one mapping.</summary>
/// <param name="Candidate">Index in the grid (0 = identity when duo scaling is on).</param>
/// <param name="Loss">Block-output MSE of the chosen candidate over the included tokens.</param>
/// <param name="IdentityLoss">The same loss without smoothing (plain RTN), for comparison.</param>
public sealed record AwqMappingResult(string Name, int Candidate, double Alpha, bool Duo, double Loss, double IdentityLoss, long Tokens, string? Skipped = null);

/// <summary>Progress of an AWQ run: <paramref name="Done"/> of <paramref name="Total"/> candidate evaluations.</summary>
public sealed record AwqProgress(string Stage, int Done, int Total);
