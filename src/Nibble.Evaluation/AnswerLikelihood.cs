using System.Text.Json.Nodes;
using Nibble.Models;
using Nibble.Text.Tokenization;

namespace Nibble.Evaluation;

/// <summary>Per-trace negative log-likelihood of the expected answer (and the stop token), teacher-forced.</summary>
public sealed record AnswerLikelihoodResult(double MeanNllPerToken, IReadOnlyList<double> TraceNll, long Tokens);

/// <summary>
/// A continuous companion to exact match on agentic traces: the summed NLL of <c>expected_answer</c> + the stop token
/// after the same prompt as <see cref="AgentTraceAccuracy"/> (rendered with the generation prompt; the answer encoded on
/// its own). Exact match flips on single greedy tokens, so at 512 traces two rows of equal quality differ by ±10 traces;
/// the paired per-trace NLL moves smoothly with quality and resolves much smaller differences. The common prompt
/// prefix is computed once and copied, as in <see cref="AgentTraceAccuracy"/>.
/// </summary>
public static class AnswerLikelihood
{
    public static AnswerLikelihoodResult Evaluate(CausalLM model, HfTokenizer tokenizer, IReadOnlyList<AgentTrace> traces, Func<JsonArray, JsonArray?, string> render,
        string stopToken = "<|im_end|>", CancellationToken cancellationToken = default)
    {
        int stop = tokenizer.TokenToId(stopToken) ?? throw new NibbleException($"The tokenizer has no '{stopToken}' token to end answers with.");
        if (traces.Count == 0) throw new NibbleException("No traces to evaluate.");
        var prompts = traces.Select(t => tokenizer.Encode(render(t.PromptMessages(), t.Tools))).ToList();
        var answers = traces.Select(t => tokenizer.Encode(t.ExpectedAnswer.Trim()).Append(stop).ToArray()).ToList();
        int prefix = AgentTraceAccuracy.CommonPrefixLength(prompts);
        int capacity = prompts.Zip(answers, (p, a) => p.Length + a.Length).Max();
        using var shared = model.CreateCache(capacity);
        if (prefix > 0) model.Forward(prompts[0].AsSpan(0, prefix), shared);
        using var cache = model.CreateCache(capacity);
        var nll = new double[traces.Count];
        long tokens = 0;
        int vocab = model.VocabSize;
        for (int i = 0; i < traces.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            cache.CopyPrefixFrom(shared, prefix);
            var rest = prompts[i].AsSpan(prefix).ToArray().Concat(answers[i]).ToArray();
            var logits = model.Forward(rest, cache).ToArray();
            int first = prompts[i].Length - prefix - 1; // the row whose logits predict the first answer token
            for (int j = 0; j < answers[i].Length; j++)
                nll[i] += LogProbs.Nll(logits.AsSpan((first + j) * vocab, vocab), answers[i][j]);
            tokens += answers[i].Length;
        }
        return new AnswerLikelihoodResult(nll.Sum() / tokens, nll, tokens);
    }
}
