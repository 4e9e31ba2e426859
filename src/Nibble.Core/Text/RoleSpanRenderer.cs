using System.Text.Json.Nodes;
using Nibble.Text.Templates;

namespace Nibble.Text;

/// <summary>
/// Renders a conversation and labels every character with its message, role and kind, using only the template as a
/// black box (no interpreter hooks, so it works for any template the interpreter renders):
/// <list type="number">
/// <item>Prefix renders: the template is rendered for messages[..k] (no generation prompt) for every k; the common prefix of
/// that render with the full text ends message k-1's turn. Text of a turn is scaffolding of that message's role.</item>
/// <item>Content: each message's content string is searched in the text, in order, from the start of its turn
/// (exact, then trimmed). Found characters are labelled content.</item>
/// <item>Tool calls: the prefix ending at an assistant message is rendered again without its <c>tool_calls</c>; the
/// region where the two renders differ (after common prefix and suffix) is the tool-call text.</item>
/// <item>Tool definitions: the whole conversation is rendered again with <c>tools=None</c>; the region where the two renders
/// differ, minus content and tool calls, is labelled tool definitions.</item>
/// </list>
/// Limits: a template that rewrites content (e.g. strips reasoning, escapes it) leaves that content labelled template,
/// recorded in <see cref="RenderedChat.Notes"/>; a template that changes earlier turns when later messages arrive makes the
/// turn boundaries fall back to the longest common prefix; tool definitions placed far from each other are labelled as
/// one region including what lies between (still never content). Content repeated verbatim elsewhere before its turn is
/// not mistaken for it, because the search starts at the message's turn.
/// </summary>
public static class RoleSpanRenderer
{
    public static RenderedChat Render(ChatTemplate template, JsonNode messages, JsonNode? tools = null, bool addGenerationPrompt = false,
        IReadOnlyDictionary<string, object?>? extra = null)
    {
        if (JinjaJson.FromNode(messages) is not List<object?> msgs)
            throw new NibbleException("The conversation's \"messages\" must be a JSON array of message objects; fix the conversation file.");
        object? toolValues = tools is null ? null : JinjaJson.FromNode(tools);
        if (toolValues is List<object?> { Count: 0 }) toolValues = null;
        var notes = new List<string>();
        string R(List<object?> m, object? t, bool agp) => template.RenderWith(template.Variables(m, t, agp, extra, null, null));

        string text = R(msgs, toolValues, addGenerationPrompt);
        var labels = new TokenLabel[text.Length];
        var roles = msgs.Select(m => TokenLabel.ParseRole((m as JinjaDict)?.GetValueOrDefault("role") as string)).ToArray();

        // 1. Turn boundaries from prefix renders.
        var bounds = new int[msgs.Count + 1];
        var prefixRenders = new string?[msgs.Count + 1];
        bounds[0] = TryRender(() => R([], toolValues, false), null, "empty conversation") is { } r0 ? CommonPrefix(r0, text) : 0;
        for (int k = 1; k <= msgs.Count; k++)
        {
            string? rk = k == msgs.Count && !addGenerationPrompt ? text : TryRender(() => R(msgs.Take(k).ToList(), toolValues, false), notes, $"first {k} messages");
            prefixRenders[k] = rk;
            bounds[k] = Math.Max(bounds[k - 1], rk is null ? bounds[k - 1] : CommonPrefix(rk, text));
        }
        ChatRole firstRole = roles.Length > 0 ? roles[0] : ChatRole.Other;
        for (int i = 0; i < text.Length; i++) labels[i] = new TokenLabel(firstRole, ChatSpanKind.Template, roles.Length > 0 ? 0 : -1);
        for (int k = 0; k < msgs.Count; k++)
            for (int i = bounds[k]; i < bounds[k + 1]; i++) labels[i] = new TokenLabel(roles[k], ChatSpanKind.Template, k);
        for (int i = bounds[msgs.Count]; i < text.Length; i++) labels[i] = new TokenLabel(ChatRole.Assistant, ChatSpanKind.Template, -1);

        var fixedKind = new bool[text.Length]; // content and tool calls win over tool definitions

        // 2. Content, searched in order from each message's turn.
        int cursor = 0;
        for (int k = 0; k < msgs.Count; k++)
        {
            var msg = msgs[k] as JinjaDict;
            int from = Math.Max(bounds[k], k == 0 ? 0 : Math.Min(cursor, bounds[k + 1]));
            foreach (string part in ContentParts(msg?.GetValueOrDefault("content")))
            {
                if (part.Length == 0) continue;
                int at = Find(text, part, from, out int length);
                // A prefix render can share the first characters of this content (a default system prompt starting
                // like the real one), putting the turn boundary inside it: retry from the previous content's end.
                if (at < 0 && cursor < from) at = Find(text, part, cursor, out length);
                if (at < 0) { notes.Add($"message {k} ({roles[k]}): content not found verbatim in the rendered text; labelled template"); continue; }
                for (int i = at; i < at + length; i++) { labels[i] = new TokenLabel(roles[k], ChatSpanKind.Content, k); fixedKind[i] = true; }
                from = cursor = at + length;
            }
        }

        // 3. Tool calls: diff the prefix render with and without this message's tool_calls.
        for (int k = 0; k < msgs.Count; k++)
        {
            if (msgs[k] is not JinjaDict msg || msg.GetValueOrDefault("tool_calls") is not List<object?> { Count: > 0 }) continue;
            var without = new JinjaDict();
            foreach (var (key, v) in msg) if (!Equals(key, "tool_calls")) without[key] = v;
            var prefix = msgs.Take(k).Append(without).ToList();
            string? withCalls = prefixRenders[k + 1];
            string? noCalls = TryRender(() => R(prefix, toolValues, false), notes, $"message {k} without tool_calls");
            if (withCalls is null || noCalls is null) continue;
            var (start, end) = DiffRegion(withCalls, noCalls);
            // The region's offsets hold in the full text when the prefix render is a prefix of it; otherwise (templates
            // that render the last message differently) find the region's text in the full text from the turn start.
            if (end > bounds[k + 1] && end > start)
            {
                int found = text.IndexOf(withCalls[start..end], bounds[k], StringComparison.Ordinal);
                if (found >= 0) (start, end) = (found, found + end - start);
                else end = bounds[k + 1];
            }
            start = Math.Max(start, bounds[k]); // never reach back into earlier turns
            if (end <= start) { notes.Add($"message {k}: tool calls not located"); continue; }
            for (int i = start; i < end; i++)
                if (labels[i].Kind != ChatSpanKind.Content) { labels[i] = new TokenLabel(ChatRole.Assistant, ChatSpanKind.ToolCall, k); fixedKind[i] = true; }
        }

        // 4. Tool definitions: diff the full render with and without tools.
        // Some templates cannot render tools=None (they iterate it); an empty list is the next best "no tools".
        if (toolValues is not null &&
            (TryRender(() => R(msgs, null, addGenerationPrompt), null, "") ?? TryRender(() => R(msgs, new List<object?>(), addGenerationPrompt), notes, "conversation without tools")) is { } noTools)
        {
            var (start, end) = DiffRegion(text, noTools);
            for (int i = start; i < end; i++)
                if (!fixedKind[i]) labels[i] = labels[i] with { Kind = ChatSpanKind.ToolDefinitions };
        }
        return new RenderedChat(text, labels, notes);
    }

