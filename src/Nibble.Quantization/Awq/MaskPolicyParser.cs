using Nibble.Text;

namespace Nibble.Quantization.Awq;

/// <summary>
/// Parses <c>--mask</c>: <c>default</c> (user, assistant and tool-result content and tool calls; no system prompt,
/// tool definitions or template scaffolding), <c>none</c> (every token), or a comma list of the parts to keep:
/// system, user, assistant, tool, toolcalls, tooldefs, template.
/// </summary>
public static class MaskPolicyParser
{
    public static CalibrationMaskPolicy Parse(string text)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "default": return CalibrationMaskPolicy.Default;
            case "none": case "all": return CalibrationMaskPolicy.All;
        }
        var policy = new CalibrationMaskPolicy { UserContent = false, AssistantContent = false, ToolResults = false, ToolCalls = false };
        foreach (string raw in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            policy = raw.ToLowerInvariant() switch
            {
                "system" => policy with { SystemContent = true },
                "user" => policy with { UserContent = true },
                "assistant" => policy with { AssistantContent = true },
                "tool" or "toolresults" => policy with { ToolResults = true },
                "toolcalls" => policy with { ToolCalls = true },
                "tooldefs" or "tooldefinitions" => policy with { ToolDefinitions = true },
                "template" => policy with { Template = true },
                _ => throw new NibbleException($"Unknown mask part '{raw}'; use default, none, or a comma list of system, user, assistant, tool, toolcalls, tooldefs, template."),
            };
        return policy;
    }
}
