using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace Nibble.Text.Tokenization;

/// <summary>
/// A Hugging Face model folder's tokenizer (tokenizer.json + tokenizer_config.json + generation_config.json),
/// encoding and decoding exactly as the Hugging Face tokenizers library does for byte-level BPE models
/// (GPT-2, Llama 3, Qwen 2/2.5/3, Mistral-Nemo). The merges run in Microsoft.ML.Tokenizers' BpeTokenizer;
/// Nibble does the parts the library cannot express from tokenizer.json: added-token matching, the Split
/// pre-tokenizer chain, <c>ignore_merges</c>, post-processor tokens and the ByteLevel decoder.
/// </summary>
public sealed class HfTokenizer
{
    readonly TokenizerSpec _spec;
    readonly BpeTokenizer _bpe;
    readonly SplitPreTokenizer _preTokenizer;
    readonly AddedTokenSplitter _splitter;
    readonly string[] _idToToken;
    readonly Dictionary<int, AddedToken> _addedById;
    readonly Dictionary<string, int> _tokenToId;
    readonly int[] _byteTokens = new int[256];   // id of <0xXX> for each byte, -1 when absent
    readonly int? _unknownId;

    HfTokenizer(TokenizerSpec spec)
    {
        _spec = spec;
        _bpe = BpeTokenizer.Create(new BpeOptions(spec.Vocab)
        {
            Merges = spec.Merges,
            PreTokenizer = WholeTextPreTokenizer.Instance,
            UnknownToken = spec.UnknownToken,
        });
        _preTokenizer = new SplitPreTokenizer(spec.SplitStages);
        _splitter = new AddedTokenSplitter(spec.AddedTokens);
        _addedById = spec.AddedTokens.ToDictionary(t => t.Id);
        _tokenToId = new Dictionary<string, int>(spec.Vocab, StringComparer.Ordinal);
        foreach (var t in spec.AddedTokens) _tokenToId[t.Content] = t.Id;
        int size = _tokenToId.Values.DefaultIfEmpty(-1).Max() + 1;
        _idToToken = new string[size];
        foreach (var (token, id) in spec.Vocab) _idToToken[id] = token;
        foreach (var t in spec.AddedTokens) _idToToken[t.Id] = t.Content;
        SpecialTokens = spec.AddedTokens.Where(t => t.Special).ToDictionary(t => t.Content, t => t.Id);
        for (int b = 0; b < 256; b++) _byteTokens[b] = spec.Vocab.TryGetValue($"<0x{b:X2}>", out int bid) ? bid : -1;
        _unknownId = spec.UnknownToken is not null && _tokenToId.TryGetValue(spec.UnknownToken, out int u) ? u : null;
    }

    /// <summary>Reads <c>tokenizer.json</c> (and, when present, tokenizer_config.json / generation_config.json) from a model folder.</summary>
    public static HfTokenizer Load(string modelDir)
    {
        string path = Path.Combine(modelDir, "tokenizer.json");
        if (!File.Exists(path))
            throw new NibbleException($"No tokenizer.json in {modelDir}; pass a Hugging Face model folder that has a fast tokenizer (tokenizer.json).");
        var tokenizer = FromFile(path);
        tokenizer.ReadSpecialTokenConfig(modelDir);
        return tokenizer;
    }

    /// <summary>Reads one tokenizer.json file (no bos/eos configuration).</summary>
    public static HfTokenizer FromFile(string tokenizerJsonPath) => new(TokenizerSpec.Parse(tokenizerJsonPath));

    /// <summary>Number of ids (model vocabulary plus added tokens): one past the largest id.</summary>
    public int VocabSize => _idToToken.Length;

    /// <summary>Added tokens marked <c>special</c>, by content.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens { get; }

    public IReadOnlyList<AddedToken> AddedTokens => _spec.AddedTokens;

    public string? BosToken { get; private set; }
    public int? BosTokenId { get; private set; }
    public string? EosToken { get; private set; }
    /// <summary>Ids that end generation: tokenizer_config's <c>eos_token</c> plus generation_config's <c>eos_token_id</c> (int or list).</summary>
    public IReadOnlyList<int> EosTokenIds { get; private set; } = [];
    public string? PadToken { get; private set; }

