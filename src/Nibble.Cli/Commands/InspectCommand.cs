using System.CommandLine;
using Nibble.Formats;
using Spectre.Console;

namespace Nibble.Cli.Commands;

/// <summary>`nibble inspect [model-dir]`: the architecture and every tensor of a Hugging Face checkpoint.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model-dir") { Description = "Hugging Face model directory (default: the bundled nano model).", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => BundledModel.Path };
        var all = new Option<bool>("--all") { Description = "List every tensor, not only the first layer." };
        var command = new Command("inspect", "Show a checkpoint's architecture and tensors.") { model, all };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            string dir = parse.GetValue(model)!;
            var config = ModelConfig.Load(dir);
            using var checkpoint = SafetensorsCheckpoint.Open(dir);
            AnsiConsole.MarkupLineInterpolated($"[bold]{dir}[/]: {config.Architecture} ({config.Family}), {config.NumLayers} layers, hidden {config.HiddenSize}, heads {config.NumHeads}/{config.NumKvHeads} × {config.HeadDim}, vocab {config.VocabSize}");
            if (config.Moe is { } moe)
                AnsiConsole.MarkupLineInterpolated($"MoE: {moe.NumExperts} experts, top-{moe.TopK}, expert MLP {moe.ExpertIntermediateSize}");
            // A pack-quantized int32 word holds 8 int4 weights; scales and shapes are bookkeeping, not parameters.
            long parameters = checkpoint.Tensors.Sum(t =>
                t.Name.EndsWith(".weight_packed", StringComparison.Ordinal) ? t.ElementCount * 8
                : t.Name.EndsWith(".weight_scale", StringComparison.Ordinal) || t.Name.EndsWith(".weight_shape", StringComparison.Ordinal) ? 0
                : t.ElementCount);
            AnsiConsole.MarkupLineInterpolated($"{checkpoint.Files.Count} file(s), {checkpoint.TensorNames.Count()} tensors, {parameters:N0} parameters, {checkpoint.TotalBytes / 1e6:F1} MB; quantized: {(config.QuantizationConfig is null ? "no" : "yes")}");
            var table = new Table().AddColumns("tensor", "dtype", "shape");
            foreach (var t in checkpoint.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
                if (parse.GetValue(all) || !t.Name.Contains(".layers.") || t.Name.Contains(".layers.0."))
                    table.AddRow(Markup.Escape(t.Name), t.DType.ToString(), Markup.Escape(t.ShapeText));
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }
}
