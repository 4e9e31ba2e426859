using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Nibble.Text.Tokenization;

/// <summary>
/// What Nibble understands of a Hugging Face tokenizer.json: a BPE model (vocab, merges), added tokens,
/// the normalizer, the pre-tokenizer chain, the post-processor's special tokens and the decoder.
/// Anything else is refused at load time with the feature's name, never silently approximated.
/// </summary>
internal sealed class TokenizerSpec
{
    public required Dictionary<string, int> Vocab { get; init; }
    public required List<string> Merges { get; init; }
    public required List<AddedToken> AddedTokens { get; init; }
    /// <summary>Normalizer steps in order: NFC, Prepend (text), Replace (from, to).</summary>
    public required List<NormalizerStep> Normalizers { get; init; }
    public bool ByteLevel { get; init; }
    /// <summary>SentencePiece-style BPE: characters missing from the vocabulary become &lt;0xXX&gt; byte tokens.</summary>
    public bool ByteFallback { get; init; }
    public bool FuseUnknown { get; init; }
    /// <summary>The Metaspace pre-tokenizer (newer Llama 2 / Mistral files), or null.</summary>
    public MetaspaceOptions? Metaspace { get; init; }
    /// <summary>Decoder steps for non-byte-level models (Replace, ByteFallback, Fuse, Strip, Metaspace), in order.</summary>
    public required List<DecoderStep> Decoders { get; init; }
    public bool AddPrefixSpace { get; init; }
    public bool IgnoreMerges { get; init; }
    public string? UnknownToken { get; init; }
    public required List<(Regex Regex, bool Removed)> SplitStages { get; init; }
    public required List<PostToken> PrefixTokens { get; init; }
    public required List<PostToken> SuffixTokens { get; init; }

    public sealed record NormalizerStep(string Type, string A = "", string B = "");
    public sealed record DecoderStep(string Type, string A = "", string B = "", int Start = 0, int Stop = 0);
    /// <summary>Metaspace: spaces become <paramref name="Replacement"/>; prepend_scheme always / first / never; split at each replacement.</summary>
    public sealed record MetaspaceOptions(char Replacement, string PrependScheme, bool Split);

    /// <summary>A special token the post-processor (TemplateProcessing) puts around a single sequence.</summary>
    public readonly record struct PostToken(string Content, int Id);

