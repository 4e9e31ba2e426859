using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace Nibble.Engine.Chat;

/// <summary>
/// Microsoft.Extensions.AI <see cref="IChatClient"/> over a local <see cref="ChatModel"/>, so .NET code written
/// against the standard abstraction runs on Nibble unchanged. Text content only (no tool invocation yet).
/// </summary>
public sealed class NibbleChatClient(ChatModel model, bool ownsModel = false) : IChatClient
{
    readonly ChatClientMetadata _metadata = new("nibble", null, model.Id);

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var text = new StringBuilder();
        ChatDelta? last = null;
        await foreach (var delta in Stream(messages, options, cancellationToken).ConfigureAwait(false))
        {
            text.Append(delta.Text);
            last = delta;
        }
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, text.ToString()))
        {
            ModelId = model.Id,
            FinishReason = Map(last?.Finish),
            Usage = new UsageDetails { InputTokenCount = last?.PromptTokens, OutputTokenCount = last?.CompletionTokens, TotalTokenCount = last?.PromptTokens + last?.CompletionTokens },
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        await foreach (var delta in Stream(messages, options, cancellationToken).ConfigureAwait(false))
            yield return new ChatResponseUpdate(ChatRole.Assistant, delta.Text)
            {
                ResponseId = id,
                ModelId = model.Id,
                FinishReason = Map(delta.Finish),
            };
    }

    IAsyncEnumerable<ChatDelta> Stream(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken ct)
    {
        var array = new JsonArray();
        foreach (var m in messages)
            array.Add(new JsonObject { ["role"] = m.Role.Value, ["content"] = m.Text });
        var request = new ChatRequestOptions
        {
            Sampling = new SamplingOptions
            {
                Temperature = options?.Temperature ?? 0f,
                TopP = options?.TopP ?? 1f,
                TopK = options?.TopK ?? 0,
                Seed = options?.Seed is long s ? unchecked((int)s) : null,
                MaxTokens = options?.MaxOutputTokens ?? 256,
            },
            StopSequences = options?.StopSequences?.ToList() ?? [],
        };
        return model.StreamAsync(model.EncodeChat(array, null), request, ct);
    }

    static ChatFinishReason? Map(FinishReason? f) => f switch
    {
        FinishReason.Stop => ChatFinishReason.Stop,
        FinishReason.Length => ChatFinishReason.Length,
        _ => null,
    };

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceType.IsInstanceOfType(this) ? this
        : serviceType == typeof(ChatModel) ? model : null;

    public void Dispose()
    {
        if (ownsModel) model.Dispose();
    }
}
