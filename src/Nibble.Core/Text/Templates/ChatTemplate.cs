using System.Text.Json;
using System.Text.Json.Nodes;
using Nibble.Text.Tokenization;

namespace Nibble.Text.Templates;

/// <summary>
/// A model's chat template, rendered as transformers' <c>apply_chat_template</c> does: jinja2 with trim_blocks and
/// lstrip_blocks, variables <c>messages</c>, <c>tools</c>, <c>documents</c>, <c>add_generation_prompt</c>,
/// <c>bos_token</c>, <c>eos_token</c> and any extra template kwargs.
/// </summary>
public sealed class ChatTemplate
{
    readonly List<Node> _body;

    public string Source { get; }
    public string? Name { get; }
    /// <summary>bos/eos strings from the model's tokenizer_config.json (null when loaded from a bare template).</summary>
    public string? BosToken { get; init; }
    public string? EosToken { get; init; }
    /// <summary>Other special tokens transformers passes as template variables (unk_token, pad_token) when the model has them.</summary>
    public IReadOnlyDictionary<string, string> OtherSpecialTokens { get; init; } = new Dictionary<string, string>();
    /// <summary>The clock <c>strftime_now</c> reads (local time, as transformers uses); pin it for reproducible renders.</summary>
    public Func<DateTime> Clock { get; init; } = () => DateTime.Now;

    ChatTemplate(string source, string? name)
    {
        Source = source;
        Name = name;
        try { _body = JinjaParser.Parse(source); }
        catch (ChatTemplateException e) when (name is not null && e.Line is not null)
        {
            throw new ChatTemplateException(e.Kind, e.Detail, e.Line, name);
        }
    }

    /// <summary>Parses template text; syntax errors carry the line number.</summary>
    public static ChatTemplate FromString(string source, string? name = null, Func<DateTime>? clock = null) =>
        new(source, name) { Clock = clock ?? (() => DateTime.Now) };

    public static ChatTemplate FromFile(string path, Func<DateTime>? clock = null) =>
        new(File.ReadAllText(path), Path.GetFileName(path)) { Clock = clock ?? (() => DateTime.Now) };

    /// <summary>
    /// The template of a model folder: <c>chat_template.jinja</c>, else <c>chat_template</c> in tokenizer_config.json
    /// (a string, or a list of {name, template} from which <paramref name="templateName"/> or "default" is chosen).
    /// </summary>
    public static ChatTemplate Load(string modelDir, string? templateName = null)
    {
        string configPath = Path.Combine(modelDir, "tokenizer_config.json");
        string? bos = null, eos = null;
        var others = new Dictionary<string, string>();
        JsonNode? config = null;
        if (File.Exists(configPath))
        {
            try { config = JsonNode.Parse(File.ReadAllText(configPath)); }
            catch (JsonException e)
            {
                throw new NibbleException($"{configPath} is not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}; fix or re-download the file.");
            }
            bos = TokenString(config?["bos_token"]);
            eos = TokenString(config?["eos_token"]);
            foreach (string key in new[] { "unk_token", "pad_token" })
                if (TokenString(config?[key]) is { } value) others[key] = value;
        }
        string jinjaPath = Path.Combine(modelDir, "chat_template.jinja");
        string source;
        string name;
        if (File.Exists(jinjaPath) && templateName is null or "default")
        {
            source = File.ReadAllText(jinjaPath);
            name = "chat_template.jinja";
        }
        else
        {
            var node = config?["chat_template"];
            if (node is JsonValue v && v.TryGetValue<string>(out var s)) { source = s; name = "tokenizer_config.json chat_template"; }
            else if (node is JsonArray list)
            {
                string want = templateName ?? "default";
                var match = list.FirstOrDefault(x => x?["name"]?.GetValue<string>() == want)
                    ?? throw new NibbleException($"{configPath} has no chat template named '{want}' (it has {string.Join(", ", list.Select(x => x?["name"]?.GetValue<string>()))}); pick one of those.");
                source = match["template"]!.GetValue<string>();
                name = $"tokenizer_config.json chat_template '{want}'";
            }
            else throw new NibbleException($"{modelDir} has no chat template (no chat_template.jinja, no chat_template in tokenizer_config.json); pass a template file with --template.");
        }
        return new ChatTemplate(source, name) { BosToken = bos, EosToken = eos, OtherSpecialTokens = others };
    }

    static string? TokenString(JsonNode? n) => n switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonObject o => o["content"]?.GetValue<string>(),
        _ => null,
    };

    /// <summary>Renders a conversation. <paramref name="messages"/> and <paramref name="tools"/> are OpenAI-format JSON arrays.</summary>
    public string Render(JsonNode messages, JsonNode? tools = null, bool addGenerationPrompt = false,
        IReadOnlyDictionary<string, object?>? extra = null, string? bosToken = null, string? eosToken = null) =>
        RenderWith(Variables(JinjaJson.FromNode(messages), tools is null ? null : JinjaJson.FromNode(tools), addGenerationPrompt, extra, bosToken, eosToken));

    /// <summary>The variables transformers passes to a chat template (messages/tools already converted to template values).</summary>
    internal Dictionary<string, object?> Variables(object? messages, object? tools, bool addGenerationPrompt,
        IReadOnlyDictionary<string, object?>? extra, string? bosToken, string? eosToken)
    {
        var vars = new Dictionary<string, object?>
        {
            ["messages"] = messages,
            ["tools"] = tools,
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        foreach (var (k, v) in OtherSpecialTokens) vars[k] = v;
        if ((bosToken ?? BosToken) is { } bos) vars["bos_token"] = bos;
        if ((eosToken ?? EosToken) is { } eos) vars["eos_token"] = eos;
        if (extra is not null) foreach (var (k, v) in extra) vars[k] = v is JsonNode n ? JinjaJson.FromNode(n) : v;
        return vars;
    }

    /// <summary>Renders with explicit template variables (already template values: string, long, double, bool, List, JinjaDict).</summary>
    public string RenderWith(IReadOnlyDictionary<string, object?> variables)
    {
        try { return JinjaInterpreter.Render(_body, variables, Name, Clock); }
        catch (ChatTemplateException e) when (e.Line is null && Name is not null) { throw new ChatTemplateException(e.Kind, e.Detail, null, Name); }
    }
}
