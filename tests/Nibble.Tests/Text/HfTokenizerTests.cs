using System.Text.Json;
using Nibble.Text.Tokenization;

namespace Nibble.Tests.Text;

public class HfTokenizerTests
{
    static readonly Lazy<HfTokenizer> Nano = new(() => HfTokenizer.Load(TestPaths.BundledNano));

    [Fact]
    public void Every_shared_tokenizer_case_encodes_and_decodes_exactly_like_hugging_face_tokenizers()
    {
        string path = TestPaths.RequireSharedData("tokenizer_cases.jsonl");
        var tok = Nano.Value;
        var failures = new List<string>();
        int cases = 0;
        foreach (string line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            using var doc = JsonDocument.Parse(line);
            string text = doc.RootElement.GetProperty("text").GetString()!;
            int[] expected = doc.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            string decoded = doc.RootElement.GetProperty("decoded").GetString()!;
            cases++;
            int[] ids = tok.Encode(text);
            if (!ids.SequenceEqual(expected))
            {
                int at = Enumerable.Range(0, Math.Min(ids.Length, expected.Length)).FirstOrDefault(i => ids[i] != expected[i], Math.Min(ids.Length, expected.Length));
                failures.Add($"case {cases}: encode differs at token {at} ({ids.Length} vs {expected.Length} tokens) for {JsonSerializer.Serialize(text[..Math.Min(60, text.Length)])}");
            }
            string back = tok.Decode(expected);
            if (back != decoded) failures.Add($"case {cases}: decode differs for {JsonSerializer.Serialize(text[..Math.Min(60, text.Length)])}");
        }
        Assert.Equal(76, cases);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Special_tokens_in_text_are_matched_as_whole_tokens_and_eos_comes_from_the_config()
    {
        var tok = Nano.Value;
        Assert.Equal(2, tok.TokenToId("<|im_end|>"));
        Assert.Equal([2], tok.EosTokenIds);
        Assert.Equal("<|im_end|>", tok.EosToken);
        int[] ids = tok.Encode("x<|im_start|>user");
        Assert.Equal(1, ids[1]);
        Assert.DoesNotContain(1, tok.Encode("x<|im_start |>user"));
        Assert.Equal("xuser", tok.Decode(ids, skipSpecialTokens: true));
    }

    [Fact]
    public void Streaming_decoder_returns_only_complete_characters_and_joins_to_the_full_decode()
    {
        var tok = Nano.Value;
        const string text = "naïve 😀 日本語 <|im_end|> ok";
        int[] ids = tok.Encode(text);
        var stream = tok.CreateStreamingDecoder();
        var pieces = ids.Select(stream.Push).ToList();
        pieces.Add(stream.Flush());
        Assert.Equal(text, string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
        // The emoji takes several byte-level tokens: some pushes must have returned nothing.
        Assert.Contains(pieces.Take(ids.Length), p => p.Length == 0);
    }

    [Fact]
    public void Token_offsets_cover_the_text_in_order()
    {
        var tok = Nano.Value;
        const string text = "Hello wörld 😀!<|im_end|>\n  end";
        var (ids, offsets) = tok.EncodeWithOffsets(text);
        Assert.Equal(tok.Encode(text), ids);
        int cursor = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            Assert.Equal(cursor, offsets[i].Start);
            Assert.True(offsets[i].End >= offsets[i].Start);
            string piece = text[offsets[i].Start..offsets[i].End];
            string alone = tok.Decode([ids[i]]);
            if (!alone.Contains('\uFFFD')) Assert.Equal(alone, piece);
            cursor = offsets[i].End;
        }
        Assert.Equal(text.Length, cursor);
    }

    [Fact]
    public void Malformed_tokenizer_json_names_the_file_and_position()
    {
        using var dir = TestPaths.CreateTempDir();
        File.WriteAllText(dir.File("tokenizer.json"), "{\n  \"model\": {\"type\": \"BPE\",\n  \"vocab\": {\"a\": 0,, }\n}");
        var e = Assert.Throws<TokenizerJsonException>(() => HfTokenizer.Load(dir.Path));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains("line 3", e.Message);
    }

    [Fact]
    public void Unsupported_tokenizer_models_are_refused_by_name()
    {
        using var dir = TestPaths.CreateTempDir();
        File.WriteAllText(dir.File("tokenizer.json"), """{"model": {"type": "Unigram", "vocab": []}}""");
        var e = Assert.Throws<TokenizerJsonException>(() => HfTokenizer.Load(dir.Path));
        Assert.Contains("Unigram", e.Message);
    }

    [Fact]
    public void Split_pretokenizer_sequences_and_array_merges_and_post_processor_bos_are_read()
    {
        // A tiny Llama-3-style tokenizer.json: Split(regex) then ByteLevel(use_regex=false), array merges,
        // TemplateProcessing adding a begin token.
        using var dir = TestPaths.CreateTempDir();
        var vocab = new Dictionary<string, int>();
        foreach (char c in "abcĠ") vocab[c.ToString()] = vocab.Count;
        vocab["ab"] = vocab.Count; vocab["Ġa"] = vocab.Count; vocab["Ġab"] = vocab.Count;
        var json = new
        {
            added_tokens = new object[] { new { id = 10, content = "<|bot|>", special = true } },
            normalizer = (object?)null,
            pre_tokenizer = new
            {
                type = "Sequence",
                pretokenizers = new object[]
                {
                    new { type = "Split", pattern = new { Regex = @" ?\p{L}+|\s+" }, behavior = "Isolated", invert = false },
                    new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = false },
                },
            },
            post_processor = new
            {
                type = "TemplateProcessing",
                single = new object[] { new { SpecialToken = new { id = "<|bot|>", type_id = 0 } }, new { Sequence = new { id = "A", type_id = 0 } } },
                special_tokens = new Dictionary<string, object> { ["<|bot|>"] = new { id = "<|bot|>", ids = new[] { 10 } } },
            },
            decoder = new { type = "ByteLevel" },
            model = new { type = "BPE", vocab, merges = new[] { new[] { "Ġ", "a" }, new[] { "a", "b" }, new[] { "Ġa", "b" } } },
        };
        File.WriteAllText(dir.File("tokenizer.json"), JsonSerializer.Serialize(json));
        var tok = HfTokenizer.Load(dir.Path);
        // Merge ranks decide: "Ġ a" (rank 0) beats "a b" (rank 1) inside " abc".
        Assert.Equal([vocab["ab"], vocab["Ġab"], vocab["c"]], tok.Encode("ab abc"));
        Assert.Equal([10, vocab["ab"]], tok.Encode("ab", addSpecialTokens: true));
        Assert.Equal("ab abc", tok.Decode(tok.Encode("ab abc")));
    }