    static IEnumerable<string> ContentParts(object? content)
    {
        if (content is string s) { yield return s; yield break; }
        if (content is List<object?> parts)
            foreach (var p in parts)
                if (p is JinjaDict d && d.GetValueOrDefault("text") is string t) yield return t;
    }

    /// <summary>
    /// Finds content verbatim, else trimmed (templates often apply |trim), else JSON-escaped (templates that pass tool
    /// results through |tojson); returns the index and matched length.
    /// </summary>
    static int Find(string text, string content, int from, out int length)
    {
        from = Math.Clamp(from, 0, text.Length);
        string trimmed = content.Trim();
        var sb = new System.Text.StringBuilder();
        PyJson.WriteString(sb, trimmed, ensureAscii: false);
        string escaped = sb.ToString()[1..^1];
        foreach (string candidate in new[] { content, trimmed, escaped })
        {
            if (candidate.Length == 0) continue;
            int at = text.IndexOf(candidate, from, StringComparison.Ordinal);
            if (at >= 0) { length = candidate.Length; return at; }
        }
        length = 0;
        return -1;
    }

    static string? TryRender(Func<string> render, List<string>? notes, string what)
    {
        try { return render(); }
        catch (ChatTemplateException e)
        {
            // Many templates cannot render an empty conversation; that is expected and not worth a note.
            notes?.Add($"rendering the {what} failed ({e.Kind}); boundaries there fall back to neighbours");
            return null;
        }
    }

    static int CommonPrefix(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }

    /// <summary>
    /// The region of <paramref name="a"/> left after removing its common suffix, then its common prefix, with
    /// <paramref name="b"/>. Suffix first: what a template adds (tool calls, tool blocks) is usually followed by shared
    /// closing scaffolding such as "&lt;|im_end|&gt;", and taking the prefix first would let that scaffolding's first
    /// characters ("&lt;") be absorbed when the added text happens to start with the same character.
    /// </summary>
    static (int Start, int End) DiffRegion(string a, string b)
    {
        int s = 0, n = Math.Min(a.Length, b.Length);
        while (s < n && a[a.Length - 1 - s] == b[b.Length - 1 - s]) s++;
        int p = 0, maxP = Math.Min(a.Length, b.Length) - s;
        while (p < maxP && a[p] == b[p]) p++;
        return (p, a.Length - s);
    }
}
