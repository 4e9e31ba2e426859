namespace Nibble.Text.Tokenization;

/// <summary>
/// Cuts text into ordinary runs and whole added tokens, leftmost match first and the longest token at that
/// position, like the Hugging Face AddedVocabulary; <c>lstrip</c>/<c>rstrip</c> tokens also swallow the whitespace beside them.
/// </summary>
internal sealed class AddedTokenSplitter
{
    readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    /// <summary>A piece of the input: an added token (with its id) or a run of ordinary text.</summary>
    public readonly record struct Piece(int Start, int Length, AddedToken? Token);

    public List<Piece> Split(string text)
    {
        var pieces = new List<Piece>();
        int runStart = 0, i = 0;
        while (i < text.Length)
        {
            AddedToken? match = null;
            if (_byFirstChar.TryGetValue(text[i], out var candidates))
                foreach (var t in candidates)
                    if (string.CompareOrdinal(text, i, t.Content, 0, t.Content.Length) == 0 && WordBoundaryOk(text, i, t)) { match = t; break; }
            if (match is null) { i++; continue; }

            int tokenStart = i, tokenEnd = i + match.Content.Length;
            if (match.LStrip) while (tokenStart > runStart && char.IsWhiteSpace(text[tokenStart - 1])) tokenStart--;
            if (match.RStrip) while (tokenEnd < text.Length && char.IsWhiteSpace(text[tokenEnd])) tokenEnd++;
            if (tokenStart > runStart) pieces.Add(new Piece(runStart, tokenStart - runStart, null));
            pieces.Add(new Piece(tokenStart, tokenEnd - tokenStart, match));
            runStart = i = tokenEnd;
        }
        if (runStart < text.Length) pieces.Add(new Piece(runStart, text.Length - runStart, null));
        return pieces;
    }

    static bool WordBoundaryOk(string text, int start, AddedToken t)
    {
        if (!t.SingleWord) return true;
        int end = start + t.Content.Length;
        bool leftOk = start == 0 || !IsWordChar(text[start - 1]);
        bool rightOk = end == text.Length || !IsWordChar(text[end]);
        return leftOk && rightOk;
    }

    static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
