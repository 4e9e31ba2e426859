using System.CommandLine;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Nibble.Cli.Commands;

/// <summary>`nibble doctor`: what this machine can run. No GPU is a normal state, not an error.</summary>
public static class DoctorCommand
{
    public static Command Create()
    {
        var command = new Command("doctor", "Report the runtime, CPU features and whether a CUDA driver and a Hopper GPU are present.");
        command.SetAction(_ =>
        {
            foreach (var (name, value) in Collect())
                Console.WriteLine($"{name,-10} {value}");
            return 0;
        });
        return command;
    }

    public static IEnumerable<(string Name, string Value)> Collect()
    {
        yield return ("nibble", typeof(DoctorCommand).Assembly.GetName().Version?.ToString(3) ?? "?");
        yield return ("runtime", $"{RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription} ({RuntimeInformation.ProcessArchitecture})");
        yield return ("cpu", $"{Environment.ProcessorCount} logical cores; {CpuFeatures()}");
        foreach (var line in CudaProbe.Lines()) yield return line;
    }

    static string CpuFeatures()
    {
        var features = new List<string>();
        if (Avx2.IsSupported) features.Add("AVX2");
        if (Fma.IsSupported) features.Add("FMA");
        if (Avx512F.IsSupported) features.Add("AVX-512F");
        if (Avx512BW.IsSupported) features.Add("AVX-512BW");
        if (Avx10v1.IsSupported) features.Add("AVX10.1");
        return features.Count == 0 ? "no AVX2/FMA/AVX-512 (scalar fallbacks)" : string.Join(", ", features);
    }
}
