namespace Nibble.Text;

/// <summary>Whose text a character or token is. Unknown roles map to <see cref="Other"/> ("developer" counts as system, "ipython" as tool).</summary>
public enum ChatRole { System, User, Assistant, Tool, Other }

/// <summary>What a character or token is: a message's own content, template scaffolding, the rendered tool definitions, or an assistant's tool call.</summary>
public enum ChatSpanKind { Content, Template, ToolDefinitions, ToolCall }

/// <summary>The label of one character or token. <see cref="MessageIndex"/> is -1 for text that belongs to no message (the generation prompt, a preamble).</summary>
public readonly record struct TokenLabel(ChatRole Role, ChatSpanKind Kind, int MessageIndex)
{
    public override string ToString() => $"{Role.ToString().ToLowerInvariant()}/{KindName(Kind)}";

    public static string KindName(ChatSpanKind kind) => kind switch
    {
        ChatSpanKind.Content => "content",
        ChatSpanKind.Template => "template",
        ChatSpanKind.ToolDefinitions => "tool_definitions",
        _ => "tool_call",
    };

    public static ChatRole ParseRole(string? role) => role switch
    {
        "system" or "developer" => ChatRole.System,
        "user" => ChatRole.User,
        "assistant" => ChatRole.Assistant,
        "tool" or "ipython" or "function" => ChatRole.Tool,
        _ => ChatRole.Other,
    };
}

/// <summary>A labelled character range [Start, End) of rendered chat text.</summary>
public sealed record ChatSpan(int Start, int End, TokenLabel Label);
