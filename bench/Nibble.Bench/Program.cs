namespace Nibble.Bench;

/// <summary>Benchmarks: `dotnet run --project bench/Nibble.Bench -c Release -- &lt;suite&gt; [--out dir]`.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "gemm") return GpuGemmSuite.Run(args[1..]);
        if (args.Length > 0 && args[0] == "ops") return GpuOpsSuite.Run(args[1..]);
        if (args.Length > 0 && args[0] == "baselines") return BaselinesSuite.Run(args[1..]);
        if (args.Length > 0 && args[0] == "e2e") return E2eSuite.Run(args[1..]);
        if (args.Length > 0 && args[0] == "cpu-gemm") return CpuGemm.CpuGemmSuite.Run(args[1..]);
        Console.Error.WriteLine("usage: Nibble.Bench <suite> [--out <dir>]; suites are added by the kernel and CPU GEMM work.");
        return args.Length == 0 ? 2 : 1;
    }
}
