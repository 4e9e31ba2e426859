using Nibble.Numerics;
using Nibble.Models;
using Nibble.Quantization.Awq;

namespace Nibble.Quantization;

/// <summary>How to quantize a model.</summary>
public sealed record QuantizeOptions
{
    public QuantizationScheme Scheme { get; init; } = QuantizationScheme.W4A8;
    /// <summary>W4A8 scale recovery mode of the in-memory layers (the checkpoint always stores bf16 scales).</summary>
    public ScaleRecoveryMode Scales { get; init; } = ScaleRecoveryMode.Recovered;
    public int GroupSize { get; init; } = 128;
    /// <summary>One scale per row (group = K) instead of groups of <see cref="GroupSize"/>.</summary>
    public bool ChannelWise { get; init; }
    /// <summary>AWQ settings; null = plain RTN.</summary>
    public AwqOptions? Awq { get; init; }
    /// <summary>How q is chosen after the scales: null = <see cref="WeightRounding.Grid"/> for W4A8 (on the grid of
    /// <see cref="Scales"/>), <see cref="WeightRounding.Rtn"/> for W4A16 (which ignores this setting).</summary>
    public WeightRounding? Rounding { get; init; }
    /// <summary>Activation-aware clipping of the int4 scales after AWQ (<see cref="ClipSearch"/>), judged with this scheme's
    /// numerics; null = none (llm-compressor's AWQ has none). Needs AWQ calibration.</summary>
    public ClipSearchOptions? Clip { get; init; }

    public WeightRounding EffectiveRounding => Scheme == QuantizationScheme.W4A8 ? Rounding ?? WeightRounding.Grid : WeightRounding.Rtn;

    public int GroupSizeFor(int k) => ChannelWise ? k : GroupSize;
}

/// <summary>One quantized linear: the int4 weight with bf16 group scales (what the checkpoint stores), and its bias (kept in bf16 by the checkpoint).</summary>
public sealed record QuantizedLinear(string Name, QuantizedLinearWeights Weight, float[]? Bias)
{
    /// <summary>RTN codes (same scales) when <see cref="Weight"/> is grid-rounded for W4A8; null when Weight is RTN.</summary>
    public QuantizedLinearWeights? RtnWeight { get; init; }
    /// <summary>The scale recovery whose grid <see cref="Weight"/> was rounded to (when <see cref="RtnWeight"/> is set).</summary>
    public ScaleRecoveryMode GridScales { get; init; }
    /// <summary>With the clip search: <see cref="Weight"/> without clipping (same codes rule, unclipped RTN scales); <see cref="RtnWeight"/> is always unclipped.</summary>
    public QuantizedLinearWeights? UnclippedWeight { get; init; }
    /// <summary>RTN codes with scales clipped under the W4A16 objective (<see cref="ClipSearchOptions.AlsoW4A16"/>), for comparison rows.</summary>
    public QuantizedLinearWeights? ClippedRtnWeight { get; init; }

    /// <summary>The codes to run as <paramref name="scheme"/>: grid-rounded ones only for W4A8 on the grid they were chosen for, else RTN's;
    /// clipped scales where they exist unless <paramref name="clipped"/> is false (RTN codes are clipped only by the W4A16 objective).</summary>
    public QuantizedLinearWeights For(QuantizationScheme scheme, ScaleRecoveryMode scales, WeightRounding rounding = WeightRounding.Grid, bool clipped = true)
    {
        bool gridCodes = RtnWeight is null || scheme == QuantizationScheme.W4A8 && scales == GridScales && rounding == WeightRounding.Grid;
        if (gridCodes) return clipped || UnclippedWeight is null ? Weight : UnclippedWeight;
        return clipped && ClippedRtnWeight is not null ? ClippedRtnWeight : RtnWeight!;
    }
}

/// <summary>
/// Everything that differs from the bf16 checkpoint after quantization: the quantized linears, every RMSNorm weight
/// (AWQ divides some by its scales; values are bf16-exact) and the linears that stay bf16 but were rescaled (MoE
/// routers, shared-expert gates). Applying it to a freshly loaded bf16 model reproduces the quantized model.
/// </summary>
public sealed record QuantizationResult(
    IReadOnlyList<QuantizedLinear> Linears,
    IReadOnlyDictionary<string, float[]> Norms,
    IReadOnlyDictionary<string, (float[] Weight, float[]? Bias)> Bf16Linears,
    IReadOnlyList<AwqMappingResult> Awq)
{
    /// <summary>Replaces <paramref name="model"/>'s layers and norms (a bf16 load of the same checkpoint) with this result, as W4A16 or W4A8
    /// (grid-rounded codes where they exist and fit <paramref name="scheme"/> / <paramref name="scales"/>, unless <paramref name="rounding"/> is RTN; see <see cref="QuantizedLinear.For"/>).</summary>
    public void ApplyTo(CausalLM model, QuantizationScheme scheme, ScaleRecoveryMode scales = ScaleRecoveryMode.Recovered, WeightRounding rounding = WeightRounding.Grid, bool clipped = true)
    {
        var byName = Linears.ToDictionary(l => l.Name);
        foreach (var slot in ModelLinears.Enumerate(model))
        {
            if (byName.TryGetValue(slot.Name, out var q)) slot.Set(ModelQuantizer.CreateLayer(model, q.For(scheme, scales, rounding, clipped), q.Bias, scheme, scales));
            else if (Bf16Linears.TryGetValue(slot.Name, out var d))
                slot.Set(DenseLinear.FromFloat(model.Backend, d.Weight, slot.Get().OutFeatures, slot.Get().InFeatures, d.Bias));
        }
        foreach (var (name, norm) in ModelNorms.Enumerate(model))
            if (Norms.TryGetValue(name, out var values))
            {
                values.CopyTo(norm.Values, 0);
                norm.Refresh();
            }
    }
}

