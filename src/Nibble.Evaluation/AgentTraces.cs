using System.Text.Json;
using System.Text.Json.Nodes;
using Nibble.Backend;
using Nibble.Models;
using Nibble.Text.Tokenization;

namespace Nibble.Evaluation;

/// <summary>One agentic conversation of eval_traces.jsonl: OpenAI-format messages and tools, and the expected final answer.</summary>
public sealed record AgentTrace(int Index, JsonArray Messages, JsonArray? Tools, string ExpectedAnswer)
{
    /// <summary>The conversation up to (not including) the final assistant message.</summary>
    public JsonArray PromptMessages()
    {
        int last = Messages.Count - 1;
        while (last >= 0 && Messages[last]?["role"]?.GetValue<string>() != "assistant") last--;
        if (last < 0) throw new NibbleException($"Trace {Index} has no assistant message to predict.");
        return new JsonArray(Messages.Take(last).Select(m => m?.DeepClone()).ToArray());
    }

    public static IReadOnlyList<AgentTrace> Load(string path)
    {
        if (!File.Exists(path)) throw new NibbleException($"Trace file '{path}' does not exist; pass a JSONL file of {{messages, tools, expected_answer}} objects.");
        var traces = new List<AgentTrace>();
        int line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            try
            {
                var node = JsonNode.Parse(text) as JsonObject ?? throw new JsonException("not an object");
                var messages = node["messages"] as JsonArray ?? throw new JsonException("no messages array");
                string expected = node["expected_answer"]?.GetValue<string>() ?? throw new JsonException("no expected_answer");
                traces.Add(new AgentTrace(traces.Count, messages, node["tools"] as JsonArray, expected));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                throw new NibbleException($"Line {line} of '{path}' is not a trace ({e.Message}); each line needs messages and expected_answer.");
            }
        }
        return traces;
    }
}

public sealed record TraceOutcome(int Index, string Expected, string Generated, bool ExactMatch, int PromptTokens);

public sealed record TraceResult(double ExactMatch, int Correct, int Total, IReadOnlyList<TraceOutcome> Outcomes);

/// <summary>Options for agentic trace accuracy.</summary>
public sealed record TraceOptions
{
    /// <summary>Tokens generated per trace before giving up on reaching the stop token.</summary>
    public int MaxNewTokens { get; init; } = 160;
    /// <summary>Evaluate only the first N traces (null: all).</summary>
    public int? MaxTraces { get; init; }
    /// <summary>Token that ends the answer (ChatML's <c>&lt;|im_end|&gt;</c>).</summary>
    public string StopToken { get; init; } = "<|im_end|>";
}

/// <summary>
/// Agentic accuracy (../shared/data/README.md): render each conversation up to the final assistant turn
/// with the generation prompt, decode greedily until the stop token, and count exact matches with
/// <c>expected_answer</c> (compared after trimming surrounding whitespace). Every trace shares a long
/// system prompt and tool list, so the keys/values of the common token prefix are computed once and
/// copied into each trace's cache (greedy results are identical to running each prompt from scratch).
/// </summary>
public static class AgentTraceAccuracy
{
    /// <param name="render">Renders (messages, tools) with add_generation_prompt — the model's chat template.</param>
    public static TraceResult Evaluate(CausalLM model, HfTokenizer tokenizer, IReadOnlyList<AgentTrace> traces, Func<JsonArray, JsonArray?, string> render,
        TraceOptions? options = null, IProgress<EvaluationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new TraceOptions();
        int stop = tokenizer.TokenToId(options.StopToken) ?? throw new NibbleException($"The tokenizer has no '{options.StopToken}' token to end answers with.");
        var selected = options.MaxTraces is int m ? traces.Take(m).ToList() : traces.ToList();
        if (selected.Count == 0) throw new NibbleException("No traces to evaluate.");

        var prompts = selected.Select(t => tokenizer.Encode(render(t.PromptMessages(), t.Tools))).ToList();
        int prefix = CommonPrefixLength(prompts);
        int capacity = prompts.Max(p => p.Length) + options.MaxNewTokens;
        using var shared = model.CreateCache(capacity);
        if (prefix > 0) model.Forward(prompts[0].AsSpan(0, prefix), shared);

        var outcomes = new List<TraceOutcome>();
        using var cache = model.CreateCache(capacity);
        for (int i = 0; i < selected.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var ids = prompts[i];
            cache.CopyPrefixFrom(shared, prefix);
            var generated = GreedyDecode(model, cache, ids.AsSpan(prefix), stop, options.MaxNewTokens, cancellationToken);
            string text = tokenizer.Decode(generated);
            bool match = text.Trim() == selected[i].ExpectedAnswer.Trim();
            outcomes.Add(new TraceOutcome(selected[i].Index, selected[i].ExpectedAnswer, text, match, ids.Length));
            progress?.Report(new EvaluationProgress("traces", i + 1, selected.Count));
        }
        int correct = outcomes.Count(o => o.ExactMatch);
        return new TraceResult((double)correct / outcomes.Count, correct, outcomes.Count, outcomes);
    }

    static List<int> GreedyDecode(CausalLM model, KvCache cache, ReadOnlySpan<int> rest, int stop, int maxNew, CancellationToken ct)
    {
        var output = new List<int>();
        // The prompt's unshared tail (at least one token, so there are logits to start from).
        var logits = model.Forward(rest, cache, lastTokenOnly: true).ToArray();
        while (output.Count < maxNew)
        {
            ct.ThrowIfCancellationRequested();
            int next = LogProbs.ArgMax(logits);
            if (next == stop) break;
            output.Add(next);
            if (cache.Length >= cache.Capacity) break;
            logits = model.Forward([next], cache, lastTokenOnly: true).ToArray();
        }
        return output;
    }

    /// <summary>Tokens shared by every prompt, keeping at least one token of each prompt unshared.</summary>
    internal static int CommonPrefixLength(IReadOnlyList<int[]> prompts)
    {
        int n = prompts.Min(p => p.Length) - 1;
        for (int i = 1; i < prompts.Count; i++)
        {
            int k = 0;
            while (k < n && prompts[i][k] == prompts[0][k]) k++;
            n = k;
        }
        return Math.Max(0, n);
    }
}
