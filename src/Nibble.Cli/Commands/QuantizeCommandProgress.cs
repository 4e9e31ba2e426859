using Nibble.Quantization.Awq;
using Spectre.Console;

namespace Nibble.Cli.Commands;

/// <summary>A Spectre.Console progress bar per AWQ stage (layer) with elapsed time and ETA, on stderr.</summary>
internal static class QuantizeCommandProgress
{
    public static void Run(Action<IProgress<AwqProgress>> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask? overall = null;
                ProgressTask? current = null;
                string? stage = null;
                int stageStart = 0;
                work(new Sync(p =>
                {
                    overall ??= ctx.AddTask("quantize (all layers)", maxValue: p.Total);
                    overall.Value = p.Done;
                    if (p.Stage != stage)
                    {
                        if (current is not null) current.Value = current.MaxValue;
                        stage = p.Stage;
                        stageStart = p.Done - 1;
                        current = ctx.AddTask(p.Stage, maxValue: Math.Max(1, PerStage(p)));
                    }
                    current!.Value = p.Done - stageStart;
                }));
                if (current is not null) current.Value = current.MaxValue;
                if (overall is not null) overall.Value = overall.MaxValue;
            });
    }

    // Stages are layers of equal work for dense models; an even split of the total is a good bar length.
    static int PerStage(AwqProgress p) => p.Stage.StartsWith("AWQ layer ") && int.TryParse(p.Stage.Split('/').Last(), out int layers)
        ? p.Total / Math.Max(1, layers) : p.Total;

    sealed class Sync(Action<AwqProgress> report) : IProgress<AwqProgress>
    {
        public void Report(AwqProgress value) => report(value);
    }
}
