using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nibble.Cpu;
using Nibble.Engine;
using Nibble.Evaluation;
using Nibble.Models;
using Spectre.Console;

namespace Nibble.Cli.Commands;

/// <summary>
/// `nibble eval &lt;model-dir&gt; [--text f] [--traces f] [--reference dir] [--json]`: perplexity (shared data
/// protocol), KL / top-1 agreement against a reference model, agentic trace exact match.
/// </summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model-dir") { Description = "Hugging Face model directory (default: the bundled nano model).", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => BundledModel.Path };
        var text = new Option<string?>("--text") { Description = "Text file for perplexity (documents separated by <|endoftext|> lines)." };
        var traces = new Option<string?>("--traces") { Description = "JSONL agentic traces for exact-match accuracy." };
        var reference = new Option<string?>("--reference") { Description = "Reference model directory: adds KL divergence and top-1 agreement on --text." };
        var window = new Option<int>("--window") { Description = "Tokens per perplexity window.", DefaultValueFactory = _ => 1024 };
        var stride = new Option<int?>("--stride") { Description = "Tokens between window starts (default: the window length, non-overlapping)." };
        var maxWindows = new Option<int?>("--max-windows") { Description = "Evaluate only the first N windows." };
        var maxTraces = new Option<int?>("--max-traces") { Description = "Evaluate only the first N traces." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens generated per trace at most.", DefaultValueFactory = _ => 160 };
        var details = new Option<string?>("--trace-details") { Description = "Write each trace's expected and generated answer to this JSONL file." };
        var device = new Option<string>("--device") { Description = BackendFactory.Help, DefaultValueFactory = _ => "cpu" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object with perplexity, kl, top1_agreement, exact_match as applicable." };
        var command = new Command("eval", "Evaluate a model: perplexity on a text, KL / top-1 agreement against a reference, agentic trace exact match.")
            { model, text, traces, reference, window, stride, maxWindows, maxTraces, maxNew, details, json, device };
        command.SetAction((parse, ct) => CliErrors.RunAsync(() => Task.Run(() =>
        {
            string dir = parse.GetValue(model)!;
            string? textPath = parse.GetValue(text), tracesPath = parse.GetValue(traces), referenceDir = parse.GetValue(reference);
            if (textPath is null && tracesPath is null)
                throw new NibbleException("Nothing to evaluate; pass --text <file> (perplexity, and KL with --reference) and/or --traces <jsonl>.");
            if (referenceDir is not null && textPath is null)
                throw new NibbleException("--reference compares next-token distributions on --text; pass --text <file> too.");
            var windows = new WindowOptions { Length = parse.GetValue(window), Stride = parse.GetValue(stride), MaxWindows = parse.GetValue(maxWindows) };

            var backend = BackendFactory.Create(parse.GetValue(device)!);
            using var backendScope = backend as IDisposable;
            // Quantized (compressed-tensors) checkpoints load into W4A8 / W4A16 layers (GPU kernels on cuda); bf16 ones as before.
            using var lm = Nibble.Engine.Gpu.QuantizedModelLoader.Load(dir, backend);
            var tokenizer = GenerateCommand.LoadTokenizer(dir);
            var result = new JsonObject { ["model"] = dir };
            var rows = new List<(string Metric, string Value)>();

            RunWithProgress(progress =>
            {
                if (textPath is not null)
                {
                    var tokens = TextCorpus.TokenizeFile(textPath, tokenizer);
                    if (referenceDir is null)
                    {
                        var ppl = Perplexity.Evaluate(lm, tokens, windows, progress, ct);
                        result["perplexity"] = ppl.Perplexity;
                        result["predicted_tokens"] = ppl.PredictedTokens;
                        result["windows"] = ppl.Windows;
                        rows.Add(("perplexity", $"{ppl.Perplexity:F4} ({ppl.PredictedTokens:N0} predicted tokens, {ppl.Windows} windows of {windows.Length})"));
                    }
                    else
                    {
                        using var refLm = CausalLM.Load(referenceDir, backend);
                        var div = Divergence.Evaluate(lm, refLm, tokens, windows, progress, ct);
                        result["perplexity"] = div.CandidatePerplexity;
                        result["reference_perplexity"] = div.ReferencePerplexity;
                        result["kl"] = div.MeanKl;
                        result["top1_agreement"] = div.Top1Agreement;
                        result["predicted_tokens"] = div.Positions;
                        result["windows"] = div.Windows;
                        rows.Add(("perplexity", $"{div.CandidatePerplexity:F4} (reference {div.ReferencePerplexity:F4})"));
                        rows.Add(("kl", $"{div.MeanKl:F6} nats/token over {div.Positions:N0} positions"));
                        rows.Add(("top1_agreement", $"{div.Top1Agreement:P2}"));
                    }
                }
                if (tracesPath is not null)
                {
                    var all = AgentTrace.Load(tracesPath);
                    var template = Nibble.Text.Templates.ChatTemplate.Load(dir);
                    var tr = AgentTraceAccuracy.Evaluate(lm, tokenizer, all, (m, t) => template.Render(m, t, addGenerationPrompt: true),
                        new TraceOptions { MaxTraces = parse.GetValue(maxTraces), MaxNewTokens = parse.GetValue(maxNew) }, progress, ct);
                    result["exact_match"] = tr.ExactMatch;
                    result["exact_match_correct"] = tr.Correct;
                    result["traces"] = tr.Total;
                    rows.Add(("exact_match", $"{tr.Correct} / {tr.Total} = {tr.ExactMatch:F3}"));
                    if (parse.GetValue(details) is string detailsPath)
                        Nibble.Formats.AtomicFile.WriteAllText(detailsPath, string.Concat(tr.Outcomes.Select(o => JsonSerializer.Serialize(new
                        {
                            index = o.Index, exact_match = o.ExactMatch, expected = o.Expected, generated = o.Generated, prompt_tokens = o.PromptTokens,
                        }) + "\n")));
                }
            });

            if (parse.GetValue(json)) Console.WriteLine(result.ToJsonString());
            else
            {
                var table = new Table().AddColumns("metric", "value");
                table.Title = new TableTitle(Markup.Escape(dir));
                foreach (var (metric, value) in rows) table.AddRow(metric, Markup.Escape(value));
                AnsiConsole.Write(table);
            }
            return 0;
        }, ct)));
        return command;
    }

    /// <summary>Runs work with a Spectre.Console progress bar (and ETA) per stage on stderr.</summary>
    internal static void RunWithProgress(Action<IProgress<EvaluationProgress>> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                work(new SyncProgress(p =>
                {
                    if (!tasks.TryGetValue(p.Stage, out var task))
                        tasks[p.Stage] = task = ctx.AddTask(p.Stage, maxValue: p.Total);
                    task.Value = p.Done;
                }));
            });
    }

    /// <summary>Reports on the calling thread (System.Progress would post to the thread pool and lag behind).</summary>
    sealed class SyncProgress(Action<EvaluationProgress> report) : IProgress<EvaluationProgress>
    {
        public void Report(EvaluationProgress value) => report(value);
    }
}
