using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Nibble.Cpu;

namespace Nibble.Bench.CpuGemm;

/// <summary>
/// `cpu-gemm`: Nibble's CPU GEMM (float32 and bf16 weights) against OpenBLAS cblas_sgemm in the same
/// run, at the small model's prefill shapes (1024 tokens) and at 1024³ and 4096×4096×1024.
/// Writes bench/results/cpu-gemm-&lt;date&gt;.json and .md.
/// </summary>
public static unsafe class CpuGemmSuite
{
    sealed record Shape(string Name, int M, int N, int K);

    sealed record Row(string Shape, int M, int N, int K, double NibbleF32Gflops, double NibbleBf16Gflops, double OpenBlasGflops, double Ratio, double MaxRelDiff);

    static readonly Shape[] Shapes =
    [
        new("small q/o_proj (1024 tok)", 1024, 512, 512),
        new("small k/v_proj (1024 tok)", 1024, 256, 512),
        new("small gate/up_proj (1024 tok)", 1024, 1536, 512),
        new("small down_proj (1024 tok)", 1024, 512, 1536),
        new("small lm_head (1024 tok)", 1024, 8192, 512),
        new("small gate/up_proj (decode, 1 tok)", 1, 1536, 512),
        new("small lm_head (decode, 1 tok)", 1, 8192, 512),
        new("small q_proj (prefill, 64 tok)", 64, 512, 512),
        new("1024³", 1024, 1024, 1024),
        new("4096×4096×1024", 4096, 4096, 1024),
    ];