    static HfTokenizer Tiny(TestPaths.TempDir dir, object? normalizer, bool ignoreMerges, string[][] merges, params string[] extraVocab)
    {
        var vocab = new Dictionary<string, int>();
        for (int b = 0; b < 256; b++) vocab[ByteLevelAlphabet.ToChar((byte)b).ToString()] = vocab.Count;
        foreach (var v in extraVocab) vocab[v] = vocab.Count;
        var json = new
        {
            added_tokens = new object[] { new { id = 1000, content = "<sep>", special = true, lstrip = true, rstrip = false } },
            normalizer,
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, use_regex = true },
            decoder = new { type = "ByteLevel" },
            model = new { type = "BPE", vocab, merges = merges.Select(m => m[0] + " " + m[1]).ToArray(), ignore_merges = ignoreMerges },
        };
        File.WriteAllText(dir.File("tokenizer.json"), JsonSerializer.Serialize(json));
        return HfTokenizer.Load(dir.Path);
    }

    [Fact]
    public void Nfc_normalizer_makes_decomposed_and_composed_text_encode_alike()
    {
        using var dir = TestPaths.CreateTempDir();
        var tok = Tiny(dir, new { type = "NFC" }, false, []);
        Assert.Equal(tok.Encode("caf\u00e9"), tok.Encode("cafe\u0301"));
        Assert.NotEqual(tok.Encode("e\u0301").Length, "e\u0301".Length + 1); // é is 2 UTF-8 bytes after NFC, 3 before
    }

    [Fact]
    public void Ignore_merges_takes_a_whole_word_from_the_vocabulary()
    {
        using var dir = TestPaths.CreateTempDir();
        var plain = Tiny(dir, null, false, [["a", "b"]], "ab", "abc");
        Assert.Equal([plain.TokenToId("ab")!.Value, plain.TokenToId("c")!.Value], plain.Encode("abc"));
        using var dir2 = TestPaths.CreateTempDir();
        var whole = Tiny(dir2, null, true, [["a", "b"]], "ab", "abc");
        Assert.Equal([whole.TokenToId("abc")!.Value], whole.Encode("abc"));
    }

    [Fact]
    public void Lstrip_added_tokens_swallow_the_whitespace_before_them()
    {
        using var dir = TestPaths.CreateTempDir();
        var tok = Tiny(dir, null, false, []);
        Assert.Equal([tok.TokenToId("a")!.Value, 1000, tok.TokenToId("b")!.Value], tok.Encode("a  <sep>b"));
        Assert.Equal("a<sep>b", tok.Decode(tok.Encode("a  <sep>b")));
    }

    [Fact]
    public void Every_eval_document_round_trips_through_encode_and_decode()
    {
        string text = File.ReadAllText(TestPaths.RequireSharedData("eval_text.txt"));
        var tok = Nano.Value;
        int tokens = 0;
        foreach (string doc in text.Split("\n<|endoftext|>\n"))
        {
            int[] ids = tok.Encode(doc);
            Assert.DoesNotContain(0, ids); // the separator never appears inside a document
            Assert.Equal(doc, tok.Decode(ids));
            tokens += ids.Length;
        }
        Assert.True(tokens > 50_000);
    }

    [Fact]
    public void Concurrent_encoding_gives_the_same_ids_as_sequential_encoding()
    {
        var tok = HfTokenizer.Load(TestPaths.BundledNano); // fresh instance: cold BPE cache
        var rng = new Random(1234);
        string alphabet = "abcdefghij klmnop\nqrstuvwxyz.,;:é😀日本<|im_end|>0123456789";
        var texts = Enumerable.Range(0, 64).Select(_ => new string(Enumerable.Range(0, rng.Next(50, 400)).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray())).ToArray();
        var parallel = new int[texts.Length][];
        Parallel.For(0, texts.Length, i => parallel[i] = tok.Encode(texts[i]));
        for (int i = 0; i < texts.Length; i++) Assert.Equal(Nano.Value.Encode(texts[i]), parallel[i]);
    }
}
