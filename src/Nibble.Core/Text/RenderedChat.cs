namespace Nibble.Text;

/// <summary>
/// A rendered conversation with a label for every character: which message (and role) it belongs to and whether it is
/// content, template scaffolding, tool definitions or a tool call. Produced by <see cref="RoleSpanRenderer"/>.
/// </summary>
public sealed class RenderedChat
{
    readonly TokenLabel[] _charLabels;

    internal RenderedChat(string text, TokenLabel[] charLabels, IReadOnlyList<string> notes)
    {
        Text = text;
        _charLabels = charLabels;
        Notes = notes;
    }

    public string Text { get; }

    /// <summary>Where the span finder had to guess (content not found verbatim, a prefix render that failed...).</summary>
    public IReadOnlyList<string> Notes { get; }

    public TokenLabel LabelAt(int charIndex) => _charLabels[charIndex];

    /// <summary>Maximal runs of equally-labelled characters, in order.</summary>
    public IReadOnlyList<ChatSpan> Spans
    {
        get
        {
            var spans = new List<ChatSpan>();
            int start = 0;
            for (int i = 1; i <= _charLabels.Length; i++)
                if (i == _charLabels.Length || _charLabels[i] != _charLabels[start])
                {
                    spans.Add(new ChatSpan(start, i, _charLabels[start]));
                    start = i;
                }
            return spans;
        }
    }

    /// <summary>
    /// One label per token from token character ranges (<c>HfTokenizer.EncodeWithOffsets</c>). A token that covers
    /// several kinds takes content or tool-call if any of its characters has it (a merged ".\n" keeps the content's
    /// label), else its first character's label; a token holding only the first bytes of a character takes that character's.
    /// </summary>
    public TokenLabel[] LabelTokens(IReadOnlyList<(int Start, int End)> offsets)
    {
        var labels = new TokenLabel[offsets.Count];
        for (int t = 0; t < offsets.Count; t++)
        {
            var (s, e) = offsets[t];
            if (_charLabels.Length == 0) { labels[t] = new TokenLabel(ChatRole.Other, ChatSpanKind.Template, -1); continue; }
            int first = Math.Min(s, _charLabels.Length - 1);
            TokenLabel chosen = _charLabels[first];
            for (int i = s; i < e; i++)
                if (_charLabels[i].Kind is ChatSpanKind.Content or ChatSpanKind.ToolCall) { chosen = _charLabels[i]; break; }
            labels[t] = chosen;
        }
        return labels;
    }
}
