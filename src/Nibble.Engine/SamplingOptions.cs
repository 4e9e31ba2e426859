namespace Nibble.Engine;

/// <summary>
/// How to pick each next token. Temperature 0 is greedy (argmax, lowest id on ties); otherwise
/// logits are divided by the temperature, filtered by top-k then top-p (nucleus), and sampled
/// with a seeded generator so a seed reproduces a run.
/// </summary>
public sealed record SamplingOptions
{
    public static SamplingOptions Greedy { get; } = new();

    public float Temperature { get; init; }
    /// <summary>Keep the smallest set of most likely tokens whose probability reaches TopP (1 = off).</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>Keep only the K most likely tokens (0 = off).</summary>
    public int TopK { get; init; }
    public int? Seed { get; init; }
    public int MaxTokens { get; init; } = 256;
    /// <summary>Ids that end generation (not emitted). Null: the model's eos ids (tokenizer + generation_config + config.json).</summary>
    public IReadOnlyList<int>? StopTokenIds { get; init; }

    public void Validate()
    {
        if (Temperature < 0 || float.IsNaN(Temperature)) throw new NibbleException($"Temperature {Temperature} is negative; use 0 for greedy or a positive value.");
        if (TopP is <= 0 or > 1 || float.IsNaN(TopP)) throw new NibbleException($"top-p {TopP} is outside (0, 1]; use 1 to turn it off.");
        if (TopK < 0) throw new NibbleException($"top-k {TopK} is negative; use 0 to turn it off.");
        if (MaxTokens < 0) throw new NibbleException($"max_tokens {MaxTokens} is negative.");
    }
}

/// <summary>Why generation ended.</summary>
public enum FinishReason { Stop, Length }

/// <summary>One generated token: its id, the text it completes (may be empty mid-character), and whether it ended the stream.</summary>
public sealed record GeneratedToken(int Id, string Text);

/// <summary>A finished generation: ids (without the stop token), text, and why it ended.</summary>
public sealed record GenerationResult(int[] TokenIds, string Text, FinishReason FinishReason, int PromptTokens, TimeSpan PrefillTime, TimeSpan DecodeTime)
{
    public double DecodeTokensPerSecond => TokenIds.Length == 0 || DecodeTime.TotalSeconds <= 0 ? 0 : TokenIds.Length / DecodeTime.TotalSeconds;
}
