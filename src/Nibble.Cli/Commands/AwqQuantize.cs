using System.CommandLine;
using Nibble.Cpu;
using Nibble.Models;
using Nibble.Numerics;
using Nibble.Quantization;
using Nibble.Quantization.Awq;
using Nibble.Text;
using Nibble.Text.Templates;

namespace Nibble.Cli.Commands;

/// <summary>
/// The AWQ branch of `nibble quantize`: loads the bf16 model on the CPU backend, reads the calibration file (chat
/// traces masked by role spans, or text), runs AWQ layer by layer with a progress bar and ETA, and returns the result
/// as the checkpoint writer's quantizer (so the written checkpoint is exactly the calibrated model).
/// </summary>
internal static class AwqQuantize
{
    internal sealed class Options
    {
        public readonly Option<string?> Calib = new("--calib") { Description = "Calibration data: a .jsonl of chat traces ({messages, tools}) or a text file (default: the model's calibration/calib_text_sample.txt when present)." };
        public readonly Option<string> Mask = new("--mask") { Description = "Token masking of chat traces: default (user/assistant/tool content and tool calls), none, or a comma list of system,user,assistant,tool,toolcalls,tooldefs,template.", DefaultValueFactory = _ => "default" };
        public readonly Option<string> Scales = new("--scales") { Description = "W4A8 scale recovery used by the W4A8-aware search: recovered or naive (the checkpoint always stores bf16 scales; vLLM recovers them at load).", DefaultValueFactory = _ => "recovered" };
        public readonly Option<string> Search = new("--search") { Description = "Numerics of the AWQ candidate evaluation: w4a16 (llm-compressor) or w4a8 (exact W4A8 numerics).", DefaultValueFactory = _ => "w4a16" };
        public readonly Option<string> Rounding = new("--rounding") { Description = "How int4 codes are chosen after the scales: grid (nearest W4A8 value c'·e4m3(q·σ), default for w4a8) or rtn (compressed-tensors RTN, always used for w4a16)." , DefaultValueFactory = _ => "grid" };
        public readonly Option<int> Samples = new("--calib-samples") { Description = "Calibration sequences (traces, or text chunks).", DefaultValueFactory = _ => 64 };
        public readonly Option<bool> Clip = new("--clip-search") { Description = "After AWQ, clip each group's int4 scale (ratio grid over max |w|) to minimise the group's output error on the calibration tokens, judged with the scheme's numerics (W4A8: FP8 activations, recovered FP8 group scales, grid rounding)." };
        public readonly Option<int> ClipGrid = new("--clip-grid") { Description = "Clip ratios are 1 − i/N for i below N × --clip-max-shrink.", DefaultValueFactory = _ => 20 };
        public readonly Option<double> ClipShrink = new("--clip-max-shrink") { Description = "Largest fraction of a group's max |w| the clip search may cut (exclusive, in (0, 1)).", DefaultValueFactory = _ => 0.5 };
        public readonly Option<int> Length = new("--calib-length") { Description = "Tokens per calibration sequence at most (default: the model's context).", DefaultValueFactory = _ => 0 };

        public Options()
        {
            Scales.AcceptOnlyFromAmong("recovered", "naive");
            Search.AcceptOnlyFromAmong("w4a16", "w4a8");
            Rounding.AcceptOnlyFromAmong("grid", "rtn");
        }
    }

    /// <summary>The clip search settings, or null without --clip-search (validated here so a bad value fails before calibration).</summary>
    public static ClipSearchOptions? ClipOf(ParseResult parse, Options o)
    {
        if (!parse.GetValue(o.Clip)) return null;
        var clip = new ClipSearchOptions { GridPoints = parse.GetValue(o.ClipGrid), MaxShrink = parse.GetValue(o.ClipShrink) };
        clip.Ratios();
        return clip;
    }

    /// <summary>The --rounding choice (only W4A8 uses it).</summary>
    public static WeightRounding RoundingOf(ParseResult parse, Options o) => parse.GetValue(o.Rounding) == "rtn" ? WeightRounding.Rtn : WeightRounding.Grid;

    public static ILinearQuantizer Run(ParseResult parse, Options o, string dir, string outDir, CompressedTensorsWriteOptions write, CancellationToken ct)
    {
        // Refuse an existing output before spending minutes on calibration.
        if ((Directory.Exists(outDir) || File.Exists(outDir)) && !write.Overwrite)
            throw new NibbleException($"The output directory '{outDir}' already exists; choose another --out or pass --overwrite.");
        var clip = ClipOf(parse, o);
        string? calib = parse.GetValue(o.Calib);
        if (calib is null)
        {
            string bundled = Path.Combine(dir, "calibration", "calib_text_sample.txt");
            calib = File.Exists(bundled) ? bundled : throw new NibbleException("AWQ needs calibration data; pass --calib <traces.jsonl or text file>, or use --method rtn.");
        }
        var tokenizer = GenerateCommand.LoadTokenizer(dir);
        var model = CausalLM.Load(dir, CpuBackend.Instance);
        try
        {
            int length = parse.GetValue(o.Length) is > 0 and var l ? Math.Min(l, model.Config.MaxPositionEmbeddings) : model.Config.MaxPositionEmbeddings;
            var data = CalibrationSet.Load(calib, tokenizer, () => ChatTemplate.Load(dir), new CalibrationOptions
            {
                MaskPolicy = MaskPolicyParser.Parse(parse.GetValue(o.Mask)!),
                MaxSequences = parse.GetValue(o.Samples),
                MaxSequenceLength = length,
            });
            Console.Error.WriteLine($"calibration: {data.Count} sequences, {data.Sum(s => s.Ids.Length):N0} tokens, {data.Sum(s => s.IncludedTokens):N0} counted after masking ({calib})");
            var awq = new AwqOptions
            {
                SearchScheme = parse.GetValue(o.Search) == "w4a8" ? QuantizationScheme.W4A8 : QuantizationScheme.W4A16,
                SearchScales = parse.GetValue(o.Scales) == "naive" ? ScaleRecoveryMode.Naive : ScaleRecoveryMode.Recovered,
            };
            QuantizationResult result = null!;
            QuantizeCommandProgress.Run(p => result = ModelQuantizer.Quantize(model, new QuantizeOptions
            {
                Scheme = write.Scheme,
                GroupSize = write.GroupSize == 0 ? 128 : write.GroupSize,
                ChannelWise = write.GroupSize == 0,
                Awq = awq,
                Rounding = RoundingOf(parse, o),
                Clip = clip,
            }, data, p, ct));
            return new QuantizationResultWriter(result);
        }
        finally
        {
            model.Dispose();
        }
    }
}
