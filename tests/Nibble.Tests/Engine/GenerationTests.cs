using Nibble.Cpu;
using Nibble.Engine;
using Nibble.Models;
using Nibble.Text.Tokenization;

namespace Nibble.Tests.Engine;

public class GenerationTests
{
    static (CausalLM, Generator) Nano()
    {
        var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        return (lm, new Generator(lm, HfTokenizer.Load(TestPaths.BundledNano)));
    }

    [Fact]
    public void Greedy_cached_decoding_equals_recomputing_the_whole_sequence_each_step()
    {
        var (lm, gen) = Nano();
        using var _ = lm;
        var prompt = gen.Tokenizer.Encode("The Debian package");
        var result = gen.Generate(prompt, new SamplingOptions { MaxTokens = 12, StopTokenIds = [] });
        Assert.Equal(12, result.TokenIds.Length);

        var sequence = prompt.ToList();
        for (int step = 0; step < 12; step++)
        {
            using var cache = lm.CreateCache(sequence.Count);
            var logits = lm.Forward(sequence.ToArray(), cache).ToArray();
            sequence.Add(Sampler.ArgMax(logits.AsSpan((sequence.Count - 1) * lm.VocabSize, lm.VocabSize)));
        }
        Assert.Equal(sequence.Skip(prompt.Length), result.TokenIds);
    }

    [Fact]
    public async Task Streamed_pieces_concatenate_to_the_full_decode_and_a_seed_reproduces_them()
    {
        var (lm, gen) = Nano();
        using var _ = lm;
        var options = new SamplingOptions { Temperature = 1.0f, TopP = 0.9f, Seed = 7, MaxTokens = 40 };
        var pieces = new List<string>();
        await foreach (var piece in gen.GenerateAsync("In Python, a list", options, TestContext.Current.CancellationToken)) pieces.Add(piece);
        var result = gen.Generate(gen.Tokenizer.Encode("In Python, a list"), options);
        Assert.Equal(gen.Tokenizer.Decode(result.TokenIds), string.Concat(pieces));
        Assert.Equal(result.Text, string.Concat(pieces));
        Assert.True(result.TokenIds.Length > 0);
    }

    [Fact]
    public void Generation_stops_at_a_stop_token_without_emitting_it_and_at_max_tokens()
    {
        var (lm, gen) = Nano();
        using var _ = lm;
        var prompt = gen.Tokenizer.Encode("The file system");
        var free = gen.Generate(prompt, new SamplingOptions { MaxTokens = 10, StopTokenIds = [] });
        Assert.Equal(FinishReason.Length, free.FinishReason);
        Assert.Equal(10, free.TokenIds.Length);
        int stopAt = free.TokenIds[4];
        var stopped = gen.Generate(prompt, new SamplingOptions { MaxTokens = 10, StopTokenIds = [stopAt] });
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        int first = Array.IndexOf(free.TokenIds, stopAt);
        Assert.Equal(free.TokenIds.Take(first), stopped.TokenIds);
    }

    [Fact]
    public void The_default_stop_ids_include_the_models_im_end()
    {
        var (lm, gen) = Nano();
        using var _ = lm;
        Assert.Contains(2, gen.DefaultStopTokenIds);
    }
}

public class SamplerTests
{
    static float[] Logits(int seed, int n = 500)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
    }

    [Fact]
    public void Temperature_zero_and_top_k_one_both_pick_the_argmax()
    {
        var logits = Logits(1);
        int best = Array.IndexOf(logits, logits.Max());
        Assert.Equal(best, new Sampler(SamplingOptions.Greedy).Sample(logits));
        var topOne = new Sampler(new SamplingOptions { Temperature = 2, TopK = 1, Seed = 3 });
        for (int i = 0; i < 20; i++) Assert.Equal(best, topOne.Sample(logits));
    }

    [Fact]
    public void Top_p_keeps_only_the_nucleus_and_top_k_only_the_k_best()
    {
        var logits = Logits(2);
        var order = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ToArray();
        var probs = logits.Select(v => Math.Exp(v - logits.Max())).ToArray();
        double z = probs.Sum(), cum = 0;
        var nucleus = new HashSet<int>();
        foreach (var i in order) { nucleus.Add(i); cum += probs[i] / z; if (cum >= 0.5) break; }
        var topP = new Sampler(new SamplingOptions { Temperature = 1, TopP = 0.5f, Seed = 1 });
        var topK = new Sampler(new SamplingOptions { Temperature = 1, TopK = 5, Seed = 1 });
        var seen = new HashSet<int>();
        for (int i = 0; i < 400; i++)
        {
            int p = topP.Sample(logits);
            Assert.Contains(p, nucleus);
            seen.Add(p);
            Assert.Contains(topK.Sample(logits), order.Take(5));
        }
        Assert.True(seen.Count > 1, "top-p sampling never varied");
    }

    [Fact]
    public void The_same_seed_gives_the_same_samples()
    {
        var logits = Logits(3);
        var a = new Sampler(new SamplingOptions { Temperature = 1, Seed = 42 });
        var b = new Sampler(new SamplingOptions { Temperature = 1, Seed = 42 });
        for (int i = 0; i < 50; i++) Assert.Equal(a.Sample(logits), b.Sample(logits));
    }

    [Fact]
    public void Invalid_options_are_refused_with_a_clear_error()
    {
        Assert.Throws<NibbleException>(() => new Sampler(new SamplingOptions { TopP = 0 }));
        Assert.Throws<NibbleException>(() => new Sampler(new SamplingOptions { Temperature = -1 }));
    }
}

public class ChatGenerationTests
{
    [Fact]
    public async Task A_chat_reply_is_the_continuation_of_the_rendered_template_and_ends_before_im_end()
    {
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        var tok = HfTokenizer.Load(TestPaths.BundledNano);
        var gen = new Generator(lm, tok);
        var template = Nibble.Text.Templates.ChatTemplate.Load(TestPaths.BundledNano);
        var messages = (System.Text.Json.Nodes.JsonArray)System.Text.Json.Nodes.JsonNode.Parse("""[{"role":"user","content":"What does the word gauge mean?"}]""")!;
        var prompt = gen.ChatPrompt(template, messages);
        Assert.Equal(tok.Encode("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat does the word gauge mean?<|im_end|>\n<|im_start|>assistant\n"), prompt);
        var options = new SamplingOptions { MaxTokens = 64 };
        var streamed = new List<string>();
        await foreach (var piece in gen.ChatAsync(template, messages, null, options, TestContext.Current.CancellationToken)) streamed.Add(piece);
        var direct = gen.Generate(prompt, options);
        Assert.Equal(direct.Text, string.Concat(streamed));
        Assert.DoesNotContain("<|im_end|>", direct.Text);
        Assert.Equal(FinishReason.Stop, direct.FinishReason);
    }
}
