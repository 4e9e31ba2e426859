using System.Text.Json.Nodes;
using Nibble.Text.Templates;

namespace Nibble.Tests.Text;

/// <summary>
/// Small templates exercising one Jinja feature each, against the output (or exception) of the real jinja2 3.1.6
/// configured as transformers configures it (Fixtures/make_jinja_reference.py wrote Fixtures/jinja_reference.json).
/// </summary>
public class JinjaReferenceTests
{
    static readonly Lazy<JsonNode> Reference = new(() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "Nibble.Tests", "Text", "Fixtures", "jinja_reference.json")))!);

    public static TheoryData<int> Indices()
    {
        var data = new TheoryData<int>();
        int n = Reference.Value["templates"]!.AsArray().Count;
        for (int i = 0; i < n; i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Indices))]
    public void Snippet_renders_like_jinja2(int index)
    {
        string source = Reference.Value["templates"]![index]!.GetValue<string>();
        var expected = Reference.Value["results"]![index]!;
        var messages = Reference.Value["messages"]!;
        string? output = null;
        ChatTemplateException? error = null;
        try
        {
            output = ChatTemplate.FromString(source).Render(messages, null, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>");
        }
        catch (ChatTemplateException e) { error = e; }
        if (expected["err"] is { } err)
        {
            Assert.True(error is not null, $"jinja2 raised {err} but we rendered {output}");
            string expectedError = err.GetValue<string>();
            // Syntax errors must name the same error class; their wording differs (jinja2 lists the open blocks).
            if (expectedError.StartsWith("TemplateSyntaxError", StringComparison.Ordinal)) Assert.Equal("TemplateSyntaxError", error!.Kind);
            else Assert.Equal(expectedError.TrimEnd('.'), $"{error!.Kind}: {error.Detail}".TrimEnd('.'));
        }
        else
        {
            Assert.True(error is null, error?.Message);
            Assert.Equal(expected["ok"]!.GetValue<string>(), output);
        }
    }
}
