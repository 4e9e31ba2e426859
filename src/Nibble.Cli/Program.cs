using System.CommandLine;
using Nibble.Cli.Commands;

namespace Nibble.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = BuildRootCommand();
        return root.Parse(args).Invoke();
    }

    /// <summary>Every subcommand registers here; each lives in its own file under Commands/.</summary>
    public static RootCommand BuildRootCommand()
    {
        var root = new RootCommand("Nibble: W4A8 quantization and inference for LLMs on NVIDIA Hopper, from .NET.");
        root.Subcommands.Add(DoctorCommand.Create());
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(TokenizeCommand.Create());
        root.Subcommands.Add(ChatTemplateCommand.Create());
        root.Subcommands.Add(ChatCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(QuantizeCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(QualityReportCommand.Create());
        return root;
    }
}