    public static TokenizerSpec Parse(string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = false }); }
        catch (JsonException e)
        {
            throw new TokenizerJsonException($"{path} is not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}: {e.Message.Split(". ")[0]}; re-download tokenizer.json from the model's repository.", e);
        }
        using (doc)
        {
            try { return FromJson(doc.RootElement, path); }
            catch (InvalidOperationException e) { throw Bad(path, $"has an unexpected value type ({e.Message})"); }
            catch (KeyNotFoundException e) { throw Bad(path, $"lacks a required field ({e.Message})"); }
        }
    }

    static TokenizerJsonException Bad(string path, string what) =>
        new($"{path} {what}; check that it is a Hugging Face tokenizers file (tokenizer.json).");

    static TokenizerSpec FromJson(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Bad(path, "is not a JSON object");
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object) throw Bad(path, "has no \"model\" object");
        string type = model.TryGetProperty("type", out var t) ? t.GetString() ?? "" : (model.TryGetProperty("merges", out _) ? "BPE" : "");
        if (type != "BPE")
            throw new TokenizerJsonException($"{path}: tokenizer model type '{type}' is not supported (only BPE); use a model with a byte-level BPE tokenizer.");
        foreach (var opt in new[] { "continuing_subword_prefix", "end_of_word_suffix", "dropout" })
            if (model.TryGetProperty(opt, out var v) && v.ValueKind is not JsonValueKind.Null)
                throw new TokenizerJsonException($"{path}: BPE option '{opt}' is not supported; use a byte-level BPE model without it.");

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in model.GetProperty("vocab").EnumerateObject()) vocab[p.Name] = p.Value.GetInt32();

        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var ms))
            foreach (var m in ms.EnumerateArray())
            {
                if (m.ValueKind == JsonValueKind.String) { merges.Add(m.GetString()!); continue; }
                if (m.ValueKind != JsonValueKind.Array || m.GetArrayLength() != 2) throw Bad(path, $"has a merge that is neither \"a b\" nor [\"a\", \"b\"] (entry {merges.Count})");
                string a = m[0].GetString()!, b = m[1].GetString()!;
                if (a.Contains(' ') || b.Contains(' '))
                    throw new TokenizerJsonException($"{path}: merge {merges.Count} has a token containing a space, which the BPE library's \"a b\" merge form cannot express; use a byte-level BPE model.");
                merges.Add(a + " " + b);
            }

        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
            foreach (var a in at.EnumerateArray())
                added.Add(new AddedToken(a.GetProperty("id").GetInt32(), a.GetProperty("content").GetString()!,
                    Bool(a, "special"), Bool(a, "lstrip"), Bool(a, "rstrip"), Bool(a, "normalized"), Bool(a, "single_word")));

        var stages = new List<(Regex, bool)>();
        bool byteLevel = false, prefixSpace = false;
        MetaspaceOptions? metaspace = null;
        if (root.TryGetProperty("pre_tokenizer", out var pre) && pre.ValueKind == JsonValueKind.Object)
            ReadPreTokenizer(pre, path, stages, ref byteLevel, ref prefixSpace, ref metaspace);

        var normalizers = new List<NormalizerStep>();
        if (root.TryGetProperty("normalizer", out var n) && n.ValueKind == JsonValueKind.Object) ReadNormalizer(n, path, normalizers);

        var decoders = new List<DecoderStep>();
        bool byteLevelDecoder = false;
        if (root.TryGetProperty("decoder", out var dec) && dec.ValueKind == JsonValueKind.Object)
            ReadDecoder(dec, path, decoders, ref byteLevelDecoder);
        bool byteFallback = Bool(model, "byte_fallback");
        if (byteLevel != byteLevelDecoder)
            throw new TokenizerJsonException($"{path}: a ByteLevel pre-tokenizer needs the ByteLevel decoder (and the reverse); this mix is not supported.");
        if (!byteLevel && !byteFallback)
            throw new TokenizerJsonException($"{path}: only byte-level BPE (GPT-2, Llama 3, Qwen) and SentencePiece-style BPE with byte_fallback (Llama 2, Mistral 7B) are supported; this BPE is neither.");
        if (byteFallback)
            foreach (var m in merges)
                if (m.StartsWith("<0x", StringComparison.Ordinal) || m.Contains(" <0x", StringComparison.Ordinal))
                    throw new TokenizerJsonException($"{path}: a merge involves a byte-fallback token ({m}), which Nibble's byte-fallback handling does not support.");

        var prefix = new List<PostToken>();
        var suffix = new List<PostToken>();
        if (root.TryGetProperty("post_processor", out var post) && post.ValueKind == JsonValueKind.Object)
            ReadPostProcessor(post, path, prefix, suffix);

        return new TokenizerSpec
        {
            Vocab = vocab, Merges = merges, AddedTokens = added, Normalizers = normalizers, ByteLevel = byteLevel,
            ByteFallback = byteFallback, FuseUnknown = Bool(model, "fuse_unk"), Metaspace = metaspace, Decoders = decoders,
            AddPrefixSpace = prefixSpace, IgnoreMerges = Bool(model, "ignore_merges"),
            UnknownToken = model.TryGetProperty("unk_token", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null,
            SplitStages = stages, PrefixTokens = prefix, SuffixTokens = suffix,
        };
    }

    static bool Bool(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;

    static void ReadPreTokenizer(JsonElement pre, string path, List<(Regex, bool)> stages, ref bool byteLevel, ref bool prefixSpace, ref MetaspaceOptions? metaspace)
    {
        string type = pre.GetProperty("type").GetString() ?? "";
        switch (type)
        {
            case "Sequence":
                foreach (var p in pre.GetProperty("pretokenizers").EnumerateArray()) ReadPreTokenizer(p, path, stages, ref byteLevel, ref prefixSpace, ref metaspace);
                break;
            case "ByteLevel":
                byteLevel = true;
                prefixSpace = Bool(pre, "add_prefix_space");
                // use_regex defaults to true in the tokenizers library.
                if (!pre.TryGetProperty("use_regex", out var ur) || ur.ValueKind != JsonValueKind.False)
                    stages.Add((new Regex(SplitPreTokenizer.Gpt2Pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant), false));
                break;
            case "Split":
            {
                var pattern = pre.GetProperty("pattern");
                string regex = pattern.TryGetProperty("Regex", out var r) ? r.GetString()!
                    : Regex.Escape(pattern.GetProperty("String").GetString()!);
                string behavior = pre.TryGetProperty("behavior", out var b) ? b.GetString() ?? "Isolated" : "Isolated";
                if (Bool(pre, "invert") || behavior is not ("Isolated" or "Removed"))
                    throw new TokenizerJsonException($"{path}: Split pre-tokenizer behavior '{behavior}'{(Bool(pre, "invert") ? " with invert" : "")} is not supported (only Isolated or Removed).");
                Regex compiled;
                try { compiled = new Regex(regex, RegexOptions.Compiled | RegexOptions.CultureInvariant); }
                catch (ArgumentException e) { throw new TokenizerJsonException($"{path}: the Split pre-tokenizer regex cannot be compiled by .NET ({e.Message}).", e); }
                stages.Add((compiled, behavior == "Removed"));
                break;
            }
            case "Metaspace":
            {
                string repl = pre.TryGetProperty("replacement", out var r) ? r.GetString() ?? "\u2581" : "\u2581";
                string scheme = pre.TryGetProperty("prepend_scheme", out var ps) ? ps.GetString() ?? "always"
                    : (pre.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.False ? "never" : "always");
                bool split = !pre.TryGetProperty("split", out var sp) || sp.ValueKind != JsonValueKind.False;
                if (repl.Length != 1) throw new TokenizerJsonException($"{path}: Metaspace replacement must be one character.");
                metaspace = new MetaspaceOptions(repl[0], scheme, split);
                break;
            }
            case "Digits":
                stages.Add((new Regex(Bool(pre, "individual_digits") ? @"\p{N}" : @"\p{N}+", RegexOptions.Compiled), false));
                break;
            default:
                throw new TokenizerJsonException($"{path}: pre-tokenizer '{type}' is not supported (ByteLevel, Split, Digits, Metaspace and Sequence are).");
        }
    }

    static void ReadNormalizer(JsonElement n, string path, List<NormalizerStep> steps)
    {
        string type = n.GetProperty("type").GetString() ?? "";
        switch (type)
        {
            // Only NFC has built-in tables (UnicodeNfc): string.Normalize is a no-op under InvariantGlobalization.
            case "NFC": steps.Add(new NormalizerStep("NFC")); return;
            case "Prepend": steps.Add(new NormalizerStep("Prepend", n.GetProperty("prepend").GetString() ?? "")); return;
            case "Replace":
            {
                var pattern = n.GetProperty("pattern");
                if (!pattern.TryGetProperty("String", out var from))
                    throw new TokenizerJsonException($"{path}: a Replace normalizer with a regex pattern is not supported (only a plain String).");
                steps.Add(new NormalizerStep("Replace", from.GetString() ?? "", n.GetProperty("content").GetString() ?? ""));
                return;
            }
            case "Sequence":
                foreach (var inner in n.GetProperty("normalizers").EnumerateArray()) ReadNormalizer(inner, path, steps);
                return;
            default:
                throw new TokenizerJsonException($"{path}: normalizer '{type}' is not supported (none, NFC, Prepend, Replace and Sequence are).");
        }
    }

    static void ReadDecoder(JsonElement d, string path, List<DecoderStep> steps, ref bool byteLevel)
    {
        string type = d.GetProperty("type").GetString() ?? "";
        switch (type)
        {
            case "ByteLevel": byteLevel = true; return;
            case "Sequence":
                foreach (var inner in d.GetProperty("decoders").EnumerateArray()) ReadDecoder(inner, path, steps, ref byteLevel);
                return;
            case "Replace":
            {
                var pattern = d.GetProperty("pattern");
                if (!pattern.TryGetProperty("String", out var from))
                    throw new TokenizerJsonException($"{path}: a Replace decoder with a regex pattern is not supported (only a plain String).");
                steps.Add(new DecoderStep("Replace", from.GetString() ?? "", d.GetProperty("content").GetString() ?? ""));
                return;
            }
            case "ByteFallback" or "Fuse": steps.Add(new DecoderStep(type)); return;
            case "Strip":
                steps.Add(new DecoderStep("Strip", d.GetProperty("content").GetString() ?? " ", "",
                    d.TryGetProperty("start", out var st) ? st.GetInt32() : 0, d.TryGetProperty("stop", out var sp) ? sp.GetInt32() : 0));
                return;
            case "Metaspace":
            {
                string repl = d.TryGetProperty("replacement", out var r) ? r.GetString() ?? "\u2581" : "\u2581";
                string scheme = d.TryGetProperty("prepend_scheme", out var ps) ? ps.GetString() ?? "always"
                    : (d.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.False ? "never" : "always");
                steps.Add(new DecoderStep("Metaspace", repl, scheme));
                return;
            }
            default:
                throw new TokenizerJsonException($"{path}: decoder '{type}' is not supported (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence are).");
        }
    }

    static void ReadPostProcessor(JsonElement post, string path, List<PostToken> prefix, List<PostToken> suffix)
    {
        string type = post.GetProperty("type").GetString() ?? "";
        switch (type)
        {
            case "ByteLevel": return; // only adjusts offsets
            case "Sequence":
                foreach (var p in post.GetProperty("processors").EnumerateArray()) ReadPostProcessor(p, path, prefix, suffix);
                return;
            case "TemplateProcessing":
            {
                var specials = post.GetProperty("special_tokens");
                bool seenSequence = false;
                foreach (var item in post.GetProperty("single").EnumerateArray())
                {
                    if (item.TryGetProperty("Sequence", out _)) { seenSequence = true; continue; }
                    string id = item.GetProperty("SpecialToken").GetProperty("id").GetString()!;
                    var ids = specials.GetProperty(id).GetProperty("ids");
                    foreach (var x in ids.EnumerateArray()) (seenSequence ? suffix : prefix).Add(new PostToken(id, x.GetInt32()));
                }
                return;
            }
            default:
                throw new TokenizerJsonException($"{path}: post-processor '{type}' is not supported (ByteLevel, TemplateProcessing, Sequence are).");
        }
    }
}
