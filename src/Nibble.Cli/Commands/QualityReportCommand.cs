using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Nibble.Cpu;
using Nibble.Evaluation;
using Nibble.Formats;
using Nibble.Models;
using Nibble.Numerics;
using Nibble.Quantization;
using Nibble.Quantization.Awq;
using Nibble.Text;
using Nibble.Text.Templates;
using Nibble.Text.Tokenization;

namespace Nibble.Cli.Commands;

/// <summary>
/// `nibble quality-report`: regenerates docs/quality.md. For each model (small, moe): bf16, W4A16-RTN, W4A16-AWQ,
/// W4A8-naive (AWQ), W4A8-recovered with RTN codes, W4A8-recovered (AWQ, masked traces; grid-rounded codes as every W4A8 row below), W4A8-recovered (AWQ, unmasked traces), W4A8-aware AWQ;
/// perplexity / KL / top-1 agreement against bf16 on eval_text windows, agentic exact match on eval traces, and
/// paired flips against W4A16-AWQ. The file is rewritten after every row, so a long run leaves partial results.
/// </summary>
public static class QualityReportCommand
{
    sealed record Row(string Model, string Name, double Perplexity, double Kl, double Top1, TraceResult Traces, AnswerLikelihoodResult Answers, double Seconds);

    public static Command Create()
    {
        var models = new Option<string>("--models") { Description = "Comma-separated model names under --models-dir.", DefaultValueFactory = _ => "small,moe" };
        var modelsDir = new Option<string>("--models-dir") { Description = "Folder of the evaluation models.", DefaultValueFactory = _ => "../shared/models" };
        var dataDir = new Option<string>("--data-dir") { Description = "Folder with calib_traces.jsonl, eval_text.txt, eval_traces.jsonl.", DefaultValueFactory = _ => "../shared/data" };
        var calibTraces = new Option<int>("--calib-traces") { Description = "Calibration traces per AWQ run.", DefaultValueFactory = _ => 32 };
        var evalTraces = new Option<int>("--eval-traces") { Description = "Evaluation traces per row (the first N of eval_traces.jsonl).", DefaultValueFactory = _ => 128 };
        var klWindows = new Option<int>("--kl-windows") { Description = "1024-token windows of eval_text for perplexity / KL / top-1.", DefaultValueFactory = _ => 8 };
        var rowsOption = new Option<string>("--rows") { Description = "all; core (bf16, W4A16-AWQ, W4A8-naive, W4A8-recovered with RTN and grid rounding: one AWQ run); or calibration (all but W4A16-RTN and W4A8-naive); or clip (implies --clip-search: bf16, W4A16-AWQ, W4A8-recovered with and without clipping, W4A16-AWQ + clip) — smaller sets for larger evaluation subsets.", DefaultValueFactory = _ => "all" };
        rowsOption.AcceptOnlyFromAmong("all", "core", "calibration", "clip");
        var clip = new Option<bool>("--clip-search") { Description = "Run the AWQ with the activation-aware clip search and add the rows W4A8-recovered + clip (W4A8 objective) and W4A16-AWQ + clip (W4A16 objective); every other row stays unclipped." };
        var output = new Option<string>("--out") { Description = "Markdown report to write.", DefaultValueFactory = _ => "docs/quality.md" };
        var command = new Command("quality-report", "Quantize the evaluation models every way (RTN, AWQ with/without masking, W4A8-aware AWQ; W4A16 / W4A8 naive / recovered) and write the quality table.")
            { models, modelsDir, dataDir, calibTraces, evalTraces, klWindows, rowsOption, clip, output };
        command.SetAction((parse, ct) => CliErrors.RunAsync(() => Task.Run(() =>
        {
            var settings = new Settings(parse.GetValue(modelsDir)!, parse.GetValue(dataDir)!, parse.GetValue(calibTraces), parse.GetValue(evalTraces), parse.GetValue(klWindows), parse.GetValue(output)!, parse.GetValue(rowsOption)!, parse.GetValue(clip) || parse.GetValue(rowsOption) == "clip");
            var rows = new List<Row>();
            foreach (string name in parse.GetValue(models)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                RunModel(name, settings, rows, ct);
            Console.WriteLine($"wrote {settings.Output}");
            return 0;
        }, ct)));
        return command;
    }

    sealed record Settings(string ModelsDir, string DataDir, int CalibTraces, int EvalTraces, int KlWindows, string Output, string Rows, bool Clip)
    {
        public bool CoreOnly => Rows is "core" or "clip";
        public bool Has(string row) => Rows switch
        {
            "all" => true,
            "core" => row is "naive" or "rtn-rounding",
            "clip" => false,
            _ => row is not ("rtn" or "naive"),
        };

        public string Data(string file)
        {
            string path = Path.Combine(DataDir, file);
            if (!File.Exists(path)) throw new NibbleException($"'{path}' does not exist; pass --data-dir with the shared data folder.");
            return path;
        }
    }

    static void RunModel(string name, Settings settings, List<Row> rows, CancellationToken ct)
    {
        string dir = Path.Combine(settings.ModelsDir, name);
        if (!Directory.Exists(dir)) throw new NibbleException($"Model '{dir}' does not exist; pass --models-dir with the shared models folder.");
        var backend = CpuBackend.Instance;
        var tokenizer = HfTokenizer.Load(dir);
        var template = ChatTemplate.Load(dir);
        using var bf16 = CausalLM.Load(dir, backend);
        var tokens = TextCorpus.TokenizeFile(settings.Data("eval_text.txt"), tokenizer);
        var windows = new WindowOptions { Length = 1024, MaxWindows = settings.KlWindows };
        var traces = AgentTrace.Load(settings.Data("eval_traces.jsonl")).Take(settings.EvalTraces).ToList();
        string Render(System.Text.Json.Nodes.JsonArray m, System.Text.Json.Nodes.JsonArray? t) => template.Render(m, t, addGenerationPrompt: true);
        var log = (string s) => Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {name}: {s}");

        // Reference next-token distributions, computed once and reused for every row.
        var reference = Windows(bf16, tokens, windows).Select(w => w.Logits).ToList();

        Row Evaluate(string rowName, CausalLM lm, Stopwatch watch)
        {
            log($"evaluating {rowName}");
            double nll = 0, kl = 0; long agree = 0, count = 0;
            int vocab = lm.VocabSize, w = 0;
            foreach (var (window, logits) in Windows(lm, tokens, windows))
            {
                var r = reference[w++];
                for (int t = 0; t < window.Length - 1; t++)
                {
                    var c = logits.AsSpan(t * vocab, vocab);
                    var rr = r.AsSpan(t * vocab, vocab);
                    nll += LogProbs.Nll(c, window[t + 1]);
                    kl += LogProbs.KlDivergence(rr, c);
                    if (LogProbs.ArgMax(c) == LogProbs.ArgMax(rr)) agree++;
                    count++;
                }
            }
            var tr = AgentTraceAccuracy.Evaluate(lm, tokenizer, traces, Render, new Nibble.Evaluation.TraceOptions(), null, ct);
            var answers = AnswerLikelihood.Evaluate(lm, tokenizer, traces, Render, cancellationToken: ct);
            var row = new Row(name, rowName, Math.Exp(nll / count), kl / count, (double)agree / count, tr, answers, watch.Elapsed.TotalSeconds);
            rows.Add(row);
            log($"{rowName}: ppl {row.Perplexity:F3}, KL {row.Kl:F5}, top-1 {row.Top1:P2}, traces {tr.Correct}/{tr.Total}, answer NLL {answers.MeanNllPerToken:F4} ({watch.Elapsed.TotalSeconds:F0} s)");
            Write(settings, rows, tokens.Length, count);
            return row;
        }

        // --rows clip evaluates bf16 last, so the rows the bars need come first in a partial report.
        bool bf16Last = settings.Rows == "clip";
        if (!bf16Last) Evaluate("bf16", bf16, Stopwatch.StartNew());

        CausalLM Fresh() => CausalLM.Load(dir, backend);
        void Variant(string rowName, Func<CausalLM, QuantizationResult?> build)
        {
            var watch = Stopwatch.StartNew();
            using var lm = Fresh();
            build(lm);
            Evaluate(rowName, lm, watch);
        }

        var calibOptions = new CalibrationOptions { MaxSequences = settings.CalibTraces, MaxSequenceLength = bf16.Config.MaxPositionEmbeddings };
        IReadOnlyList<CalibrationSequence> Calib(CalibrationMaskPolicy policy) =>
            CalibrationSet.Load(settings.Data("calib_traces.jsonl"), tokenizer, () => template, calibOptions with { MaskPolicy = policy });
        var masked = Calib(CalibrationMaskPolicy.Default);
        var unmasked = Calib(CalibrationMaskPolicy.All);
        log($"calibration: {masked.Count} traces, {masked.Sum(s => s.Ids.Length):N0} tokens, {masked.Sum(s => s.IncludedTokens):N0} unmasked by the default policy");

        QuantizationResult Awq(CausalLM lm, IReadOnlyList<CalibrationSequence> data, QuantizationScheme search, string what, bool clip = false)
        {
            var watch = Stopwatch.StartNew();
            int last = -1;
            var progress = new Sync<AwqProgress>(p =>
            {
                int pct = p.Done * 10 / Math.Max(1, p.Total);
                if (pct != last) { last = pct; log($"{what}: {p.Stage} {p.Done}/{p.Total} ({watch.Elapsed.TotalSeconds:F0} s)"); }
            });
            var r = ModelQuantizer.Quantize(lm, new QuantizeOptions
            {
                Scheme = QuantizationScheme.W4A8,
                Awq = new AwqOptions { SearchScheme = search },
                Clip = clip ? new ClipSearchOptions { AlsoW4A16 = true } : null,
            }, data, progress, ct);
            log($"{what}: done in {watch.Elapsed.TotalSeconds:F0} s");
            return r;
        }

        if (settings.Has("rtn")) Variant("W4A16-RTN", lm => ModelQuantizer.Quantize(lm, new QuantizeOptions { Scheme = QuantizationScheme.W4A16 }));
        QuantizationResult? maskedAwq = null;
        var awqWatch = Stopwatch.StartNew();
        using (var lm = Fresh())
        {
            maskedAwq = Awq(lm, masked, QuantizationScheme.W4A16, settings.Clip ? "AWQ + clip search (masked traces)" : "AWQ (masked traces)", settings.Clip);
            // Every row but the "+ clip" ones runs the unclipped weights of this one AWQ run (clipped: false).
            using (var w16 = Fresh()) { maskedAwq.ApplyTo(w16, QuantizationScheme.W4A16, clipped: false); Evaluate("W4A16-AWQ", w16, awqWatch); }
            if (settings.Has("naive")) using (var naive = Fresh()) { maskedAwq.ApplyTo(naive, QuantizationScheme.W4A8, ScaleRecoveryMode.Naive, clipped: false); Evaluate("W4A8-naive (AWQ)", naive, Stopwatch.StartNew()); }
            // Same AWQ run and scales, W4A16's RTN codes instead of the grid-rounded ones (W4A8GridRounding).
            if (settings.Has("rtn-rounding")) using (var rtnRounded = Fresh()) { maskedAwq.ApplyTo(rtnRounded, QuantizationScheme.W4A8, ScaleRecoveryMode.Recovered, WeightRounding.Rtn, clipped: false); Evaluate("W4A8-recovered, RTN rounding (AWQ, masked traces)", rtnRounded, Stopwatch.StartNew()); }
            if (settings.Clip)
            {
                if (bf16Last) Evaluate("W4A8-recovered + clip (AWQ, masked traces)", lm, Stopwatch.StartNew());
                using (var grid = Fresh()) { maskedAwq.ApplyTo(grid, QuantizationScheme.W4A8, clipped: false); Evaluate("W4A8-recovered (AWQ, masked traces)", grid, Stopwatch.StartNew()); }
                if (!bf16Last) Evaluate("W4A8-recovered + clip (AWQ, masked traces)", lm, Stopwatch.StartNew());
                using (var w16Clip = Fresh()) { maskedAwq.ApplyTo(w16Clip, QuantizationScheme.W4A16, clipped: true); Evaluate("W4A16-AWQ + clip", w16Clip, Stopwatch.StartNew()); }
            }
            else Evaluate("W4A8-recovered (AWQ, masked traces)", lm, Stopwatch.StartNew());
        }
        if (bf16Last) Evaluate("bf16", bf16, Stopwatch.StartNew());
        if (settings.CoreOnly) return;
        Variant("W4A8-recovered (AWQ, unmasked traces)", lm => Awq(lm, unmasked, QuantizationScheme.W4A16, "AWQ (unmasked traces)"));
        Variant("W4A8-recovered (W4A8-aware AWQ, masked)", lm => Awq(lm, masked, QuantizationScheme.W4A8, "W4A8-aware AWQ (masked traces)"));
    }

    static IEnumerable<(int[] Window, float[] Logits)> Windows(CausalLM lm, int[] tokens, WindowOptions options)
    {
        using var cache = lm.CreateCache(options.Length);
        var starts = TextCorpus.WindowStarts(tokens.Length, options.Length, options.Length).Take(options.MaxWindows ?? int.MaxValue);
        foreach (int s in starts)
        {
            cache.Length = 0;
            var window = tokens.AsSpan(s, options.Length).ToArray();
            yield return (window, lm.Forward(window, cache).ToArray());
        }
    }

    static void Write(Settings settings, List<Row> rows, int tokenCount, long positions)
    {
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine("# Quantization quality report");
        md.AppendLine();
        md.AppendLine($"Generated {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC by `nibble quality-report --calib-traces {settings.CalibTraces} --eval-traces {settings.EvalTraces} --kl-windows {settings.KlWindows}{(settings.Rows == "all" ? "" : " --rows " + settings.Rows)}{(settings.Clip ? " --clip-search" : "")}` on the CPU backend ({Environment.ProcessorCount} cores).");
        md.AppendLine();
        md.AppendLine($"* Perplexity, KL(bf16 ‖ row) and top-1 agreement: the first {settings.KlWindows} non-overlapping 1024-token windows of eval_text.txt ({positions:N0} predicted positions per model; the full file has {tokenCount:N0} tokens).");
        md.AppendLine($"* Agentic accuracy: exact match (greedy) on the first {settings.EvalTraces} traces of eval_traces.jsonl; \"vs W4A16-AWQ\" and \"vs bf16\" are ratios of accuracies; flips are paired over the same traces (+ = right here and wrong in W4A16-AWQ), p = two-sided sign test on the flips.");
        md.AppendLine($"* Answer NLL: teacher-forced negative log-likelihood of each trace's expected answer + `<|im_end|>` after the same prompt, nats per answer token; \"lower / higher\" counts the traces whose summed answer NLL is below / above W4A16-AWQ's, p = two-sided sign test (a paired, continuous companion to exact match).");
        md.AppendLine($"* AWQ: llm-compressor's algorithm (duo scaling, 20-point grid, block-output MSE), calibrated on the first {settings.CalibTraces} traces of calib_traces.jsonl rendered with the chat template (whole traces, ~1,400 tokens each); \"masked\" uses the default CalibrationMask policy (user/assistant/tool content and tool calls; no system prompt, tool definitions or template tokens), \"unmasked\" every token. Weights: int4 symmetric, group 128, compressed-tensors RTN scales after smoothing; W4A16 rows use RTN codes, W4A8-recovered rows grid-rounded codes (nearest c'·e4m3(q·σ), W4A8GridRounding) except the \"RTN rounding\" row, W4A8-naive RTN codes. W4A8 rows use the exact numerics contract (per-token FP8 activations, FP8 group scales, FP32 channel scales).");
        md.AppendLine();
        foreach (var model in rows.Select(r => r.Model).Distinct())
        {
            var mine = rows.Where(r => r.Model == model).ToList();
            var baseRow = mine.FirstOrDefault(r => r.Name == "W4A16-AWQ");
            var bf = mine.FirstOrDefault(r => r.Name == "bf16");
            md.AppendLine($"## {model}");
            md.AppendLine();
            md.AppendLine("| row | perplexity | KL vs bf16 | top-1 vs bf16 | agentic exact match | vs W4A16-AWQ | vs bf16 | flips vs W4A16-AWQ (+/−), sign-test p | answer NLL / token | answer NLL vs W4A16-AWQ: lower / higher, p | time (s) |");
            md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|");
            foreach (var r in mine)
            {
                string rel = baseRow is null ? "" : (r.Traces.ExactMatch / Math.Max(1e-9, baseRow.Traces.ExactMatch)).ToString("P1", inv);
                string relBf = bf is null ? "" : (r.Traces.ExactMatch / Math.Max(1e-9, bf.Traces.ExactMatch)).ToString("P1", inv);
                string flips = "", answerPairs = "";
                if (baseRow is not null)
                {
                    int lower = 0, higher = 0;
                    for (int i = 0; i < r.Answers.TraceNll.Count; i++)
                    {
                        if (r.Answers.TraceNll[i] < baseRow.Answers.TraceNll[i]) lower++;
                        if (r.Answers.TraceNll[i] > baseRow.Answers.TraceNll[i]) higher++;
                    }
                    answerPairs = string.Create(inv, $"{lower} / {higher}, p = {SignTest.TwoSided(lower, higher):G2}");
                    int plus = 0, minus = 0;
                    for (int i = 0; i < r.Traces.Outcomes.Count; i++)
                    {
                        bool a = r.Traces.Outcomes[i].ExactMatch, b = baseRow.Traces.Outcomes[i].ExactMatch;
                        if (a && !b) plus++;
                        if (!a && b) minus++;
                    }
                    flips = string.Create(inv, $"+{plus} / −{minus}, p = {SignTest.TwoSided(plus, minus):F2}");
                }
                md.AppendLine(string.Create(inv, $"| {r.Name} | {r.Perplexity:F3} | {r.Kl:F5} | {r.Top1:P2} | {r.Traces.Correct}/{r.Traces.Total} = {r.Traces.ExactMatch:F3} | {rel} | {relBf} | {flips} | {r.Answers.MeanNllPerToken:F4} | {answerPairs} | {r.Seconds:F0} |"));
            }
            if (baseRow is not null)
                foreach (var rec in mine.Where(r => r.Name.StartsWith("W4A8-recovered (AWQ, masked") || r.Name.StartsWith("W4A8-recovered + clip")))
                {
                    md.AppendLine();
                    md.AppendLine(string.Create(inv, $"Bars: {rec.Name} keeps {rec.Traces.ExactMatch / Math.Max(1e-9, baseRow.Traces.ExactMatch):P1} of W4A16-AWQ's agentic accuracy (bar ≥ 99.5%) and its KL is {rec.Kl / baseRow.Kl:F3}× W4A16-AWQ's (bar ≤ 1.10×)."));
                }
            md.AppendLine();
        }
        string path = settings.Output;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        AtomicFile.Write(path, s => s.Write(Encoding.UTF8.GetBytes(md.ToString())));
    }

    sealed class Sync<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
