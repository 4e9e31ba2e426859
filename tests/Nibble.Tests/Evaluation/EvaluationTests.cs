using System.Text.Json.Nodes;
using Nibble.Cpu;
using Nibble.Engine;
using Nibble.Evaluation;
using Nibble.Formats;
using Nibble.Models;
using Nibble.Text.Tokenization;

namespace Nibble.Tests.Evaluation;

public class EvaluationTests
{
    [Fact]
    public void Perplexity_over_the_reference_windows_equals_the_transformers_nll()
    {
        using var reference = SafetensorsFile.Open(Path.Combine(TestPaths.BundledNano, "reference_outputs.safetensors"));
        var ids = reference.GetSpan<int>("long_input_ids").ToArray();
        var nll = reference.GetSpan<float>("long_token_nll").ToArray();
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        var result = Perplexity.Evaluate(lm, ids, new WindowOptions { Length = 512 });
        Assert.Equal(4, result.Windows);
        Assert.Equal(4 * 511, result.PredictedTokens);
        double expected = nll.Average(v => (double)v);
        Assert.True(Math.Abs(result.MeanNll - expected) < 2e-4, $"mean NLL {result.MeanNll} vs reference {expected}");
        Assert.Equal(Math.Exp(result.MeanNll), result.Perplexity, 9);
    }

    [Fact]
    public void A_smaller_stride_scores_each_new_token_once()
    {
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        var tokens = Enumerable.Range(0, 300).Select(i => (i * 37) % 8000 + 3).ToArray();
        var result = Perplexity.Evaluate(lm, tokens, new WindowOptions { Length = 128, Stride = 64 });
        // windows start at 0, 64, 128: 127 predictions, then 64 new ones for each later window.
        Assert.Equal(3, result.Windows);
        Assert.Equal(127 + 64 + 64, result.PredictedTokens);
    }

    [Fact]
    public void Documents_are_encoded_separately_and_each_followed_by_endoftext()
    {
        var tok = HfTokenizer.Load(TestPaths.BundledNano);
        var ids = TextCorpus.Tokenize("first doc" + TextCorpus.DocumentSeparator + "second one" + TextCorpus.DocumentSeparator, tok);
        int eot = tok.TokenToId("<|endoftext|>")!.Value;
        Assert.Equal([.. tok.Encode("first doc"), eot, .. tok.Encode("second one"), eot], ids);
        Assert.Equal([0, 10, 20], TextCorpus.WindowStarts(35, 10, 10));
        Assert.Throws<NibbleException>(() => Perplexity.Evaluate(null!, ids, new WindowOptions { Length = 1024 }));
    }

    [Fact]
    public void A_model_against_itself_has_zero_kl_and_full_agreement_and_a_changed_model_does_not()
    {
        using var a = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        using var b = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        var tokens = Enumerable.Range(0, 200).Select(i => (i * 91) % 8000 + 5).ToArray();
        var options = new WindowOptions { Length = 100 };
        var same = Divergence.Evaluate(a, b, tokens, options);
        Assert.Equal(0, same.MeanKl, 9);
        Assert.Equal(1.0, same.Top1Agreement);

        // Perturb one norm weight of the candidate: KL must become positive.
        var norm = b.Layers[1].PostAttentionNorm.Values;
        for (int i = 0; i < norm.Length; i += 3) norm[i] *= 1.5f;
        var changed = Divergence.Evaluate(b, a, tokens, options);
        Assert.True(changed.MeanKl > 1e-4, $"KL {changed.MeanKl}");
        Assert.True(changed.Top1Agreement < 1.0);
        Assert.Equal(same.ReferencePerplexity, changed.ReferencePerplexity, 9);
    }

    [Fact]
    public void Kl_divergence_matches_a_direct_double_computation()
    {
        var rng = new Random(5);
        var p = Enumerable.Range(0, 50).Select(_ => (float)(rng.NextDouble() * 6 - 3)).ToArray();
        var q = Enumerable.Range(0, 50).Select(_ => (float)(rng.NextDouble() * 6 - 3)).ToArray();
        double zp = p.Sum(v => Math.Exp(v)), zq = q.Sum(v => Math.Exp(v));
        double expected = p.Select((v, i) => Math.Exp(v) / zp * (Math.Log(Math.Exp(v) / zp) - Math.Log(Math.Exp(q[i]) / zq))).Sum();
        Assert.Equal(expected, LogProbs.KlDivergence(p, q), 6);
    }

    [Fact]
    public void Trace_accuracy_counts_exact_matches_and_prefix_sharing_gives_the_same_answers_as_plain_generation()
    {
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        var tok = HfTokenizer.Load(TestPaths.BundledNano);
        string Render(JsonArray messages, JsonArray? tools) =>
            "<|im_start|>system\nYou answer questions.<|im_end|>\n" +
            string.Concat(messages.Select(m => $"<|im_start|>{m!["role"]}\n{m["content"]}<|im_end|>\n")) + "<|im_start|>assistant\n";
        JsonArray Conversation(string question) => new(
            new JsonObject { ["role"] = "user", ["content"] = question },
            new JsonObject { ["role"] = "assistant", ["content"] = "unused" });

        string[] questions = ["What is a list?", "What does apt do?", "Define the word gauge."];
        var generator = new Generator(lm, tok);
        var plain = questions.Select(q => generator.Generate(tok.Encode(Render(Conversation(q).Take(1).Select(n => n!.DeepClone()).ToJsonArray(), null)),
            new SamplingOptions { MaxTokens = 24, StopTokenIds = [tok.TokenToId("<|im_end|>")!.Value] }).Text).ToArray();

        var traces = new[]
        {
            new AgentTrace(0, Conversation(questions[0]), null, plain[0]),
            new AgentTrace(1, Conversation(questions[1]), null, plain[1] + " (not what the model says)"),
            new AgentTrace(2, Conversation(questions[2]), null, "  " + plain[2] + "\n"),
        };
        var result = AgentTraceAccuracy.Evaluate(lm, tok, traces, Render, new TraceOptions { MaxNewTokens = 24 });
        Assert.Equal(plain, result.Outcomes.Select(o => o.Generated));
        Assert.Equal([true, false, true], result.Outcomes.Select(o => o.ExactMatch));
        Assert.Equal(2.0 / 3, result.ExactMatch, 9);
    }
}

static class JsonExtensions
{
    public static JsonArray ToJsonArray(this IEnumerable<JsonNode?> nodes) => new(nodes.ToArray());
}
