using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Nibble.Text.Tokenization;

/// <summary>
/// A regex pre-tokenizer with the Hugging Face <c>Split</c> semantics: the matches and the gaps between them
/// both become pieces (behavior <c>Isolated</c>), or the matches are dropped (<c>Removed</c>).
/// The library's RegexPreTokenizer keeps matches only, which loses text whenever a regex does not cover everything.
/// A chain of these (tokenizer.json <c>Sequence</c>) splits each piece of the previous stage again.
/// </summary>
public sealed class SplitPreTokenizer : PreTokenizer
{
    /// <summary>The GPT-2 pattern that ByteLevel uses when <c>use_regex</c> is true.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    readonly IReadOnlyList<(Regex Regex, bool Removed)> _stages;

    public SplitPreTokenizer(IReadOnlyList<(Regex Regex, bool Removed)> stages) => _stages = stages;

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => Split(text);

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text.ToString());

    public List<(int Offset, int Length)> Split(string text)
    {
        var pieces = new List<(int Offset, int Length)> { (0, text.Length) };
        if (text.Length == 0) return [];
        foreach (var (regex, removed) in _stages)
        {
            var next = new List<(int, int)>(pieces.Count * 2);
            foreach (var (offset, length) in pieces)
            {
                int pos = offset, end = offset + length;
                // Matching inside the piece only (regex lookarounds must not see neighbouring pieces).
                string piece = text.Substring(offset, length);
                for (var m = regex.Match(piece); m.Success; m = m.NextMatch())
                {
                    if (m.Length == 0) continue;
                    int ms = offset + m.Index;
                    if (ms > pos) next.Add((pos, ms - pos));
                    if (!removed) next.Add((ms, m.Length));
                    pos = ms + m.Length;
                }
                if (pos < end) next.Add((pos, end - pos));
            }
            pieces = next;
        }
        return pieces;
    }
}
