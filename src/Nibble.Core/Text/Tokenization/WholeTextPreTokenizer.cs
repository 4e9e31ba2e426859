using Microsoft.ML.Tokenizers;

namespace Nibble.Text.Tokenization;

/// <summary>
/// Hands the whole input to the BPE model as one word. HfTokenizer pre-tokenizes itself (Split semantics,
/// ignore_merges) and calls the library once per word; without this the library would apply its own default split.
/// </summary>
internal sealed class WholeTextPreTokenizer : PreTokenizer
{
    public static WholeTextPreTokenizer Instance { get; } = new();

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) =>
        text.Length == 0 ? [] : [(0, text.Length)];

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) =>
        text.Length == 0 ? [] : [(0, text.Length)];
}
