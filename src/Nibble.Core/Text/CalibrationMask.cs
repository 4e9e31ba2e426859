using System.Text.Json;
using System.Text.Json.Nodes;
using Nibble.Text.Templates;
using Nibble.Text.Tokenization;

namespace Nibble.Text;

/// <summary>A rendered, tokenized conversation: ids, one label per token, and the calibration mask under a policy.</summary>
public sealed record LabeledTokens(int[] Ids, TokenLabel[] Labels, bool[] Mask, RenderedChat Rendered);

/// <summary>
/// Builds the 0/1 token mask that keeps system prompts, tool definitions and template scaffolding out of calibration
/// statistics (the token masking of agentic-trace calibration), from per-token labels.
/// </summary>
public static class CalibrationMask
{
    /// <summary>true where the policy includes the token.</summary>
    public static bool[] Build(IReadOnlyList<TokenLabel> labels, CalibrationMaskPolicy? policy = null)
    {
        policy ??= CalibrationMaskPolicy.Default;
        var mask = new bool[labels.Count];
        for (int i = 0; i < mask.Length; i++) mask[i] = policy.Includes(labels[i]);
        return mask;
    }

    /// <summary>Renders a conversation with the template, encodes it, labels every token and applies the policy.</summary>
    public static LabeledTokens Encode(HfTokenizer tokenizer, ChatTemplate template, JsonNode messages, JsonNode? tools = null,
        bool addGenerationPrompt = false, CalibrationMaskPolicy? policy = null)
    {
        var rendered = RoleSpanRenderer.Render(template, messages, tools, addGenerationPrompt);
        var (ids, offsets) = tokenizer.EncodeWithOffsets(rendered.Text);
        var labels = rendered.LabelTokens(offsets);
        return new LabeledTokens(ids, labels, Build(labels, policy), rendered);
    }

    /// <summary>
    /// One line of a trace file (<c>{"messages": [...], "tools": [...], ...}</c>, e.g. ../shared/data/calib_traces.jsonl):
    /// the whole conversation rendered without a generation prompt, its ids and its mask.
    /// </summary>
    public static LabeledTokens FromTraceLine(string jsonLine, HfTokenizer tokenizer, ChatTemplate template, CalibrationMaskPolicy? policy = null)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(jsonLine); }
        catch (JsonException e) { throw new NibbleException($"A trace line is not valid JSON (byte {e.BytePositionInLine + 1}): {e.Message.Split(". ")[0]}; fix the trace file."); }
        var messages = root?["messages"] ?? throw new NibbleException("A trace line has no \"messages\" array; each line must be {\"messages\": [...], \"tools\": [...]}.");
        return Encode(tokenizer, template, messages, root!["tools"], addGenerationPrompt: false, policy);
    }
}