    /// <summary>The id of a vocabulary entry or added token, spelled as stored (byte-level form for ordinary tokens).</summary>
    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out int id) ? id : null;

    /// <summary>The stored spelling of an id (byte-level form for ordinary tokens), or null when unknown.</summary>
    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public bool IsSpecial(int id) => _addedById.TryGetValue(id, out var t) && t.Special;

    public bool IsAdded(int id) => _addedById.ContainsKey(id);

    /// <summary>Encodes text; <paramref name="addSpecialTokens"/> adds what the post-processor puts around a sequence (e.g. Llama 3's begin_of_text).</summary>
    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens) foreach (var t in _spec.PrefixTokens) ids.Add(t.Id);
        EncodeInto(text, ids, null);
        if (addSpecialTokens) foreach (var t in _spec.SuffixTokens) ids.Add(t.Id);
        return ids.ToArray();
    }

    /// <summary>
    /// Encodes text without special-token additions and also returns, per token, the character range of
    /// <paramref name="text"/> it came from (used to map role spans onto tokens).
    /// </summary>
    public (int[] Ids, (int Start, int End)[] Offsets) EncodeWithOffsets(string text)
    {
        var ids = new List<int>();
        var offsets = new List<(int, int)>();
        EncodeInto(text, ids, offsets);
        return (ids.ToArray(), offsets.ToArray());
    }

    void EncodeInto(string text, List<int> ids, List<(int, int)>? offsets)
    {
        foreach (var piece in _splitter.Split(text))
        {
            if (piece.Token is { } added)
            {
                ids.Add(added.Id);
                offsets?.Add((piece.Start, piece.Start + piece.Length));
                continue;
            }
            string segment = text.Substring(piece.Start, piece.Length);
            // Normalizers and prefix markers; `shift` counts characters added in front, `exact` says whether the
            // rest still maps 1:1 onto the original characters (for offsets).
            int shift = 0;
            bool exact = true;
            foreach (var step in _spec.Normalizers)
            {
                switch (step.Type)
                {
                    case "NFC":
                    {
                        string n = UnicodeNfc.Normalize(segment);
                        if (n != segment) exact = false;
                        segment = n;
                        break;
                    }
                    case "Prepend":
                        if (segment.Length > 0) { segment = step.A + segment; shift += step.A.Length; }
                        break;
                    case "Replace":
                    {
                        string r = step.A.Length == 0 ? segment : segment.Replace(step.A, step.B, StringComparison.Ordinal);
                        if (step.A.Length != step.B.Length && r != segment) exact = false;
                        segment = r;
                        break;
                    }
                }
            }
            if (_spec.AddPrefixSpace && segment.Length > 0 && segment[0] != ' ') { segment = " " + segment; shift++; }
            if (_spec.Metaspace is { } meta)
            {
                segment = segment.Replace(' ', meta.Replacement);
                bool prepend = meta.PrependScheme == "always" || (meta.PrependScheme == "first" && piece.Start == 0);
                if (prepend && segment.Length > 0 && segment[0] != meta.Replacement) { segment = meta.Replacement + segment; shift++; }
            }
            foreach (var (offset, length) in Words(segment))
            {
                string word = segment.Substring(offset, length);
                int before = ids.Count;
                List<int>? charLengths = offsets is null ? null : new List<int>();
                if (_spec.ByteLevel)
                {
                    string mapped = ByteLevelAlphabet.Encode(word);
                    if (_spec.IgnoreMerges && _spec.Vocab.TryGetValue(mapped, out int whole)) ids.Add(whole);
                    else ids.AddRange(_bpe.EncodeToIds(mapped));
                }
                else EncodeSentencePieceWord(word, ids, charLengths);
                if (offsets is null) continue;
                if (!exact) { for (int k = before; k < ids.Count; k++) offsets.Add((piece.Start, piece.Start + piece.Length)); continue; }
                int segmentOffset = offset;
                Func<int, int> toText = rel => Math.Clamp(piece.Start + segmentOffset + rel - shift, piece.Start, piece.Start + piece.Length);
                if (_spec.ByteLevel) AppendTokenOffsets(ids, before, word, toText, offsets);
                else
                {
                    int pos = 0;
                    foreach (int len in charLengths!) { offsets.Add((toText(pos), toText(pos + len))); pos += len; }
                }
            }
        }
    }

    IEnumerable<(int Offset, int Length)> Words(string segment)
    {
        if (segment.Length == 0) return [];
        if (_spec.ByteLevel || _spec.SplitStages.Count > 0) return _preTokenizer.Split(segment);
        if (_spec.Metaspace is { Split: true } meta)
        {
            // Metaspace split: each word starts at a replacement character (MergedWithNext).
            var words = new List<(int, int)>();
            int start = 0;
            for (int i = 1; i < segment.Length; i++)
                if (segment[i] == meta.Replacement) { words.Add((start, i - start)); start = i; }
            words.Add((start, segment.Length - start));
            return words;
        }
        return [(0, segment.Length)];
    }

    /// <summary>
    /// SentencePiece-style BPE word: runs of characters in the vocabulary go through the library's BPE; a character
    /// outside it becomes its UTF-8 bytes as &lt;0xXX&gt; tokens (byte_fallback), else the unknown token (fused
    /// when fuse_unk). Merges never involve byte tokens (checked at load), so cutting the runs there is exact.
    /// </summary>
    void EncodeSentencePieceWord(string word, List<int> ids, List<int>? charLengths)
    {
        int runStart = 0;
        bool lastUnknown = false;
        void Flush(int end)
        {
            if (end <= runStart) return;
            string run = word[runStart..end];
            var runIds = _bpe.EncodeToIds(run);
            ids.AddRange(runIds);
            if (charLengths is not null) foreach (int id in runIds) charLengths.Add(_idToToken[id].Length);
            lastUnknown = false;
        }
        int i = 0;
        while (i < word.Length)
        {
            int len = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            string ch = word.Substring(i, len);
            if (_spec.Vocab.ContainsKey(ch)) { i += len; continue; }
            Flush(i);
            runStart = i + len;
            byte[] bytes = Encoding.UTF8.GetBytes(ch);
            if (_spec.ByteFallback && bytes.All(b => _byteTokens[b] >= 0))
            {
                for (int k = 0; k < bytes.Length; k++)
                {
                    ids.Add(_byteTokens[bytes[k]]);
                    charLengths?.Add(k == bytes.Length - 1 ? len : 0);
                }
                lastUnknown = false;
            }
            else if (_unknownId is int unk)
            {
                if (_spec.FuseUnknown && lastUnknown) { if (charLengths is not null) charLengths[^1] += len; }
                else { ids.Add(unk); charLengths?.Add(len); }
                lastUnknown = true;
            }
            else throw new NibbleException($"The text has a character (U+{char.ConvertToUtf32(ch, 0):X4}) that this tokenizer cannot encode (no byte fallback, no unk_token).");
            i += len;
        }
        Flush(word.Length);
    }

    // Spreads a word's characters over its tokens by their byte lengths. Byte-level tokens can split a character:
    // the token that completes a character's bytes owns it, and tokens holding only its first bytes get an empty range.
    void AppendTokenOffsets(List<int> ids, int first, string word, Func<int, int> toText, List<(int, int)> offsets)
    {
        // charsDoneAtByte[b]: how many chars of the word are complete after its first b UTF-8 bytes.
        var charsDoneAtByte = new int[Encoding.UTF8.GetByteCount(word) + 1];
        int bi = 0;
        for (int ci = 0; ci < word.Length;)
        {
            int clen = char.IsSurrogatePair(word, ci) ? 2 : 1;
            int blen = Encoding.UTF8.GetByteCount(word.AsSpan(ci, clen));
            for (int k = 1; k < blen; k++) charsDoneAtByte[bi + k] = ci;
            bi += blen; ci += clen;
            charsDoneAtByte[bi] = ci;
        }
        int byteCursor = 0, charCursor = 0;
        for (int k = first; k < ids.Count; k++)
        {
            byteCursor = Math.Min(charsDoneAtByte.Length - 1, byteCursor + _idToToken[ids[k]].Length);
            int endChar = Math.Max(charCursor, charsDoneAtByte[byteCursor]);
            offsets.Add((toText(charCursor), toText(endChar)));
            charCursor = endChar;
        }
    }

    /// <summary>Decodes ids to text like tokenizers' <c>decode</c>: byte-level tokens back to UTF-8 (invalid bytes become U+FFFD),
    /// or the SentencePiece decoder chain (Replace ▁, ByteFallback, Fuse, Strip / Metaspace).</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        if (!_spec.ByteLevel) return DecodeChain(ids, skipSpecialTokens);
        var bytes = new List<byte>();
        foreach (int id in ids) AppendBytes(id, bytes, skipSpecialTokens);
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>Whether this is a byte-level BPE tokenizer (GPT-2 alphabet) rather than SentencePiece-style.</summary>
    public bool IsByteLevel => _spec.ByteLevel;

    // The tokenizers library's decoders applied in order to the token strings (learned from tokenizers/src/decoders).
    string DecodeChain(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        var tokens = new List<string>();
        foreach (int id in ids)
        {
            CheckId(id);
            if (skipSpecialTokens && IsSpecial(id)) continue;
            tokens.Add(_idToToken[id]);
        }
        foreach (var step in _spec.Decoders)
        {
            switch (step.Type)
            {
                case "Replace":
                    tokens = tokens.Select(t => step.A.Length == 0 ? t : t.Replace(step.A, step.B, StringComparison.Ordinal)).ToList();
                    break;
                case "ByteFallback": tokens = ByteFallback(tokens); break;
                case "Fuse": tokens = [string.Concat(tokens)]; break;
                case "Strip":
                {
                    char c = step.A.Length > 0 ? step.A[0] : ' ';
                    tokens = tokens.Select(t =>
                    {
                        int a = 0, b = t.Length;
                        while (a < Math.Min(step.Start, t.Length) && t[a] == c) a++;
                        for (int k = 0; k < step.Stop && b > a && t[b - 1] == c; k++) b--;
                        return t[a..b];
                    }).ToList();
                    break;
                }
                case "Metaspace":
                {
                    char r = step.A.Length > 0 ? step.A[0] : '\u2581';
                    bool dropFirst = step.B != "never";
                    tokens = tokens.Select((t, i) => i == 0 && dropFirst ? t.Replace(r.ToString(), "") : t.Replace(r, ' ')).ToList();
                    break;
                }
            }
        }
        return string.Concat(tokens);
    }

    /// <summary>Runs of &lt;0xXX&gt; tokens become their UTF-8 text, or one U+FFFD per byte token when invalid.</summary>
    static List<string> ByteFallback(List<string> tokens)
    {
        var result = new List<string>();
        var pending = new List<byte>();
        void FlushBytes()
        {
            if (pending.Count == 0) return;
            try { result.Add(new UTF8Encoding(false, true).GetString(pending.ToArray())); }
            catch (DecoderFallbackException) { for (int k = 0; k < pending.Count; k++) result.Add("\uFFFD"); }
            pending.Clear();
        }
        foreach (string t in tokens)
        {
            if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>' &&
                byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b))
            {
                pending.Add(b);
                continue;
            }
            FlushBytes();
            result.Add(t);
        }
        FlushBytes();
        return result;
    }

    void CheckId(int id)
    {
        if ((uint)id >= (uint)_idToToken.Length || _idToToken[id] is null)
            throw new NibbleException($"Token id {id} is outside this tokenizer's vocabulary (size {VocabSize}); check that the ids come from the same model.");
    }

    /// <summary>The UTF-8 bytes one id stands for (its decoded piece, which may be part of a character).</summary>
    public byte[] TokenBytes(int id)
    {
        var bytes = new List<byte>();
        AppendBytes(id, bytes, false);
        return bytes.ToArray();
    }

    internal void AppendBytes(int id, List<byte> destination, bool skipSpecialTokens)
    {
        CheckId(id);
        if (skipSpecialTokens && IsSpecial(id)) return;
        if (_spec.ByteLevel) { ByteLevelAlphabet.AppendTokenBytes(_idToToken[id], destination); return; }
        string t = _idToToken[id];
        if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>' &&
            byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b)) { destination.Add(b); return; }
        destination.AddRange(Encoding.UTF8.GetBytes(t.Replace('\u2581', ' ')));
    }

    /// <summary>A fresh incremental decoder for streaming generation.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);

    void ReadSpecialTokenConfig(string modelDir)
    {
        string configPath = Path.Combine(modelDir, "tokenizer_config.json");
        if (File.Exists(configPath))
        {
            using var doc = ParseJsonFile(configPath);
            var root = doc.RootElement;
            BosToken = TokenString(root, "bos_token");
            EosToken = TokenString(root, "eos_token");
            PadToken = TokenString(root, "pad_token");
        }
        if (BosToken is not null) BosTokenId = TokenToId(BosToken);
        var eos = new List<int>();
        if (EosToken is not null && TokenToId(EosToken) is int e) eos.Add(e);
        string genPath = Path.Combine(modelDir, "generation_config.json");
        if (File.Exists(genPath))
        {
            using var doc = ParseJsonFile(genPath);
            if (doc.RootElement.TryGetProperty("eos_token_id", out var ids))
            {
                if (ids.ValueKind == JsonValueKind.Number) eos.Add(ids.GetInt32());
                else if (ids.ValueKind == JsonValueKind.Array) foreach (var x in ids.EnumerateArray()) eos.Add(x.GetInt32());
            }
            if (BosTokenId is null && doc.RootElement.TryGetProperty("bos_token_id", out var b) && b.ValueKind == JsonValueKind.Number)
            {
                BosTokenId = b.GetInt32();
                BosToken = IdToToken(b.GetInt32());
            }
        }
        EosTokenIds = eos.Distinct().ToArray();
    }

    /// <summary>bos_token etc. are a string, null, or an AddedToken object with "content".</summary>
    static string? TokenString(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) => c.GetString(),
            _ => null,
        };
    }

    internal static JsonDocument ParseJsonFile(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e)
        {
            throw new TokenizerJsonException($"{path} is not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}; fix or re-download the file.", e);
        }
    }
}
