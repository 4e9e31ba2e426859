using System.Text.Json.Nodes;
using Nibble.Text;
using Nibble.Text.Templates;
using Nibble.Text.Tokenization;

namespace Nibble.Tests.Text;

public class CalibrationMaskTests
{
    static readonly Lazy<HfTokenizer> Tokenizer = new(() => HfTokenizer.Load(TestPaths.BundledNano));
    static readonly Lazy<ChatTemplate> Template = new(() => ChatTemplate.Load(TestPaths.BundledNano));

    [Fact]
    public void The_first_calibration_trace_gets_exactly_the_hand_checked_mask()
    {
        string line = File.ReadLines(TestPaths.RequireSharedData("calib_traces.jsonl")).First();
        var trace = JsonNode.Parse(line)!;
        var m = trace["messages"]!.AsArray();
        var result = CalibrationMask.FromTraceLine(line, Tokenizer.Value, Template.Value);

        // By hand, from the ChatML layout of models/nano/chat_template.jinja: everything up to the first user turn is
        // system prompt + tool definitions (0); then role headers and <|im_end|> are scaffolding (0); the user question,
        // the whole <tool_call>...</tool_call> block, the tool result and the final answer are 1.
        string text = result.Rendered.Text;
        int userTurn = text.IndexOf("<|im_end|>\n<|im_start|>user\n", StringComparison.Ordinal);
        Assert.True(userTurn > 0);
        var call = m[2]!["tool_calls"]![0]!["function"]!;
        string callText = "<tool_call>\n{\"name\": \"" + call["name"]!.GetValue<string>() + "\", \"arguments\": "
            + "{\"word\": \"" + call["arguments"]!["word"]!.GetValue<string>() + "\"}}\n</tool_call>";
        var segments = new (string Text, bool Masked)[]
        {
            (text[..userTurn], false),
            ("<|im_end|>\n<|im_start|>user\n", false), (m[1]!["content"]!.GetValue<string>(), true),
            ("<|im_end|>\n<|im_start|>assistant\n", false), (callText, true),
            ("<|im_end|>\n<|im_start|>tool\n", false), (m[3]!["content"]!.GetValue<string>(), true),
            ("<|im_end|>\n<|im_start|>assistant\n", false), (m[4]!["content"]!.GetValue<string>(), true),
            ("<|im_end|>\n", false),
        };
        Assert.Equal(text, string.Concat(segments.Select(s => s.Text)));
        var expectedIds = new List<int>();
        var expectedMask = new List<bool>();
        foreach (var (segment, masked) in segments)
        {
            int[] ids = Tokenizer.Value.Encode(segment);
            expectedIds.AddRange(ids);
            expectedMask.AddRange(Enumerable.Repeat(masked, ids.Length));
        }
        Assert.Equal(expectedIds, result.Ids); // the segments are token-aligned, so the per-segment masks are exact
        Assert.Equal(expectedMask, result.Mask);
        Assert.True(result.Mask.Count(x => x) is > 50 and < 400);
    }

    [Fact]
    public void On_shared_traces_the_default_mask_covers_only_user_tool_result_and_assistant_tokens()
    {
        var lines = File.ReadLines(TestPaths.RequireSharedData("calib_traces.jsonl")).Take(24).ToList();
        foreach (string line in lines)
        {
            var r = CalibrationMask.FromTraceLine(line, Tokenizer.Value, Template.Value);
            Assert.Empty(r.Rendered.Notes);
            var messages = JsonNode.Parse(line)!["messages"]!.AsArray();
            for (int i = 0; i < r.Ids.Length; i++)
            {
                var label = r.Labels[i];
                bool wanted = label.Kind is ChatSpanKind.Content or ChatSpanKind.ToolCall && label.Role is ChatRole.User or ChatRole.Tool or ChatRole.Assistant;
                Assert.Equal(wanted, r.Mask[i]);
            }
            // Each non-system message's content decodes back from exactly its content-labelled tokens.
            for (int k = 0; k < messages.Count; k++)
            {
                string content = messages[k]!["content"]!.GetValue<string>();
                var ids = r.Ids.Where((_, i) => r.Labels[i].MessageIndex == k && r.Labels[i].Kind == ChatSpanKind.Content).ToArray();
                Assert.Equal(content, Tokenizer.Value.Decode(ids));
            }
            Assert.Contains(r.Labels, l => l.Kind == ChatSpanKind.ToolDefinitions);
            Assert.DoesNotContain(r.Labels.Where((_, i) => r.Mask[i]), l => l.Role == ChatRole.System);
        }
    }

