using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Nibble.Engine;
using Nibble.Engine.Chat;

namespace Nibble.Server;

/// <summary>
/// OpenAI-compatible endpoints: GET /v1/models, POST /v1/chat/completions and /v1/completions, each
/// streaming as server-sent events when <c>stream</c> is true. Bad requests get OpenAI's error body with status 400.
/// </summary>
public static class OpenAiEndpoints
{
    public static IEndpointRouteBuilder MapOpenAi(this IEndpointRouteBuilder app, ChatModel model)
    {
        app.MapGet("/v1/models", () => Results.Json(new
        {
            @object = "list",
            data = new[] { new { id = model.Id, @object = "model", created = OpenAiProtocol.Now(), owned_by = "nibble" } },
        }));
        app.MapGet("/health", () => Results.Ok(new { status = "ok", model = model.Id }));

        app.MapPost("/v1/chat/completions", async (HttpContext http, CancellationToken ct) =>
        {
            var request = await Read<ChatCompletionRequest>(http, ct);
            if (request.Error is { } error) return error;
            var body = request.Value!;
            if (body.Messages is null || body.Messages.Count == 0)
                return BadRequest("'messages' must be a non-empty array of chat messages.", "messages");
            if (Check(body, model) is { } invalid) return invalid;
            int[] prompt;
            try { prompt = model.EncodeChat(NormalizeMessages(body.Messages), body.Tools); }
            catch (NibbleException e) { return BadRequest(e.Message, "messages"); }
            return await Respond(http, body, prompt, chat: true, ct);
        });

        app.MapPost("/v1/completions", async (HttpContext http, CancellationToken ct) =>
        {
            var request = await Read<CompletionRequest>(http, ct);
            if (request.Error is { } error) return error;
            var body = request.Value!;
            if (body.Prompt is not JsonValue v || !v.TryGetValue<string>(out var text) || text.Length == 0)
                return BadRequest("'prompt' must be a non-empty string.", "prompt");
            if (Check(body, model) is { } invalid) return invalid;
            return await Respond(http, body, model.Tokenizer.Encode(text), chat: false, ct);
        });
        return app;
    }

    static async Task<IResult> Respond(HttpContext http, SamplingRequest body, int[] prompt, bool chat, CancellationToken ct)
    {
        var options = new ChatRequestOptions
        {
            Sampling = new SamplingOptions
            {
                Temperature = body.Temperature ?? 1f,
                TopP = body.TopP ?? 1f,
                TopK = body.TopK ?? 0,
                Seed = body.Seed,
                MaxTokens = body.MaxCompletionTokens ?? body.MaxTokens ?? 256,
            },
            StopSequences = StopStrings(body.Stop),
        };
        try { options.Sampling.Validate(); }
        catch (NibbleException e) { return BadRequest(e.Message); }

        string id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        long created = OpenAiProtocol.Now();
        string modelId = StreamModel(http).Id;

        if (!body.Stream)
        {
            var text = new StringBuilder();
            ChatDelta last = new("");
            await foreach (var d in StreamModel(http).StreamAsync(prompt, options, ct)) { text.Append(d.Text); last = d; }
            var usage = new Usage(last.PromptTokens, last.CompletionTokens, last.PromptTokens + last.CompletionTokens);
            string finish = OpenAiProtocol.FinishReason(last.Finish);
            object response = chat
                ? new { id, @object = "chat.completion", created, model = modelId, choices = new[] { new { index = 0, message = new { role = "assistant", content = text.ToString() }, finish_reason = finish } }, usage }
                : new { id, @object = "text_completion", created, model = modelId, choices = new[] { new { index = 0, text = text.ToString(), logprobs = (object?)null, finish_reason = finish } }, usage };
            return Results.Json(response, OpenAiProtocol.Json);
        }

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        async Task Send(object chunk)
        {
            await http.Response.WriteAsync("data: " + JsonSerializer.Serialize(chunk, OpenAiProtocol.Json) + "\n\n", ct);
            await http.Response.Body.FlushAsync(ct);
        }
        if (chat)
            await Send(new { id, @object = "chat.completion.chunk", created, model = modelId, choices = new[] { new { index = 0, delta = new { role = "assistant", content = "" }, finish_reason = (string?)null } } });
        await foreach (var d in StreamModel(http).StreamAsync(prompt, options, ct))
        {
            string? finish = d.Finish is null ? null : OpenAiProtocol.FinishReason(d.Finish);
            if (d.Text.Length == 0 && finish is null) continue;
            await Send(chat
                ? new { id, @object = "chat.completion.chunk", created, model = modelId, choices = new[] { new { index = 0, delta = new { content = d.Text }, finish_reason = finish } } }
                : new { id, @object = "text_completion", created, model = modelId, choices = new[] { new { index = 0, text = d.Text, logprobs = (object?)null, finish_reason = finish } } });
            if (d.Finish is not null && body.StreamOptions?.IncludeUsage == true)
                await Send(new { id, @object = chat ? "chat.completion.chunk" : "text_completion", created, model = modelId, choices = Array.Empty<object>(),
                    usage = new Usage(d.PromptTokens, d.CompletionTokens, d.PromptTokens + d.CompletionTokens) });
        }
        await http.Response.WriteAsync("data: [DONE]\n\n", ct);
        return Results.Empty;
    }

    static ChatModel StreamModel(HttpContext http) => http.RequestServices.GetService(typeof(ChatModel)) as ChatModel
        ?? throw new InvalidOperationException("ChatModel is not registered.");

    static IResult? Check(SamplingRequest body, ChatModel model)
    {
        if (body.Model is { Length: > 0 } m && m != model.Id)
            return Results.Json(OpenAiProtocol.Error($"The model '{m}' is not served here; this server serves '{model.Id}'.", code: "model_not_found", param: "model"), statusCode: 404);
        if (body.N is > 1)
            return BadRequest("Only n = 1 is supported; send several requests for several choices.", "n");
        return null;
    }

    /// <summary>Content given as an array of parts becomes plain text, as chat templates expect.</summary>
    static JsonArray NormalizeMessages(JsonArray messages)
    {
        var result = new JsonArray();
        foreach (var m in messages)
        {
            if (m is not JsonObject o || o["role"] is not JsonValue)
                throw new NibbleException("Every message needs a 'role' (system, user, assistant or tool).");
            var copy = JsonNode.Parse(o.ToJsonString())!.AsObject();
            if (copy["content"] is JsonArray parts)
                copy["content"] = string.Concat(parts.Select(p => p?["type"]?.GetValue<string>() == "text" ? p["text"]?.GetValue<string>() : null));
            result.Add(JsonNode.Parse(copy.ToJsonString()));
        }
        return result;
    }

    static IReadOnlyList<string> StopStrings(JsonNode? stop) => stop switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => [s],
        JsonArray a => a.Select(x => x?.GetValue<string>() ?? "").Where(s => s.Length > 0).ToList(),
        _ => [],
    };

    static IResult BadRequest(string message, string? param = null) =>
        Results.Json(OpenAiProtocol.Error(message, param: param), statusCode: 400);

    static async Task<(T? Value, IResult? Error)> Read<T>(HttpContext http, CancellationToken ct) where T : class
    {
        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(http.Request.Body, OpenAiProtocol.Json, ct);
            return value is null ? (null, BadRequest("The request body is empty; send a JSON object.")) : (value, null);
        }
        catch (JsonException e)
        {
            return (null, BadRequest($"The request body is not valid JSON for this endpoint ({e.Message})."));
        }
    }
}
