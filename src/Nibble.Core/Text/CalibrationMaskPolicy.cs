namespace Nibble.Text;

/// <summary>
/// Which labelled tokens count in calibration statistics. The default keeps what varies between conversations and what
/// the model produces or reads as data (user, assistant and tool-result content, tool calls) and drops the repetitive
/// parts (system prompt, tool definitions, template scaffolding such as role headers and special tokens).
/// </summary>
public sealed record CalibrationMaskPolicy
{
    public bool SystemContent { get; init; }
    public bool UserContent { get; init; } = true;
    public bool AssistantContent { get; init; } = true;
    public bool ToolResults { get; init; } = true;
    public bool ToolCalls { get; init; } = true;
    public bool ToolDefinitions { get; init; }
    public bool Template { get; init; }

    public static CalibrationMaskPolicy Default { get; } = new();

    /// <summary>Every token (no masking): the unmasked-calibration baseline.</summary>
    public static CalibrationMaskPolicy All { get; } = new() { SystemContent = true, ToolDefinitions = true, Template = true };

    public bool Includes(TokenLabel label) => label.Kind switch
    {
        ChatSpanKind.Template => Template,
        ChatSpanKind.ToolDefinitions => ToolDefinitions,
        ChatSpanKind.ToolCall => ToolCalls,
        _ => label.Role switch
        {
            ChatRole.System => SystemContent,
            ChatRole.User => UserContent,
            ChatRole.Assistant => AssistantContent,
            ChatRole.Tool => ToolResults,
            _ => false,
        },
    };
}
