using Nibble.Models;
using Nibble.Quantization.Awq;

namespace Nibble.Quantization;

/// <summary>How to quantize a model.</summary>
public sealed record QuantizeOptions
{
    public QuantScheme Scheme { get; init; } = QuantScheme.W4A8;
    /// <summary>W4A8 scale recovery mode of the in-memory layers (the checkpoint always stores bf16 scales).</summary>
    public ScaleMode Scales { get; init; } = ScaleMode.Recovered;
    public int GroupSize { get; init; } = 128;
    /// <summary>One scale per row (group = K) instead of groups of <see cref="GroupSize"/>.</summary>
    public bool ChannelWise { get; init; }
    /// <summary>AWQ settings; null = plain RTN.</summary>
    public AwqOptions? Awq { get; init; }

    public int GroupSizeFor(int k) => ChannelWise ? k : GroupSize;
}

/// <summary>One quantized linear: the int4 weight with bf16 group scales, and its bias (kept in bf16 by the checkpoint).</summary>
public sealed record QuantizedLinear(string Name, Int4GroupWeight Weight, float[]? Bias);

public sealed record QuantizationResult(IReadOnlyList<QuantizedLinear> Linears, IReadOnlyList<AwqMappingResult> Awq);

/// <summary>
/// Quantizes a loaded bf16 model in place: optional AWQ smoothing layer by layer, then RTN int4 (symmetric, group 128
/// or channel-wise) of every linear except lm_head, embeddings and MoE routers, each replaced by a
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
        var done = new List<QuantizedLinear>();
        void QuantizeLayer(int index)
        {
            string prefix = $"model.layers.{index}.";
            foreach (var slot in slots.Where(s => s.Name.StartsWith(prefix, StringComparison.Ordinal)))
            {
                var layer = slot.Get();
                var (w, bias) = ModelLinears.Dense(layer, slot.Name);
                if (bias is not null) bias = bias.Select(PendingNumerics.Bf16).ToArray();
                var q = Int4GroupWeight.Quantize(w, layer.OutFeatures, layer.InFeatures, options.GroupSizeFor(layer.InFeatures));
                done.Add(new QuantizedLinear(slot.Name, q, bias));
                slot.Set(CreateLayer(model, q, bias, options.Scheme, options.Scales));
            }
        }

        IReadOnlyList<AwqMappingResult> awq = [];
        if (options.Awq is { } awqOptions)
        {
            if (calibration is null) throw new NibbleException("AWQ needs calibration data; pass --calib <file> or use --method rtn.");
            awq = AwqCalibrator.Run(model, calibration, awqOptions with { GroupSize = options.GroupSize, ChannelWise = options.ChannelWise },
                QuantizeLayer, progress, cancellationToken);
        }
        else
            for (int i = 0; i < model.Layers.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                QuantizeLayer(i);
                progress?.Report(new AwqProgress("RTN", i + 1, model.Layers.Count));
            }
        return new QuantizationResult(done, awq);
    }

    public static ILinear CreateLayer(CausalLM model, Int4GroupWeight weight, float[]? bias, QuantScheme scheme, ScaleMode scales) =>
        scheme == QuantScheme.W4A8
            ? new W4A8Linear(model.Backend, weight, scales, bias)
            : new W4A16Linear(model.Backend, weight, bias);
}
