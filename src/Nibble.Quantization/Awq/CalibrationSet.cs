using Nibble.Text;
using Nibble.Text.Templates;
using Nibble.Text.Tokenization;

namespace Nibble.Quantization.Awq;

/// <summary>
/// One calibration sequence: token ids and the <see cref="CalibrationMask"/> (true = the token counts in activation
/// statistics and in the AWQ loss; null = every token counts). Masked tokens still run through the model.
/// </summary>
public sealed record CalibrationSequence(int[] Ids, bool[]? Mask)
{
    public int IncludedTokens => Mask is null ? Ids.Length : Mask.Count(m => m);
    public bool Includes(int token) => Mask is null || Mask[token];
}

/// <summary>How calibration data is read.</summary>
public sealed record CalibrationOptions
{
    /// <summary>Which tokens of chat traces count (null: <see cref="CalibrationMaskPolicy.Default"/>); <see cref="CalibrationMaskPolicy.All"/> disables masking.</summary>
    public CalibrationMaskPolicy? MaskPolicy { get; init; }
    /// <summary>Use at most this many sequences (traces, or text chunks).</summary>
    public int MaxSequences { get; init; } = 64;
    /// <summary>Tokens per sequence at most (traces are cut, text is chunked); bounded by the model's context.</summary>
    public int MaxSequenceLength { get; init; } = 2048;
}

/// <summary>
/// Loads calibration data: a JSONL file of chat traces (<c>{"messages": [...], "tools": [...]}</c> per line, rendered
/// with the model's chat template and masked by role spans) or a plain text file (documents separated by
/// <c>\n&lt;|endoftext|&gt;\n</c>, cut into chunks, nothing masked).
/// </summary>
public static class CalibrationSet
{
    public const string DocumentSeparator = "\n<|endoftext|>\n";

    public static IReadOnlyList<CalibrationSequence> Load(string path, HfTokenizer tokenizer, Func<ChatTemplate> template, CalibrationOptions? options = null)
    {
        options ??= new CalibrationOptions();
        if (!File.Exists(path))
            throw new NibbleException($"Calibration file '{path}' does not exist; pass a .jsonl file of chat traces or a text file.");
        if (options.MaxSequences < 1 || options.MaxSequenceLength < 2)
            throw new NibbleException("Calibration needs at least one sequence of at least 2 tokens; raise --calib-samples / --calib-length.");
        var set = IsJsonl(path) ? LoadTraces(path, tokenizer, template(), options) : LoadText(path, tokenizer, options);
        Validate(set, path);
        return set;
    }

    /// <summary>Fails with a clear message when no token would count (e.g. a mask policy that drops every span).</summary>
    public static void Validate(IReadOnlyList<CalibrationSequence> set, string source)
    {
        if (set.Count == 0)
            throw new NibbleException($"'{source}' holds no calibration sequences; pass a file with text or chat traces.");
        if (set.Sum(s => (long)s.IncludedTokens) == 0)
            throw new NibbleException($"'{source}' has no usable tokens after masking; use a mask policy that keeps some tokens (e.g. --mask default or --mask none).");
    }

    static bool IsJsonl(string path)
    {
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)) return true;
        using var reader = new StreamReader(path);
        return reader.ReadLine()?.TrimStart().StartsWith('{') == true;
    }

    static List<CalibrationSequence> LoadTraces(string path, HfTokenizer tokenizer, ChatTemplate template, CalibrationOptions options)
    {
        var policy = options.MaskPolicy ?? CalibrationMaskPolicy.Default;
        bool all = policy == CalibrationMaskPolicy.All;
        var set = new List<CalibrationSequence>();
        int line = 0;
        foreach (string text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            if (set.Count >= options.MaxSequences) break;
            LabeledTokens labeled;
            try { labeled = CalibrationMask.FromTraceLine(text, tokenizer, template, policy); }
            catch (NibbleException e) { throw new NibbleException($"Line {line} of '{path}': {e.Message}"); }
            int length = Math.Min(labeled.Ids.Length, options.MaxSequenceLength);
            if (length < 2) continue;
            set.Add(new CalibrationSequence(labeled.Ids[..length], all ? null : labeled.Mask[..length]));
        }
        return set;
    }

    static List<CalibrationSequence> LoadText(string path, HfTokenizer tokenizer, CalibrationOptions options)
    {
        int? endOfText = tokenizer.TokenToId("<|endoftext|>");
        var ids = new List<int>();
        long needed = (long)options.MaxSequences * options.MaxSequenceLength;
        foreach (string document in File.ReadAllText(path).Split(DocumentSeparator))
        {
            if (document.Length == 0) continue;
            ids.AddRange(tokenizer.Encode(document));
            if (endOfText is int eot) ids.Add(eot);
            if (ids.Count >= needed) break;
        }
        var set = new List<CalibrationSequence>();
        for (int start = 0; start < ids.Count && set.Count < options.MaxSequences; start += options.MaxSequenceLength)
        {
            int length = Math.Min(options.MaxSequenceLength, ids.Count - start);
            if (length < 2) break;
            set.Add(new CalibrationSequence(ids.GetRange(start, length).ToArray(), null));
        }
        return set;
    }
}
