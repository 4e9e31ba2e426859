namespace Nibble.Text.Tokenization;

/// <summary>
/// An entry of tokenizer.json's <c>added_tokens</c>: matched as a whole in the input text before the model sees it.
/// <c>Special</c> tokens are the ones <c>skipSpecialTokens</c> drops when decoding.
/// </summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false, bool Normalized = false, bool SingleWord = false);
