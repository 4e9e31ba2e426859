using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Nibble.Server;

/// <summary>The OpenAI wire format (only the fields Nibble reads or writes), snake_case as on the wire.</summary>
static class OpenAiProtocol
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        // OpenAI writes explicit nulls (finish_reason, logprobs); keep non-ASCII and markup readable.
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string FinishReason(Engine.FinishReason? f) => f == Engine.FinishReason.Length ? "length" : "stop";

    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>OpenAI's error body: {"error": {"message", "type", "param", "code"}}.</summary>
    public static object Error(string message, string type = "invalid_request_error", string? param = null, string? code = null) =>
        new { error = new { message, type, param, code } };
}

/// <summary>Sampling fields shared by chat and text completions.</summary>
abstract record SamplingRequest
{
    public string? Model { get; init; }
    public int? MaxTokens { get; init; }
    public int? MaxCompletionTokens { get; init; }
    public float? Temperature { get; init; }
    public float? TopP { get; init; }
    public int? TopK { get; init; }
    public int? Seed { get; init; }
    public int? N { get; init; }
    /// <summary>A string or an array of strings.</summary>
    public JsonNode? Stop { get; init; }
    public bool Stream { get; init; }
    public StreamOptions? StreamOptions { get; init; }
}

sealed record StreamOptions
{
    public bool IncludeUsage { get; init; }
}

sealed record ChatCompletionRequest : SamplingRequest
{
    public JsonArray? Messages { get; init; }
    public JsonArray? Tools { get; init; }
}

sealed record CompletionRequest : SamplingRequest
{
    /// <summary>A string (arrays of prompts are not supported).</summary>
    public JsonNode? Prompt { get; init; }
}

sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens);
