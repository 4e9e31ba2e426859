namespace Nibble.Text.Tokenization;

/// <summary>A tokenizer.json (or tokenizer_config.json) that cannot be read, with the file and position.</summary>
public sealed class TokenizerJsonException(string message, Exception? inner = null) : NibbleException(message, inner!);
