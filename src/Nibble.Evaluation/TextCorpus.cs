using Nibble.Text.Tokenization;

namespace Nibble.Evaluation;

/// <summary>
/// The evaluation text protocol of ../shared/data/README.md: split on <c>\n&lt;|endoftext|&gt;\n</c>, encode
/// each document without special tokens, append the <c>&lt;|endoftext|&gt;</c> id after each, concatenate.
/// </summary>
public static class TextCorpus
{
    public const string DocumentSeparator = "\n<|endoftext|>\n";
    public const string EndOfTextToken = "<|endoftext|>";

    public static int[] Tokenize(string text, HfTokenizer tokenizer)
    {
        int endOfText = tokenizer.TokenToId(EndOfTextToken)
            ?? throw new NibbleException($"The tokenizer has no '{EndOfTextToken}' token, which separates documents in the evaluation protocol.");
        var ids = new List<int>();
        foreach (var document in text.Split(DocumentSeparator))
        {
            if (document.Length == 0) continue;
            ids.AddRange(tokenizer.Encode(document));
            ids.Add(endOfText);
        }
        return ids.ToArray();
    }

    public static int[] TokenizeFile(string path, HfTokenizer tokenizer)
    {
        if (!File.Exists(path)) throw new NibbleException($"Text file '{path}' does not exist; pass a UTF-8 text file.");
        return Tokenize(File.ReadAllText(path), tokenizer);
    }

    /// <summary>Window start offsets: windows of <paramref name="length"/> tokens every <paramref name="stride"/> tokens; a last partial window is dropped.</summary>
    public static IReadOnlyList<int> WindowStarts(int tokenCount, int length, int stride)
    {
        if (length < 2) throw new NibbleException($"A window of {length} tokens predicts nothing; use at least 2.");
        if (stride < 1 || stride > length) throw new NibbleException($"Stride {stride} must be between 1 and the window length {length}.");
        var starts = new List<int>();
        for (int s = 0; s + length <= tokenCount; s += stride) starts.Add(s);
        return starts;
    }
}
