using Nibble.Cpu;
using Nibble.Evaluation;
using Nibble.Models;
using Nibble.Text.Templates;
using Nibble.Text.Tokenization;

namespace Nibble.Tests.Quantization;

public class AnswerLikelihoodTests
{
    [Fact]
    public void Answer_NLL_with_the_shared_prefix_equals_a_from_scratch_teacher_forced_pass()
    {
        var tokenizer = HfTokenizer.Load(TestPaths.BundledNano);
        var template = ChatTemplate.Load(TestPaths.BundledNano);
        var traces = AgentTrace.Load(Path.Combine(TestPaths.BundledNano, "calibration", "calib_traces_sample.jsonl")).Take(2).ToList();
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        string Render(System.Text.Json.Nodes.JsonArray m, System.Text.Json.Nodes.JsonArray? t) => template.Render(m, t, addGenerationPrompt: true);
        var result = AnswerLikelihood.Evaluate(lm, tokenizer, traces, Render);
        int stop = tokenizer.TokenToId("<|im_end|>")!.Value, vocab = lm.VocabSize;
        long tokens = 0;
        for (int i = 0; i < traces.Count; i++)
        {
            var prompt = tokenizer.Encode(Render(traces[i].PromptMessages(), traces[i].Tools));
            var answer = tokenizer.Encode(traces[i].ExpectedAnswer.Trim()).Append(stop).ToArray();
            var all = prompt.Concat(answer).ToArray();
            using var cache = lm.CreateCache(all.Length);
            var logits = lm.Forward(all, cache).ToArray();
            double nll = 0;
            for (int j = 0; j < answer.Length; j++) nll += LogProbs.Nll(logits.AsSpan((prompt.Length - 1 + j) * vocab, vocab), answer[j]);
            Assert.Equal(nll, result.TraceNll[i], 1e-3 * answer.Length);
            Assert.True(nll > 0);
            tokens += answer.Length;
        }
        Assert.Equal(tokens, result.Tokens);
        Assert.Equal(result.TraceNll.Sum() / tokens, result.MeanNllPerToken, 12);
    }
}
