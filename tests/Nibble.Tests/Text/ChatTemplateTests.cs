using System.Diagnostics;
using System.Text.Json.Nodes;
using Nibble.Text.Templates;

namespace Nibble.Tests.Text;

public class ChatTemplateTests
{
    static readonly JsonNode Conversation = JsonNode.Parse("""
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
        """)!;

    [Fact]
    public void The_bundled_model_template_renders_chatml_with_its_default_system_prompt()
    {
        var template = ChatTemplate.Load(TestPaths.BundledNano);
        Assert.Equal("<|im_end|>", template.EosToken);
        string text = template.Render(JsonNode.Parse("""[{"role": "user", "content": "Hi"}]""")!, addGenerationPrompt: true);
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", text);
    }

    [Fact]
    public void Templates_load_from_tokenizer_config_as_a_string_or_a_named_list()
    {
        using var dir = TestPaths.CreateTempDir();
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"bos_token": {"content": "<s>"}, "eos_token": "</s>", "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}"}""");
        Assert.Equal("<s>Be brief.HiHello.</s>", ChatTemplate.Load(dir.Path).Render(Conversation));

        File.WriteAllText(dir.File("tokenizer_config.json"), """
            {"chat_template": [{"name": "default", "template": "D{{ messages | length }}"}, {"name": "tool_use", "template": "T{{ tools | length }}"}]}
            """);
        Assert.Equal("D3", ChatTemplate.Load(dir.Path).Render(Conversation));
        Assert.Equal("T0", ChatTemplate.Load(dir.Path, "tool_use").Render(Conversation, new JsonArray()));
        var e = Assert.Throws<NibbleException>(() => ChatTemplate.Load(dir.Path, "rag"));
        Assert.Contains("tool_use", e.Message);

        File.WriteAllText(dir.File("chat_template.jinja"), "J{{ messages[0].role }}\n");
        Assert.Equal("Jsystem", ChatTemplate.Load(dir.Path).Render(Conversation)); // the file wins; one trailing newline is dropped like jinja2
    }

    [Fact]
    public void A_folder_without_a_template_gives_one_clear_error()
    {
        using var dir = TestPaths.CreateTempDir();
        var e = Assert.Throws<NibbleException>(() => ChatTemplate.Load(dir.Path));
        Assert.Contains("no chat template", e.Message);
    }

    [Fact]
    public void Malformed_templates_name_the_problem_and_the_line()
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromString("{% for m in messages %}\n{{ m.content }}\n{{ 1 +* 2 }}\n{% endfor %}", "t.jinja"));
        Assert.Equal("TemplateSyntaxError", e.Kind);
        Assert.Equal(3, e.Line);
        Assert.Contains("t.jinja, line 3", e.Message);

        var open = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromString("{% if x %}\nunclosed"));
        Assert.Contains("endif", open.Message);
    }

    [Fact]
    public void Runtime_errors_carry_the_line_and_unsupported_features_are_named()
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromString("ok\n{{ messages[0].content + 1 }}").Render(Conversation));
        Assert.Equal("TypeError", e.Kind);
        Assert.Equal(2, e.Line);

        var u = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromString("{% include 'other.jinja' %}"));
        Assert.Equal("Unsupported", u.Kind);
        Assert.Contains("include", u.Message);
        var raised = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromString("{{ raise_exception('no system role') }}").Render(Conversation));
        Assert.Equal("TemplateError", raised.Kind);
        Assert.Contains("no system role", raised.Message);
    }

    [Fact]
    public void Strftime_now_reads_the_template_clock()
    {
        var t = ChatTemplate.FromString("{{ strftime_now('%d %b %Y %H:%M') }}", clock: () => new DateTime(2024, 3, 5, 7, 8, 9));
        Assert.Equal("05 Mar 2024 07:08", t.Render(Conversation));
    }

    static (int Code, string Stdout, string Stderr) RunCli(params string[] args)
    {
        string dll = typeof(Nibble.Cli.Program).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, StandardOutputEncoding = System.Text.Encoding.UTF8 };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, stderr);
    }

    [Fact]
    public void Cli_render_writes_the_exact_text_without_a_newline_and_errors_go_to_stderr()
    {
        using var dir = TestPaths.CreateTempDir();
        File.WriteAllText(dir.File("t.jinja"), "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}");
        File.WriteAllText(dir.File("c.json"), new JsonObject { ["messages"] = Conversation.DeepClone(), ["tools"] = null }.ToJsonString());
        var (code, stdout, _) = RunCli("chat-template", "render", "--template", dir.File("t.jinja"), "--conversation", dir.File("c.json"), "--add-generation-prompt", "--bos", "<s>");
        Assert.Equal(0, code);
        Assert.Equal("<s>[system] Be brief.\n[user] Hi\n[assistant] Hello.\n[assistant] ", stdout);

        File.WriteAllText(dir.File("bad.jinja"), "{{ raise_exception('nope') }}");
        var (badCode, badOut, badErr) = RunCli("chat-template", "render", "--template", dir.File("bad.jinja"), "--conversation", dir.File("c.json"));
        Assert.Equal(1, badCode);
        Assert.Equal("", badOut);
        Assert.StartsWith("error: chat template TemplateError: nope", badErr);
    }

    [Fact]
    public void Cli_tokenize_prints_ids_pieces_and_chat_labels_as_json()
    {
        var (code, stdout, _) = RunCli("tokenize", TestPaths.BundledNano, "--text", "a<|endoftext|>b", "--json");
        Assert.Equal(0, code);
        var o = JsonNode.Parse(stdout)!;
        Assert.Equal("[67,0,68]", o["ids"]!.ToJsonString());
        Assert.Equal("<|endoftext|>", o["pieces"]![1]!.GetValue<string>());

        using var dir = TestPaths.CreateTempDir();
        File.WriteAllText(dir.File("c.json"), new JsonObject { ["messages"] = Conversation.DeepClone() }.ToJsonString());
        (code, stdout, _) = RunCli("tokenize", TestPaths.BundledNano, "--chat", dir.File("c.json"), "--json");
        Assert.Equal(0, code);
        o = JsonNode.Parse(stdout)!;
        var mask = o["mask"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        var roles = o["roles"]!.AsArray().Select(x => x!.GetValue<string>()).ToArray();
        var kinds = o["kinds"]!.AsArray().Select(x => x!.GetValue<string>()).ToArray();
        Assert.Equal(o["ids"]!.AsArray().Count, mask.Length);
        for (int i = 0; i < mask.Length; i++)
            Assert.Equal(kinds[i] == "content" && roles[i] is "user" or "assistant" ? 1 : 0, mask[i]);
        Assert.Contains(1, mask);
    }

    [Fact]
    public void Messages_built_from_dotnet_values_render_like_parsed_json()
    {
        var template = ChatTemplate.FromString("{% for m in messages %}<{{ m.role }}|{{ m.content }}|{{ m.n + 1 }}>{% endfor %}");
        var built = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi \"there\"", ["n"] = 41 });
        var parsed = JsonNode.Parse("""[{"role": "user", "content": "Hi \"there\"", "n": 41}]""")!;
        Assert.Equal(template.Render(parsed), template.Render(built));
        Assert.Equal("<user|Hi \"there\"|42>", template.Render(built));
    }
}
