using System.Text.Json;
using Nibble.Cli;
using Nibble.Cli.Commands;

namespace Nibble.Tests.Cli;

/// <summary>`--cuda-graphs on|off` of generate, chat and serve (no GPU needed: parsing, errors, and the value reaching the generator).</summary>
[Collection("Console")]
public class CudaGraphsOptionTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr, oldIn) = (Console.Out, Console.Error, Console.In);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        Console.SetIn(new StringReader("")); // chat would read stdin; it must fail before
        try { return (Program.BuildRootCommand().Parse(args).Invoke(), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); Console.SetIn(oldIn); }
    }

    [Theory]
    [InlineData("on", true)]
    [InlineData("OFF", false)]
    [InlineData(" off ", false)]
    [InlineData("true", true)]
    [InlineData("0", false)]
    public void On_and_off_parse_in_any_case(string value, bool expected) => Assert.Equal(expected, CudaGraphsOption.Parse(value));

    [Theory]
    [InlineData("maybe")]
    [InlineData("")]
    [InlineData("of")]
    public void A_bad_value_gives_one_sentence_naming_it_and_the_fix(string value)
    {
        var e = Assert.Throws<NibbleException>(() => CudaGraphsOption.Parse(value));
        Assert.Equal($"--cuda-graphs '{value}' is neither on nor off; write --cuda-graphs on or --cuda-graphs off.", e.Message);
    }

    [Theory]
    [InlineData("generate")]
    [InlineData("chat")]
    [InlineData("serve")]
    public void Each_decoding_command_takes_the_option_defaulting_to_on(string command)
    {
        var root = Program.BuildRootCommand();
        var byDefault = root.Parse([command]);
        Assert.Empty(byDefault.Errors);
        Assert.Equal("on", byDefault.GetValue<string>(CudaGraphsOption.Name));
        var off = root.Parse([command, "--cuda-graphs", "off"]);
        Assert.Empty(off.Errors);
        Assert.Equal("off", off.GetValue<string>(CudaGraphsOption.Name));
    }

    [Theory]
    [InlineData("generate")]
    [InlineData("chat")]
    [InlineData("serve")]
    public void A_bad_value_stops_the_command_with_exit_code_1_before_loading_the_model(string command)
    {
        // The model directory does not exist: an error about it would mean the option was checked too late.
        var (code, output, err) = Run(command, "/nonexistent/model", "--cuda-graphs", "sometimes", "--device", "cpu");
        Assert.Equal(1, code);
        Assert.Equal("error: --cuda-graphs 'sometimes' is neither on nor off; write --cuda-graphs on or --cuda-graphs off.", err.Trim());
        Assert.Equal("", output);
    }

    [Fact]
    public void Generate_passes_the_choice_to_the_generator()
    {
        foreach (var (args, expected) in new[] { (Array.Empty<string>(), true), (["--cuda-graphs", "off"], false), (new[] { "--cuda-graphs", "On" }, true) })
        {
            var (code, output, err) = Run(["generate", TestPaths.BundledNano, "-p", "The kernel", "-n", "3", "--seed", "1", "--json", .. args]);
            Assert.True(code == 0, err);
            var json = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement;
            Assert.Equal(expected, json.GetProperty("cuda_graphs").GetBoolean());
        }
    }
}
