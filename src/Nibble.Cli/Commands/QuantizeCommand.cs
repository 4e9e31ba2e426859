using System.CommandLine;
using System.Text.Json.Nodes;
using Nibble.Quantization;
using Spectre.Console;

namespace Nibble.Cli.Commands;

/// <summary>
/// `nibble quantize &lt;model-dir&gt; --scheme w4a8|w4a16 --method awq|rtn --out &lt;dir&gt; [--rounding grid|rtn] [--clip-search [--clip-grid 20] [--clip-max-shrink 0.5]] [--group-size 128] [--overwrite] [--json]`:
/// writes a compressed-tensors pack-quantized checkpoint (vLLM loads it too).
/// </summary>
public static class QuantizeCommand
{
    /// <summary>Quantization methods by CLI name; a method that is not available yet maps to null with the reason.</summary>
    static readonly Dictionary<string, Func<ILinearQuantizer>> Methods = new(StringComparer.Ordinal)
    {
        ["rtn"] = () => RtnQuantizer.Instance,
        ["awq"] = () => throw new InvalidOperationException("awq is dispatched to AwqQuantize.Run"),
    };

    public static Command Create()
    {
        var model = new Argument<string>("model-dir") { Description = "Hugging Face bf16 model directory (default: the bundled nano model).", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => BundledModel.Path };
        var scheme = new Option<string>("--scheme") { Description = "w4a8 (int4 weights, FP8 per-token activations) or w4a16.", DefaultValueFactory = _ => "w4a8" };
        scheme.AcceptOnlyFromAmong("w4a8", "w4a16");
        var method = new Option<string>("--method") { Description = "Weight quantization method: awq (calibrated, default) or rtn.", DefaultValueFactory = _ => "awq" };
        method.AcceptOnlyFromAmong([.. Methods.Keys]);
        var output = new Option<string>("--out") { Description = "Output directory for the quantized checkpoint.", Required = true };
        var groupSize = new Option<int>("--group-size") { Description = "Weights per scale along the input dimension; 0 = one scale per output channel (vLLM's W4A8 kernel needs 128).", DefaultValueFactory = _ => 128 };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing output directory." };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary on stdout." };
        var awq = new AwqQuantize.Options();
        var command = new Command("quantize", "Quantize a model's Linear weights to int4 and write a compressed-tensors checkpoint.")
            { model, scheme, method, output, groupSize, overwrite, json, awq.Calib, awq.Mask, awq.Scales, awq.Search, awq.Samples, awq.Length, awq.Rounding, awq.Clip, awq.ClipGrid, awq.ClipShrink };
        command.SetAction((parse, ct) => CliErrors.RunAsync(() => Task.Run(() =>
        {
            string dir = parse.GetValue(model)!, outDir = parse.GetValue(output)!;
            var options = new CompressedTensorsWriteOptions
            {
                Scheme = parse.GetValue(scheme) == "w4a16" ? QuantizationScheme.W4A16 : QuantizationScheme.W4A8,
                GroupSize = parse.GetValue(groupSize),
                Overwrite = parse.GetValue(overwrite),
            };
            if (parse.GetValue(method) != "awq" && parse.GetValue(awq.Clip))
                throw new NibbleException("--clip-search needs calibration inputs; use it with --method awq.");
            var quantizer = parse.GetValue(method) == "awq" ? AwqQuantize.Run(parse, awq, dir, outDir, options, ct)
                : options.Scheme == QuantizationScheme.W4A8 && AwqQuantize.RoundingOf(parse, awq) == WeightRounding.Grid ? GridRoundedRtnQuantizer.Instance
                : Methods[parse.GetValue(method)!]();
            var started = System.Diagnostics.Stopwatch.StartNew();
            CompressedTensorsWriteResult? result = null;
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    ProgressTask? task = null;
                    result = CompressedTensorsCheckpoint.Write(dir, outDir, options, quantizer, new SyncProgress(p =>
                    {
                        task ??= ctx.AddTask($"{quantizer.Method} {options.Scheme}", maxValue: p.LayersTotal);
                        task.Value = p.LayersDone;
                    }), ct);
                    task?.StopTask();
                    ctx.Refresh();
                });
            var r = result!;
            if (parse.GetValue(json))
            {
                Console.WriteLine(new JsonObject
                {
                    ["output"] = r.OutputDirectory,
                    ["scheme"] = options.Scheme.ToString().ToLowerInvariant(),
                    ["method"] = quantizer.Method,
                    ["group_size"] = options.GroupSize,
                    ["quantized_layers"] = r.QuantizedLayers,
                    ["copied_tensors"] = r.CopiedTensors,
                    ["ignore"] = new JsonArray([.. r.Ignore.Select(i => (JsonNode?)JsonValue.Create(i))]),
                    ["seconds"] = started.Elapsed.TotalSeconds,
                }.ToJsonString());
            }
            else
            {
                AnsiConsole.MarkupLineInterpolated($"[green]wrote[/] {r.OutputDirectory}: {r.QuantizedLayers} Linear layers → int4 ({options.Scheme}, {(options.GroupSize == 0 ? "channel-wise" : $"group {options.GroupSize}")}, {quantizer.Method}), {r.CopiedTensors} tensors copied, {started.Elapsed.TotalSeconds:F1} s");
                AnsiConsole.MarkupLineInterpolated($"kept bf16: {string.Join(", ", r.Ignore)}");
            }
            return 0;
        }, ct)));
        return command;
    }

    /// <summary>Reports on the calling thread so the bar follows the writer exactly.</summary>
    sealed class SyncProgress(Action<QuantizeProgress> report) : IProgress<QuantizeProgress>
    {
        public void Report(QuantizeProgress value) => report(value);
    }
}
