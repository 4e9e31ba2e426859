using System.CommandLine;

namespace Nibble.Cli.Commands;

/// <summary>
/// `--cuda-graphs on|off` of generate, chat and serve: whether <see cref="Nibble.Engine.Generator.CudaGraphs"/> replays
/// one-token decode steps from a captured CUDA graph (default on; no effect on the CPU backend or for models whose
/// step cannot be captured, which run eagerly).
/// </summary>
public static class CudaGraphsOption
{
    public const string Name = "--cuda-graphs";

    public static Option<string> Create() => new(Name)
    {
        Description = "Replay decode steps from a CUDA graph on the GPU: on (default) or off (eager launches, e.g. to compare or debug).",
        DefaultValueFactory = _ => "on",
    };

    /// <summary>on/off (also true/false, 1/0, yes/no; any case) as a bool; anything else is a <see cref="NibbleException"/> naming the value.</summary>
    public static bool Parse(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "on" or "true" or "1" or "yes" => true,
        "off" or "false" or "0" or "no" => false,
        _ => throw new NibbleException($"{Name} '{value}' is neither on nor off; write {Name} on or {Name} off."),
    };
}
