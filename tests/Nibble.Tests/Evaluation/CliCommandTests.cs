using System.Text.Json;
using Nibble.Cli;

namespace Nibble.Tests.Evaluation;

[CollectionDefinition("Console", DisableParallelization = true)]
public sealed class ConsoleCollection;

/// <summary>`nibble generate` and `nibble eval` end to end on the bundled nano model (stdout captured).</summary>
[Collection("Console")]
public class CliCommandTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (Program.BuildRootCommand().Parse(args).Invoke(), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    static JsonElement LastJson(string output) => JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement;

    [Fact]
    public void Generate_with_json_reports_the_completion()
    {
        var (code, output, _) = Run("generate", TestPaths.BundledNano, "-p", "The kernel", "-n", "6", "--seed", "1", "--json");
        Assert.Equal(0, code);
        var json = LastJson(output);
        Assert.Equal("The kernel", json.GetProperty("prompt").GetString());
        Assert.InRange(json.GetProperty("completion_tokens").GetInt32(), 1, 6);
        Assert.False(string.IsNullOrEmpty(json.GetProperty("text").GetString()));
    }

    [Fact]
    public void Eval_json_has_perplexity_and_with_a_reference_kl_and_top1_agreement()
    {
        using var tmp = TestPaths.CreateTempDir();
        File.WriteAllText(tmp.File("t.txt"), string.Join("\n<|endoftext|>\n", Enumerable.Range(0, 6).Select(i =>
            $"Document {i}: the apt tool installs Debian packages and resolves their dependencies automatically.")));
        var (code, output, _) = Run("eval", TestPaths.BundledNano, "--text", tmp.File("t.txt"), "--window", "32", "--json");
        Assert.Equal(0, code);
        var json = LastJson(output);
        Assert.True(json.GetProperty("perplexity").GetDouble() > 1);
        Assert.False(json.TryGetProperty("kl", out _));

        (code, output, _) = Run("eval", TestPaths.BundledNano, "--text", tmp.File("t.txt"), "--window", "32", "--reference", TestPaths.BundledNano, "--json");
        Assert.Equal(0, code);
        json = LastJson(output);
        Assert.Equal(0, json.GetProperty("kl").GetDouble(), 9);
        Assert.Equal(1.0, json.GetProperty("top1_agreement").GetDouble());
    }

    [Fact]
    public void Eval_on_traces_reports_exact_match()
    {
        using var tmp = TestPaths.CreateTempDir();
        string trace = """{"messages": [{"role": "user", "content": "What is apt?"}, {"role": "assistant", "content": "A package tool."}], "tools": [], "expected_answer": "A package tool."}""";
        File.WriteAllText(tmp.File("traces.jsonl"), trace + "\n" + trace + "\n");
        var (code, output, _) = Run("eval", TestPaths.BundledNano, "--traces", tmp.File("traces.jsonl"), "--max-new-tokens", "8", "--json");
        Assert.Equal(0, code);
        var json = LastJson(output);
        Assert.Equal(2, json.GetProperty("traces").GetInt32());
        Assert.InRange(json.GetProperty("exact_match").GetDouble(), 0, 1);
    }

    [Fact]
    public void Eval_without_work_or_with_a_missing_file_fails_with_one_clear_line()
    {
        var (code, _, err) = Run("eval", TestPaths.BundledNano);
        Assert.Equal(1, code);
        Assert.StartsWith("error: Nothing to evaluate", err.Trim());
        (code, _, err) = Run("eval", TestPaths.BundledNano, "--text", "/nonexistent/file.txt");
        Assert.Equal(1, code);
        Assert.Contains("/nonexistent/file.txt", err);
        Assert.DoesNotContain("   at ", err);
    }
}
