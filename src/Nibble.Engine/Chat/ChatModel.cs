using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Nibble.Backend;
using Nibble.Models;
using Nibble.Text.Templates;
using Nibble.Text.Tokenization;

namespace Nibble.Engine.Chat;

/// <summary>What a chat or completion request asks for, beyond the prompt.</summary>
public sealed record ChatRequestOptions
{
    public SamplingOptions Sampling { get; init; } = SamplingOptions.Greedy;
    /// <summary>Strings that end the reply when they appear; the reply stops before them (OpenAI <c>stop</c>).</summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];
}

/// <summary>One streamed piece of a reply; the last piece carries the finish reason and token counts.</summary>
public sealed record ChatDelta(string Text, FinishReason? Finish = null, int PromptTokens = 0, int CompletionTokens = 0);

/// <summary>
/// A loaded model ready to chat: weights, tokenizer and chat template, with one request running at a time
/// (requests queue on a gate; continuous batching belongs to the GPU engine). Shared by the OpenAI-compatible
/// server and <see cref="NibbleChatClient"/>.
/// </summary>
public sealed class ChatModel : IDisposable
{
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly IBackend _backend;

    public string Id { get; }
    public string Directory { get; }
    public CausalLM Model { get; }
    public HfTokenizer Tokenizer { get; }
    public ChatTemplate? Template { get; }
    public Generator Generator { get; }

    ChatModel(string id, string directory, IBackend backend, CausalLM model, HfTokenizer tokenizer, ChatTemplate? template)
    {
        (Id, Directory, _backend, Model, Tokenizer, Template) = (id, directory, backend, model, tokenizer, template);
        Generator = new Generator(model, tokenizer);
    }

    /// <summary>Loads <paramref name="directory"/> on <paramref name="backend"/>; a model without a chat template can still complete text.</summary>
    public static ChatModel Load(string directory, IBackend backend, string? id = null, ModelLoadOptions? options = null)
    {
        var tokenizer = HfTokenizer.Load(directory);
        ChatTemplate? template;
        try { template = ChatTemplate.Load(directory); }
        catch (NibbleException) { template = null; }
        // Without explicit options, quantized checkpoints load into the backend's W4A8 / W4A16 layers (serve, chat).
        var model = options is null ? Gpu.QuantizedModelLoader.Load(directory, backend) : CausalLM.Load(directory, backend, options);
        return new ChatModel(id ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory))), directory, backend, model, tokenizer, template);
    }

    /// <summary>Renders OpenAI-format <paramref name="messages"/> (and tools) with the model's template, ready for generation.</summary>
    public int[] EncodeChat(JsonArray messages, JsonArray? tools)
    {
        if (Template is null)
            throw new NibbleException($"The model '{Id}' has no chat template (chat_template.jinja or tokenizer_config.json); use the completions endpoint instead.");
        if (messages.Count == 0)
            throw new NibbleException("The conversation has no messages; send at least one user message.");
        return Tokenizer.Encode(Template.Render(messages, tools, addGenerationPrompt: true));
    }

    /// <summary>Streams a reply to <paramref name="promptIds"/>, honouring stop strings, one request at a time.</summary>
    public async IAsyncEnumerable<ChatDelta> StreamAsync(int[] promptIds, ChatRequestOptions options, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var stops = new StopSequenceFilter(options.StopSequences);
            int completion = 0;
            FinishReason finish = FinishReason.Length;
            await foreach (var token in Generator.GenerateTokensAsync(promptIds, options.Sampling, cancellationToken).ConfigureAwait(false))
            {
                if (token.Id >= 0) completion++;
                string visible = stops.Push(token.Text, out bool stopped);
                if (visible.Length > 0) yield return new ChatDelta(visible);
                if (stopped) { finish = FinishReason.Stop; break; }
            }
            if (!stops.Stopped)
            {
                string rest = stops.Flush();
                if (rest.Length > 0) yield return new ChatDelta(rest);
                // The generator ends early only on a stop token; reaching MaxTokens is a length finish.
                finish = completion < options.Sampling.MaxTokens ? FinishReason.Stop : FinishReason.Length;
            }
            yield return new ChatDelta("", finish, promptIds.Length, completion);
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        Model.Dispose();
        (_backend as IDisposable)?.Dispose();
        _gate.Dispose();
    }
}
