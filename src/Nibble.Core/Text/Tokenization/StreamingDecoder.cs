using System.Text;

namespace Nibble.Text.Tokenization;

/// <summary>
/// Incremental detokenizer for streaming generation: feed ids as they arrive and get back only complete text.
/// Byte-level tokens can end inside a multi-byte UTF-8 character (an emoji is often 2-4 tokens); those bytes are held
/// until the character completes, so the concatenation of all returned pieces equals <c>Decode(allIds)</c>.
/// SentencePiece-style tokenizers (whose decoder strips the first space) decode the whole sequence each time and
/// return the new suffix, holding back trailing U+FFFD from an unfinished byte-fallback character.
/// </summary>
public sealed class StreamingDecoder
{
    readonly HfTokenizer _tokenizer;
    readonly bool _skipSpecialTokens;
    readonly Decoder _utf8 = new UTF8Encoding(false, false).GetDecoder();
    readonly List<byte> _bytes = new();
    readonly List<int> _ids = new();
    int _emitted;
    char[] _chars = new char[64];

    internal StreamingDecoder(HfTokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds one id; returns the text that is now complete (possibly empty).</summary>
    public string Push(int id)
    {
        if (!_tokenizer.IsByteLevel)
        {
            _ids.Add(id);
            string full = _tokenizer.Decode(_ids, _skipSpecialTokens);
            int end = full.Length;
            while (end > _emitted && full[end - 1] == '\uFFFD') end--;
            if (end <= _emitted) return "";
            string piece = full[_emitted..end];
            _emitted = end;
            return piece;
        }
        _bytes.Clear();
        _tokenizer.AppendBytes(id, _bytes, _skipSpecialTokens);
        return DecodePending(flush: false);
    }

    /// <summary>Ends the stream: any incomplete trailing bytes come back as U+FFFD, as a full decode would give.</summary>
    public string Flush()
    {
        if (!_tokenizer.IsByteLevel)
        {
            string full = _tokenizer.Decode(_ids, _skipSpecialTokens);
            string rest = full.Length > _emitted ? full[_emitted..] : "";
            _emitted = full.Length;
            return rest;
        }
        _bytes.Clear();
        return DecodePending(flush: true);
    }

    string DecodePending(bool flush)
    {
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_bytes);
        int needed = _utf8.GetCharCount(span, flush: false) + 8;
        if (_chars.Length < needed) _chars = new char[needed * 2];
        int n = _utf8.GetChars(span, _chars, flush);
        return new string(_chars, 0, n);
    }
}
