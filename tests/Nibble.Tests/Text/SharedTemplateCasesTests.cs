using System.Text.Json.Nodes;
using Nibble.Text.Templates;

namespace Nibble.Tests.Text;

/// <summary>
/// The 34 real chat templates in ../shared/data/chat-templates against what transformers 5.17 rendered
/// (template_cases.jsonl). A case passes when the output is byte-exact, or when transformers raised and we raise too.
/// A case where we stop with an "Unsupported" error names the missing feature; anything else (a different string, or
/// rendering where transformers raised) fails.
/// </summary>
public class SharedTemplateCasesTests
{
    public sealed record Case(string Template, string Conversation, bool AddGenerationPrompt, JsonNode Messages, JsonNode? Tools, string? Expected, string? ExpectedError);

    public enum Outcome { Exact, ExpectedError, OtherError, Unsupported, Wrong }

    static readonly Lazy<List<Case>?> Cases = new(LoadCases);
    static readonly Dictionary<string, ChatTemplate?> Templates = new();
    static readonly Dictionary<string, Exception> TemplateErrors = new();

    // Templates that call strftime_now print the date the cases were generated; read it back from the expected
    // outputs (Llama 3's "Today Date: 27 Nov 2026") and pin the template clock to it.
    static readonly Lazy<DateTime> GenerationDate = new(() =>
    {
        foreach (var c in Cases.Value ?? [])
            if (c.Expected is not null && System.Text.RegularExpressions.Regex.Match(c.Expected, @"Today Date: (\d{2} \w{3} \d{4})") is { Success: true } m)
                return DateTime.ParseExact(m.Groups[1].Value, "dd MMM yyyy", System.Globalization.CultureInfo.InvariantCulture);
        return DateTime.Now;
    });

    static string CasesDir => Path.Combine(TestPaths.SharedDir, "data", "chat-templates");

    static List<Case>? LoadCases()
    {
        string path = Path.Combine(CasesDir, "template_cases.jsonl");
        if (!File.Exists(path)) return null;
        return File.ReadLines(path).Where(l => l.Trim().Length > 0).Select(l =>
        {
            var o = JsonNode.Parse(l)!;
            return new Case(o["template"]!.GetValue<string>(), o["conversation"]!.GetValue<string>(), o["add_generation_prompt"]!.GetValue<bool>(),
                o["messages"]!, o["tools"], o["expected"]?.GetValue<string>(), o["expected_error"]?.GetValue<string>());
        }).ToList();
    }

    public static TheoryData<string, string, bool> CaseKeys()
    {
        var data = new TheoryData<string, string, bool>();
        if (Cases.Value is null) { data.Add("(shared data missing)", "", false); return data; }
        foreach (var c in Cases.Value) data.Add(c.Template, c.Conversation, c.AddGenerationPrompt);
        return data;
    }

    static ChatTemplate Template(string file)
    {
        lock (Templates)
        {
            if (TemplateErrors.TryGetValue(file, out var err)) throw err;
            if (!Templates.TryGetValue(file, out var t))
            {
                try { t = ChatTemplate.FromFile(Path.Combine(CasesDir, file), () => GenerationDate.Value); }
                catch (Exception e) { TemplateErrors[file] = e; throw; }
                Templates[file] = t;
            }
            return t!;
        }
    }

    /// <summary>Renders one case and classifies it; <paramref name="detail"/> explains non-exact outcomes.</summary>
    public static Outcome Run(Case c, out string detail)
    {
        string? output = null;
        ChatTemplateException? error = null;
        try
        {
            output = Template(c.Template).Render(c.Messages, c.Tools, c.AddGenerationPrompt, bosToken: "<s>", eosToken: "</s>");
        }
        catch (ChatTemplateException e) { error = e; }
        if (c.ExpectedError is not null)
        {
            detail = error is null ? $"rendered where transformers raised {c.ExpectedError}" : $"raised {error.Kind}: {error.Detail} (transformers: {c.ExpectedError})";
            if (error is null) return Outcome.Wrong;
            return $"{error.Kind}: {error.Detail}" == c.ExpectedError ? Outcome.ExpectedError : Outcome.OtherError;
        }
        if (error is not null)
        {
            detail = error.Message;
            return error.Kind == "Unsupported" ? Outcome.Unsupported : Outcome.Wrong;
        }
        if (output == c.Expected) { detail = ""; return Outcome.Exact; }
        int at = 0;
        while (at < output!.Length && at < c.Expected!.Length && output[at] == c.Expected[at]) at++;
        detail = $"differs at char {at}: got {Snippet(output, at)} expected {Snippet(c.Expected!, at)}";
        return Outcome.Wrong;
    }

    static string Snippet(string s, int at) => System.Text.Json.JsonSerializer.Serialize(s.Substring(Math.Max(0, at - 20), Math.Min(s.Length, at + 40) - Math.Max(0, at - 20)));

    [Theory]
    [MemberData(nameof(CaseKeys))]
    public void Template_case_renders_exactly_or_fails_clearly(string template, string conversation, bool addGenerationPrompt)
    {
        TestPaths.RequireSharedData("chat-templates/template_cases.jsonl");
        var c = Cases.Value!.Single(x => x.Template == template && x.Conversation == conversation && x.AddGenerationPrompt == addGenerationPrompt);
        var outcome = Run(c, out string detail);
        Assert.SkipWhen(outcome == Outcome.Unsupported, "unsupported feature (counted, allowed): " + detail);
        Assert.True(outcome != Outcome.Wrong, detail);
    }

    [Fact]
    public void At_least_90_percent_of_template_cases_are_byte_exact_and_none_is_silently_wrong()
    {
        TestPaths.RequireSharedData("chat-templates/template_cases.jsonl");
        var runs = Cases.Value!.Select(c => (Case: c, Outcome: Run(c, out string d), Detail: d)).ToList();
        var counts = runs.GroupBy(r => r.Outcome).ToDictionary(g => g.Key, g => g.Count());
        foreach (var r in runs.Where(r => r.Outcome != Outcome.Exact))
            TestContext.Current.SendDiagnosticMessage($"{r.Case.Template} / {r.Case.Conversation} / agp={r.Case.AddGenerationPrompt}: {r.Outcome}: {r.Detail}");
        int total = Cases.Value!.Count;
        int Get(Outcome o) => counts.GetValueOrDefault(o);
        string summary = $"template cases: {total}: byte-exact {Get(Outcome.Exact)}, raised the same error as transformers {Get(Outcome.ExpectedError)}, raised a different error {Get(Outcome.OtherError)}, unsupported {Get(Outcome.Unsupported)}, wrong {Get(Outcome.Wrong)}";
        TestContext.Current.SendDiagnosticMessage(summary);
        Assert.Equal(0, Get(Outcome.Wrong));
        int rendered = total - Cases.Value!.Count(c => c.ExpectedError is not null);
        Assert.True(Get(Outcome.Exact) + Get(Outcome.ExpectedError) + Get(Outcome.OtherError) >= 0.9 * total, summary);
        Assert.True(Get(Outcome.Exact) >= 0.9 * rendered, summary);
    }
}
