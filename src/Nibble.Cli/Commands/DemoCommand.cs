using System.CommandLine;
using System.Diagnostics;
using Nibble.Cpu;
using Nibble.Engine;
using Nibble.Evaluation;
using Nibble.Models;
using Nibble.Numerics;
using Nibble.Quantization;
using Nibble.Quantization.Awq;
using Spectre.Console;

namespace Nibble.Cli.Commands;

/// <summary>
/// `nibble demo`: the main job on the bundled nano model — AWQ calibration on the bundled sample, W4A16 and W4A8
/// (recovered and naive scales) from the one AWQ run, a quality table against bf16 (perplexity, KL, top-1 agreement on
/// held-out text) and a short generation streamed from the W4A8 model.
/// </summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model-dir") { Description = "Model directory (default: the bundled nano model).", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => BundledModel.Path };
        var calib = new Option<string?>("--calib") { Description = "Calibration file (default: the bundled calibration/calib_text_sample.txt)." };
        var evalText = new Option<string?>("--text") { Description = "Held-out text for the quality table (default: the bundled calibration/eval_text_sample.txt)." };
        var samples = new Option<int>("--calib-samples") { Description = "Calibration sequences.", DefaultValueFactory = _ => 8 };
        var length = new Option<int>("--calib-length") { Description = "Tokens per calibration sequence.", DefaultValueFactory = _ => 512 };
        var prompt = new Option<string>("--prompt", "-p") { Description = "Prompt for the generation from the W4A8 model.", DefaultValueFactory = _ => GenerateCommand.DefaultPrompt };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Tokens to generate.", DefaultValueFactory = _ => 48 };
        var rounding = new Option<string>("--rounding") { Description = "W4A8 int4 codes: grid (nearest W4A8 value, default) or rtn (W4A16's codes); the W4A16 row always uses rtn.", DefaultValueFactory = _ => "grid" };
        rounding.AcceptOnlyFromAmong("grid", "rtn");
        var command = new Command("demo", "Quantize the bundled nano model to W4A16 and W4A8 with AWQ, print a quality table against bf16, and stream a generation from the W4A8 model.")
            { model, calib, evalText, samples, length, prompt, maxTokens, rounding };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            var total = Stopwatch.StartNew();
            string dir = parse.GetValue(model)!;
            string sampleDir = Path.Combine(dir, "calibration");
            string calibPath = parse.GetValue(calib) ?? Path.Combine(sampleDir, "calib_text_sample.txt");
            string textPath = parse.GetValue(evalText) ?? Path.Combine(sampleDir, "eval_text_sample.txt");
            var tokenizer = GenerateCommand.LoadTokenizer(dir);
            var backend = CpuBackend.Instance;
            Console.WriteLine($"nibble demo: {dir} on the CPU backend ({Environment.ProcessorCount} cores; the quantized layers run on the CPU in this build)");

            using var bf16 = CausalLM.Load(dir, backend);
            var data = CalibrationSet.Load(calibPath, tokenizer, () => Nibble.Text.Templates.ChatTemplate.Load(dir),
                new CalibrationOptions { MaxSequences = parse.GetValue(samples), MaxSequenceLength = Math.Min(parse.GetValue(length), bf16.Config.MaxPositionEmbeddings) });
            Console.WriteLine($"calibration: {data.Count} sequences, {data.Sum(s => s.IncludedTokens):N0} tokens from {calibPath}");

            var w4a8 = CausalLM.Load(dir, backend);
            var w4a16 = CausalLM.Load(dir, backend);
            var naive = CausalLM.Load(dir, backend);
            try
            {
                var quantWatch = Stopwatch.StartNew();
                QuantizationResult result = null!;
                QuantizeCommandProgress.Run(p => result = ModelQuantizer.Quantize(w4a8,
                    new QuantizeOptions { Scheme = QuantizationScheme.W4A8, Awq = new AwqOptions(),
                        Rounding = parse.GetValue(rounding) == "rtn" ? WeightRounding.Rtn : WeightRounding.Grid }, data, p, ct));
                result.ApplyTo(w4a16, QuantizationScheme.W4A16);
                result.ApplyTo(naive, QuantizationScheme.W4A8, ScaleRecoveryMode.Naive);
                Console.WriteLine($"AWQ + quantization: {quantWatch.Elapsed.TotalSeconds:F1} s ({result.Linears.Count} linears, {result.Awq.Count(a => a.Skipped is null)} AWQ mappings)");

                var tokens = TextCorpus.TokenizeFile(textPath, tokenizer);
                var windows = new WindowOptions { Length = Math.Min(512, tokens.Length - 1) };
                var rows = new List<(string Name, DivergenceResult R)>();
                EvalCommand.RunWithProgress(p =>
                {
                    foreach (var (name, lm) in new[] { ("W4A16 AWQ", w4a16), ("W4A8 AWQ (recovered scales)", w4a8), ("W4A8 AWQ (naive scales)", naive) })
                        rows.Add((name, Divergence.Evaluate(lm, bf16, tokens, windows, new SyncProgress(e => p.Report(e with { Stage = name })), ct)));
                });
                var table = new Table().AddColumns("model", "perplexity", "KL vs bf16", "top-1 agreement");
                table.Title = new TableTitle($"quality on {Path.GetFileName(textPath)} ({rows[0].R.Positions:N0} predicted tokens)");
                table.AddRow("bf16", $"{rows[0].R.ReferencePerplexity:F3}", "0", "100%");
                foreach (var (name, r) in rows) table.AddRow(name, $"{r.CandidatePerplexity:F3}", $"{r.MeanKl:F5}", $"{r.Top1Agreement:P2}");
                AnsiConsole.Write(table);

                Console.WriteLine("W4A8 generation (greedy):");
                var generator = new Generator(w4a8, tokenizer);
                string text = parse.GetValue(prompt)!;
                Console.Write(text);
                await foreach (var token in generator.GenerateTokensAsync(tokenizer.Encode(text), new SamplingOptions { Temperature = 0, MaxTokens = parse.GetValue(maxTokens) }, ct))
                    Console.Write(token.Text);
                Console.WriteLine();
                Console.WriteLine($"demo finished in {total.Elapsed.TotalSeconds:F1} s");
                return 0;
            }
            finally
            {
                w4a8.Dispose(); w4a16.Dispose(); naive.Dispose();
            }
        }));
        return command;
    }

    sealed class SyncProgress(Action<EvaluationProgress> report) : IProgress<EvaluationProgress>
    {
        public void Report(EvaluationProgress value) => report(value);
    }
}
