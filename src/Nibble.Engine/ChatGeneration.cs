using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Nibble.Text.Templates;

namespace Nibble.Engine;

/// <summary>Chat on top of <see cref="Generator"/>: render the conversation with the model's chat template, then stream the reply.</summary>
public static class ChatGeneration
{
    /// <summary>The prompt ids for <paramref name="messages"/> (OpenAI format) with the generation prompt appended.</summary>
    public static int[] ChatPrompt(this Generator generator, ChatTemplate template, JsonArray messages, JsonArray? tools = null) =>
        generator.Tokenizer.Encode(template.Render(messages, tools, addGenerationPrompt: true));

    /// <summary>Streams the assistant's reply to <paramref name="messages"/>; stops at the model's eos (e.g. <c>&lt;|im_end|&gt;</c>).</summary>
    public static async IAsyncEnumerable<string> ChatAsync(this Generator generator, ChatTemplate template, JsonArray messages, JsonArray? tools,
        SamplingOptions options, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var token in generator.GenerateTokensAsync(generator.ChatPrompt(template, messages, tools), options, cancellationToken))
            if (token.Text.Length > 0) yield return token.Text;
    }
}