    [Fact]
    public void Policies_switch_groups_of_tokens_on_and_off()
    {
        var labels = new[]
        {
            new TokenLabel(ChatRole.System, ChatSpanKind.Content, 0), new TokenLabel(ChatRole.System, ChatSpanKind.ToolDefinitions, 0),
            new TokenLabel(ChatRole.User, ChatSpanKind.Template, 1), new TokenLabel(ChatRole.User, ChatSpanKind.Content, 1),
            new TokenLabel(ChatRole.Assistant, ChatSpanKind.ToolCall, 2), new TokenLabel(ChatRole.Tool, ChatSpanKind.Content, 3),
            new TokenLabel(ChatRole.Assistant, ChatSpanKind.Content, 4),
        };
        Assert.Equal([false, false, false, true, true, true, true], CalibrationMask.Build(labels));
        Assert.All(CalibrationMask.Build(labels, CalibrationMaskPolicy.All), Assert.True);
        Assert.Equal([true, false, false, true, false, false, true],
            CalibrationMask.Build(labels, new CalibrationMaskPolicy { SystemContent = true, ToolCalls = false, ToolResults = false }));
    }

    [Fact]
    public void Role_spans_label_content_exactly_on_the_shared_templates()
    {
        string casesPath = TestPaths.RequireSharedData("chat-templates/template_cases.jsonl");
        string dir = Path.GetDirectoryName(casesPath)!;
        int rendered = 0, allContentFound = 0, toolConversations = 0, callsFound = 0, defsFound = 0;
        foreach (string line in File.ReadLines(casesPath))
        {
            var c = JsonNode.Parse(line)!;
            if (c["expected"] is null || !c["add_generation_prompt"]!.GetValue<bool>()) continue;
            var template = ChatTemplate.FromFile(Path.Combine(dir, c["template"]!.GetValue<string>()));
            var extra = new Dictionary<string, object?> { ["bos_token"] = "<s>", ["eos_token"] = "</s>" };
            var chat = RoleSpanRenderer.Render(template, c["messages"]!, c["tools"], true, extra);
            Assert.Equal(c["expected"]!.GetValue<string>(), chat.Text);
            rendered++;
            var messages = c["messages"]!.AsArray();
            bool all = true;
            for (int k = 0; k < messages.Count; k++)
            {
                string content = messages[k]!["content"]?.GetValue<string>() ?? "";
                string labelled = string.Concat(Enumerable.Range(0, chat.Text.Length)
                    .Where(i => chat.LabelAt(i).Kind == ChatSpanKind.Content && chat.LabelAt(i).MessageIndex == k).Select(i => chat.Text[i]));
                // Whatever is labelled content of message k is that message's content (never scaffolding).
                if (labelled.Length > 0) Assert.Contains(labelled.Trim(), new[] { content.Trim(), System.Text.Json.JsonSerializer.Serialize(content.Trim())[1..^1].Replace("\\u0022", "\\\"") });
                if (content.Trim().Length > 0 && labelled.Length == 0)
                {
                    all = false;
                    TestContext.Current.SendDiagnosticMessage($"{c["template"]} / {c["conversation"]}: message {k} content not located");
                }
                var role = TokenLabel.ParseRole(messages[k]!["role"]!.GetValue<string>());
                Assert.All(Enumerable.Range(0, chat.Text.Length).Where(i => chat.LabelAt(i).Kind == ChatSpanKind.Content && chat.LabelAt(i).MessageIndex == k),
                    i => Assert.Equal(role, chat.LabelAt(i).Role));
            }
            if (all) allContentFound++;
            if (c["tools"] is not null)
            {
                string Kind(ChatSpanKind kind) => string.Concat(Enumerable.Range(0, chat.Text.Length).Where(i => chat.LabelAt(i).Kind == kind).Select(i => chat.Text[i]));
                string calls = Kind(ChatSpanKind.ToolCall), defs = Kind(ChatSpanKind.ToolDefinitions);
                toolConversations++;
                if (calls.Contains("get_weather") && calls.Contains("Paris")) callsFound++;
                else TestContext.Current.SendDiagnosticMessage($"{c["template"]}: tool call not labelled ({calls.Length} chars)");
                if (defs.Contains("Get the weather for a city.")) defsFound++;
                else TestContext.Current.SendDiagnosticMessage($"{c["template"]}: tool definitions not labelled ({defs.Length} chars)");
                // Labelled tool calls and definitions never swallow a message's content.
                Assert.DoesNotContain("It is 18", calls + defs);
            }
        }
        TestContext.Current.SendDiagnosticMessage($"role spans, tools conversation: tool call located in {callsFound} of {toolConversations}, tool definitions in {defsFound} of {toolConversations}");
        TestContext.Current.SendDiagnosticMessage($"role spans: {allContentFound} of {rendered} rendered template conversations have every message's content located");
        Assert.True(allContentFound >= rendered * 0.9, $"{allContentFound} of {rendered}");
        Assert.True(callsFound >= toolConversations * 0.9 && defsFound >= toolConversations * 0.9, $"calls {callsFound}, definitions {defsFound} of {toolConversations}");
    }
}