    public static int Run(string[] args)
    {
        string outDir = "bench/results";
        double seconds = 1.0;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--out" && i + 1 < args.Length) outDir = args[++i];
            else if (args[i] == "--seconds" && i + 1 < args.Length) seconds = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
        }
        var blas = OpenBlas.TryLoad();
        if (blas is null)
        {
            Console.Error.WriteLine("error: libopenblas is not installed; run scripts/bench-cpu-gemm.sh (it installs libopenblas-dev) or apt-get install libopenblas-dev.");
            return 1;
        }
        string cpu = CpuModel();
        Console.WriteLine($"cpu-gemm: {cpu}, {Environment.ProcessorCount} threads; Nibble kernel {Gemm.KernelName}; OpenBLAS {blas.Config} ({blas.Threads} threads)");
        Console.WriteLine($"{"shape",-36} {"M",5} {"N",5} {"K",5} {"Nibble f32",11} {"Nibble bf16",11} {"OpenBLAS",9} {"ratio",6}");
        var rows = new List<Row>();
        foreach (var s in Shapes)
        {
            var row = Measure(s, blas, seconds);
            rows.Add(row);
            Console.WriteLine($"{s.Name,-36} {s.M,5} {s.N,5} {s.K,5} {row.NibbleF32Gflops,11:F1} {row.NibbleBf16Gflops,11:F1} {row.OpenBlasGflops,9:F1} {row.Ratio,6:P0}");
        }
        // Decode rows (M = 1) are reported but kept out of the summary: OpenBLAS' sgemm is not its GEMV path.
        var summary = rows.Where(r => r.M >= 64).ToList();
        double geo = Math.Exp(summary.Average(r => Math.Log(r.Ratio)));
        string load = LoadAverage();
        Console.WriteLine($"load average (1/5/15 min) at the end: {load}");
        Console.WriteLine($"geometric mean ratio Nibble f32 / OpenBLAS over M >= 64: {geo:P1}; worst {summary.Min(r => r.Ratio):P1}");
        Write(outDir, rows, cpu, blas, geo, args, load);
        return 0;
    }

    static Row Measure(Shape s, OpenBlas blas, double seconds)
    {
        var rng = new Random(s.M ^ s.N ^ s.K);
        float* a = Alloc((long)s.M * s.K, rng), w = Alloc((long)s.N * s.K, rng);
        float* c1 = Alloc((long)s.M * s.N, null), c2 = Alloc((long)s.M * s.N, null);
        ushort* wb = (ushort*)NativeMemory.AlignedAlloc((nuint)((long)s.N * s.K * 2), 64);
        for (long i = 0; i < (long)s.N * s.K; i++) wb[i] = (ushort)(BitConverter.SingleToUInt32Bits(w[i]) >> 16);
        try
        {
            double flops = 2.0 * s.M * s.N * s.K;
            // Round-robin so that load from other processes on a shared machine hits every contender alike.
            var best = TimeRoundRobin(seconds,
                () => Gemm.MatMulTransB(a, s.K, w, s.K, c1, s.N, s.M, s.N, s.K),
                () => blas.MatMulTransB(a, w, c2, s.M, s.N, s.K),
                () => Gemm.MatMulTransB(a, s.K, wb, s.K, c1, s.N, s.M, s.N, s.K));
            double ours = flops / best[0] / 1e9, theirs = flops / best[1] / 1e9, bf16 = flops / best[2] / 1e9;
            Gemm.MatMulTransB(a, s.K, w, s.K, c1, s.N, s.M, s.N, s.K);
            double maxRel = 0;
            for (long i = 0; i < (long)s.M * s.N; i++) maxRel = Math.Max(maxRel, Math.Abs(c1[i] - c2[i]) / (Math.Abs(c2[i]) + 1));
            return new Row(s.Name, s.M, s.N, s.K, ours, bf16, theirs, ours / theirs, maxRel);
        }
        finally
        {
            NativeMemory.AlignedFree(a); NativeMemory.AlignedFree(w); NativeMemory.AlignedFree(c1); NativeMemory.AlignedFree(c2); NativeMemory.AlignedFree(wb);
        }
    }

    /// <summary>Best time of each contender over about <paramref name="seconds"/> of alternating runs (after a warm-up of each).</summary>
    static double[] TimeRoundRobin(double seconds, params Action[] runs)
    {
        foreach (var r in runs) r();
        var best = Enumerable.Repeat(double.MaxValue, runs.Length).ToArray();
        var total = Stopwatch.StartNew();
        int rounds = 0;
        while (rounds < 3 || (total.Elapsed.TotalSeconds < seconds * runs.Length && rounds < 300))
        {
            for (int i = 0; i < runs.Length; i++)
            {
                var sw = Stopwatch.StartNew();
                runs[i]();
                best[i] = Math.Min(best[i], sw.Elapsed.TotalSeconds);
            }
            rounds++;
        }
        return best;
    }

    static float* Alloc(long n, Random? rng)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 64);
        for (long i = 0; i < n; i++) p[i] = rng is null ? 0 : (float)(rng.NextDouble() * 2 - 1);
        return p;
    }

    static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line?.Split(':', 2)[1].Trim() ?? RuntimeInformation.ProcessArchitecture.ToString();
        }
        catch (IOException) { return RuntimeInformation.ProcessArchitecture.ToString(); }
    }

    static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }

    static void Write(string outDir, List<Row> rows, string cpu, OpenBlas blas, double geo, string[] args, string load)
    {
        Directory.CreateDirectory(outDir);
        var now = DateTime.UtcNow;
        string command = "dotnet run --project bench/Nibble.Bench -c Release -- cpu-gemm " + string.Join(' ', args);
        string stem = Path.Combine(outDir, $"cpu-gemm-{now:yyyyMMdd-HHmm}");
        var doc = new
        {
            suite = "cpu-gemm", date = now.ToString("u"), cpu, threads = Environment.ProcessorCount, command,
            runtime = RuntimeInformation.FrameworkDescription, load_average = load, nibble_kernel = Gemm.KernelName,
            openblas = new { library = blas.Library, config = blas.Config, threads = blas.Threads },
            geometric_mean_ratio_m_ge_64 = geo, worst_ratio_m_ge_64 = rows.Where(r => r.M >= 64).Min(r => r.Ratio), rows,
        };
        File.WriteAllText(stem + ".json", JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
        var md = new StringBuilder();
        md.AppendLine($"# CPU GEMM: Nibble vs OpenBLAS cblas_sgemm ({now:u})");
        md.AppendLine();
        md.AppendLine($"CPU: {cpu}, {Environment.ProcessorCount} threads. {RuntimeInformation.FrameworkDescription}. Nibble kernel: {Gemm.KernelName}. OpenBLAS: {blas.Config} ({blas.Threads} threads).");
        md.AppendLine($"Load average (1/5/15 min) at the end: {load} (the machine is shared; contenders run round-robin so load hits both alike).");
        md.AppendLine($"Command: `{command}`. C[M,N] = A[M,K]·W[N,K]ᵀ, float32 accumulate; best of repeated runs; bf16 column converts W while packing.");
        md.AppendLine();
        md.AppendLine("| shape | M | N | K | Nibble f32 GFLOP/s | Nibble bf16-W GFLOP/s | OpenBLAS GFLOP/s | Nibble f32 / OpenBLAS | max rel diff |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
            md.AppendLine($"| {r.Shape} | {r.M} | {r.N} | {r.K} | {r.NibbleF32Gflops:F1} | {r.NibbleBf16Gflops:F1} | {r.OpenBlasGflops:F1} | {r.Ratio:P0} | {r.MaxRelDiff:E1} |");
        md.AppendLine();
        md.AppendLine($"Geometric mean ratio over the M ≥ 64 shapes: **{geo:P1}** (worst {rows.Where(r => r.M >= 64).Min(r => r.Ratio):P1}). Decode rows (M = 1) are listed for information; OpenBLAS' sgemm is not its GEMV path.");
        File.WriteAllText(stem + ".md", md.ToString());
        Console.WriteLine($"wrote {stem}.json and {stem}.md");
    }
}
