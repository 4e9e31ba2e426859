using System.Text.Json;
using Nibble.Text.Tokenization;

namespace Nibble.Tests.Text;

/// <summary>
/// SentencePiece-style BPE with byte fallback, in the two tokenizer.json layouts Llama 2 / Mistral 7B ship:
/// the legacy one (normalizer Prepend "▁" + Replace " " → "▁", decoder Replace/ByteFallback/Fuse/Strip) and the
/// Metaspace one. Expected ids follow the tokenizers library's rules (merge ranks, per-segment Prepend, bytes for
/// characters outside the vocabulary); no reference run of that library was available here.
/// </summary>
public class SentencePieceBpeTests
{
    static Dictionary<string, int> Vocab()
    {
        var v = new Dictionary<string, int> { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++) v[$"<0x{b:X2}>"] = v.Count;
        foreach (var t in new[] { "▁", "h", "e", "l", "o", "w", "r", "d", "▁h", "▁he", "ll", "llo", "▁hello", "▁w", "▁wor", "▁world", "or", "ld" })
            v[t] = v.Count;
        return v;
    }

    static readonly string[] Merges = ["▁ h", "▁h e", "l l", "ll o", "▁he llo", "▁ w", "o r", "▁w or", "l d", "▁wor ld"];

    static HfTokenizer Legacy(TestPaths.TempDir dir, Dictionary<string, int> vocab)
    {
        var json = new Dictionary<string, object?>
        {
            ["added_tokens"] = new object[] { new { id = 0, content = "<unk>", special = true }, new { id = 1, content = "<s>", special = true }, new { id = 2, content = "</s>", special = true } },
            ["normalizer"] = new { type = "Sequence", normalizers = new object[] { new { type = "Prepend", prepend = "▁" }, new { type = "Replace", pattern = new { String = " " }, content = "▁" } } },
            ["pre_tokenizer"] = null,
            ["post_processor"] = new
            {
                type = "TemplateProcessing",
                single = new object[] { new { SpecialToken = new { id = "<s>", type_id = 0 } }, new { Sequence = new { id = "A", type_id = 0 } } },
                special_tokens = new Dictionary<string, object> { ["<s>"] = new { id = "<s>", ids = new[] { 1 } } },
            },
            ["decoder"] = new
            {
                type = "Sequence",
                decoders = new object[]
                {
                    new { type = "Replace", pattern = new { String = "▁" }, content = " " }, new { type = "ByteFallback" }, new { type = "Fuse" },
                    new { type = "Strip", content = " ", start = 1, stop = 0 },
                },
            },
            ["model"] = new { type = "BPE", unk_token = "<unk>", fuse_unk = true, byte_fallback = true, vocab, merges = Merges },
        };
        File.WriteAllText(dir.File("tokenizer.json"), JsonSerializer.Serialize(json));
        return HfTokenizer.Load(dir.Path);
    }

    [Fact]
    public void Legacy_llama2_layout_encodes_with_merge_ranks_and_byte_fallback()
    {
        using var dir = TestPaths.CreateTempDir();
        var v = Vocab();
        var tok = Legacy(dir, v);
        Assert.Equal([v["▁hello"], v["▁world"]], tok.Encode("hello world"));
        Assert.Equal([1, v["▁hello"]], tok.Encode("hello", addSpecialTokens: true));
        // 😀 is not in the vocabulary: its four UTF-8 bytes.
        Assert.Equal([v["▁hello"], v["▁"], v["<0xF0>"], v["<0x9F>"], v["<0x98>"], v["<0x80>"]], tok.Encode("hello 😀"));
        // Prepend applies to every segment between added tokens (the "legacy" behaviour).
        Assert.Equal([v["▁hello"], 2, v["▁hello"]], tok.Encode("hello</s>hello"));
    }

    [Fact]
    public void Legacy_llama2_layout_decodes_through_the_decoder_chain()
    {
        using var dir = TestPaths.CreateTempDir();
        var v = Vocab();
        var tok = Legacy(dir, v);
        Assert.Equal("hello 😀", tok.Decode(tok.Encode("hello 😀")));
        Assert.Equal("<s> hello world", tok.Decode(tok.Encode("hello world", addSpecialTokens: true)));
        Assert.Equal("hello world", tok.Decode(tok.Encode("hello world", addSpecialTokens: true), skipSpecialTokens: true));
        // An incomplete byte run decodes to one U+FFFD per byte token.
        Assert.Equal("hello \uFFFD\uFFFD", tok.Decode([v["▁hello"], v["▁"], v["<0xF0>"], v["<0x9F>"]]));

        var stream = tok.CreateStreamingDecoder();
        int[] ids = tok.Encode("hello 😀 world");
        var pieces = ids.Select(stream.Push).ToList();
        pieces.Add(stream.Flush());
        Assert.Equal(tok.Decode(ids), string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
    }

    [Fact]
    public void Without_byte_tokens_unknown_characters_fuse_into_one_unk()
    {
        using var dir = TestPaths.CreateTempDir();
        var v = Vocab().Where(kv => !kv.Key.StartsWith("<0x")).Select((kv, i) => (kv.Key, i)).ToDictionary(x => x.Key, x => x.i);
        var tok = Legacy(dir, v);
        Assert.Equal([v["▁hello"], v["▁"], 0, v["▁hello"]], tok.Encode("hello 日本 hello"));
        var (ids, offsets) = tok.EncodeWithOffsets("hello 日本 hello");
        Assert.Equal((6, 8), offsets[Array.IndexOf(ids, 0)]);
    }

    [Fact]
    public void Metaspace_layout_prepends_only_at_the_start_of_the_text_with_prepend_scheme_first()
    {
        using var dir = TestPaths.CreateTempDir();
        var v = Vocab();
        var json = new Dictionary<string, object?>
        {
            ["added_tokens"] = new object[] { new { id = 2, content = "</s>", special = true } },
            ["normalizer"] = null,
            ["pre_tokenizer"] = new { type = "Metaspace", replacement = "▁", prepend_scheme = "first", split = false },
            ["decoder"] = new { type = "Metaspace", replacement = "▁", prepend_scheme = "first", split = false },
            ["model"] = new { type = "BPE", unk_token = "<unk>", fuse_unk = true, byte_fallback = true, vocab = v, merges = Merges },
        };
        File.WriteAllText(dir.File("tokenizer.json"), JsonSerializer.Serialize(json));
        var tok = HfTokenizer.Load(dir.Path);
        Assert.Equal([v["▁hello"], v["▁world"]], tok.Encode("hello world"));
        Assert.Equal([2, v["h"], v["e"], v["llo"]], tok.Encode("</s>hello"));
        Assert.Equal("hello world", tok.Decode(tok.Encode("hello world")));
    }
}