/// <summary>
/// Quantizes a loaded bf16 model in place: optional AWQ smoothing layer by layer, then RTN int4 (symmetric, group 128
/// or channel-wise; for W4A8 the codes are then re-chosen on the W4A8 grid, <see cref="W4A8GridRounding"/>) of every linear except lm_head, embeddings and MoE routers, each replaced by a
/// <see cref="W4A16Linear"/> or <see cref="W4A8Linear"/> so the model can be evaluated right away. Each layer is
/// quantized as soon as AWQ has smoothed it, so float copies of at most one layer's weights exist at a time.
/// </summary>
public static class ModelQuantizer
{
    public static QuantizationResult Quantize(CausalLM model, QuantizeOptions options, IReadOnlyList<CalibrationSequence>? calibration = null,
        IProgress<AwqProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var slots = ModelLinears.Enumerate(model).Where(s => s.Quantize).ToList();
        foreach (var slot in slots)
        {
            int k = slot.Get().InFeatures;
            if (k % options.GroupSizeFor(k) != 0)
                throw new NibbleException($"'{slot.Name}' has K = {k} input features, not a multiple of the group size {options.GroupSizeFor(k)}; use --channel-wise or a model whose sizes are multiples of 128.");
        }
        if (options.Clip is { } clipOptions)
        {
            clipOptions.Ratios(); // validates before calibration starts
            if (options.Awq is null) throw new NibbleException("The clip search needs calibration inputs; use --method awq with --clip-search.");
        }
        var done = new List<QuantizedLinear>();
        var numerics = new ClipNumerics(options.Scheme, options.Scales, options.EffectiveRounding);
        void QuantizeLayer(int index, LayerInputs? inputs)
        {
            string prefix = $"model.layers.{index}.";
            foreach (var slot in slots.Where(s => s.Name.StartsWith(prefix, StringComparison.Ordinal)))
            {
                var layer = slot.Get();
                int n = layer.OutFeatures, k = layer.InFeatures, gs = options.GroupSizeFor(k);
                var (w, bias) = ModelLinears.Dense(layer, slot.Name);
                if (bias is not null) bias = bias.Select(BFloat16.Round).ToArray();
                var q = RtnQuantizer.QuantizeWeight(slot.Name, w, n, k, gs);
                var rtn = q;
                bool grid = options.EffectiveRounding == WeightRounding.Grid;
                if (grid) q = W4A8GridRounding.Round(w, rtn, options.Scales);
                QuantizedLinearWeights? unclipped = null, clippedRtn = null;
                if (options.Clip is { } clip && inputs?.For(slot.Name) is { } input && !(clip.SkipQueryKey && IsQueryOrKey(slot.Name)))
                {
                    unclipped = q;
                    q = ClipSearch.Quantize(w, n, k, gs, ClipSearch.Search(w, n, k, input.MomentsFor(gs, numerics.Scheme == QuantizationScheme.W4A8), numerics, clip).ScalesBf16, numerics);
                    if (clip.AlsoW4A16 && numerics.Scheme == QuantizationScheme.W4A8)
                        clippedRtn = ClipSearch.Quantize(w, n, k, gs, ClipSearch.Search(w, n, k, input.MomentsFor(gs, false), ClipNumerics.W4A16, clip).ScalesBf16, ClipNumerics.W4A16);
                }
                done.Add(new QuantizedLinear(slot.Name, q, bias)
                {
                    RtnWeight = grid ? rtn : null,
                    GridScales = options.Scales,
                    UnclippedWeight = unclipped,
                    ClippedRtnWeight = clippedRtn,
                });
                slot.Set(CreateLayer(model, q, bias, options.Scheme, options.Scales));
            }
        }

        IReadOnlyList<AwqMappingResult> awq = [];
        if (options.Awq is { } awqOptions)
        {
            if (calibration is null) throw new NibbleException("AWQ needs calibration data; pass --calib <file> or use --method rtn.");
            awq = AwqCalibrator.Run(model, calibration, awqOptions with
                {
                    GroupSize = options.GroupSize,
                    ChannelWise = options.ChannelWise,
                    CaptureInputRows = options.Clip?.MaxTokens ?? 0,
                },
                QuantizeLayer, progress, cancellationToken);
        }
        else
            for (int i = 0; i < model.Layers.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                QuantizeLayer(i, null);
                progress?.Report(new AwqProgress("RTN", i + 1, model.Layers.Count));
            }
        var norms = ModelNorms.Enumerate(model).ToDictionary(p => p.Name, p => (float[])p.Norm.Values.Clone());
        var bf16 = ModelLinears.Enumerate(model).Where(s => !s.Quantize && s.Name != "lm_head" && s.Get() is DenseLinear)
            .ToDictionary(s => s.Name, s => ModelLinears.Dense(s.Get(), s.Name));
        return new QuantizationResult(done, norms, bf16, awq);
    }

    /// <summary>llm-awq's auto_clip leaves the query/key projections alone (their error acts through the attention softmax).</summary>
    static bool IsQueryOrKey(string name) => name.EndsWith(".q_proj", StringComparison.Ordinal) || name.EndsWith(".k_proj", StringComparison.Ordinal);

    public static ILinear CreateLayer(CausalLM model, QuantizedLinearWeights weight, float[]? bias, QuantizationScheme scheme, ScaleRecoveryMode scales) =>
        scheme == QuantizationScheme.W4A8
            ? new W4A8Linear(model.Backend, weight, scales, bias)
            : new W4A16Linear(model.Backend, weight, bias);
}
