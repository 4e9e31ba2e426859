using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nibble.Cuda;
using Nibble.Cuda.Kernels;
using Nibble.Cuda.Native;

namespace Nibble.Bench;

/// <summary>
/// `baselines` suite (GPU): cuBLASLt BF16 (Y = X·Wᵀ, bf16 out) and FP8 e4m3 with row-wise scales (per-token ×
/// per-channel FP32 outer vectors, bf16 out) at exactly the shapes of the PyTorch yardstick table in
/// docs/gpu-workflow.md, called the way Nibble calls them (TN, 32 MiB workspace), next to PyTorch's `x @ w.t()` and
/// `torch._scaled_mm` timed by bench/baselines_torch.py in the same device call (--torch its JSON).
/// For each shape it asks cuBLASLt's heuristic for up to --algos candidates, times the first (what Nibble's plans use)
/// and every other one, and reports both, so a heuristic that leaves speed on the table shows up. FP8 with and without
/// fast accumulation. Weights rotate over copies totalling ≥ 128 MB (no warm-L2 runs); median of --iters CUDA-event runs.
/// Usage: baselines [--out dir] [--iters 50] [--algos 16] [--torch torch.json]
/// </summary>
public static unsafe class BaselinesSuite
{
    public static readonly (int M, int N, int K)[] Shapes =
        [(1, 28672, 8192), (16, 28672, 8192), (256, 28672, 8192), (8192, 28672, 8192), (1, 4096, 4096), (4096, 4096, 4096), (1, 12288, 12288), (8192, 12288, 12288)];

    sealed record Timing(string Kind, int M, int N, int K, double HeuristicUs, double BestUs, int BestIndex, int Candidates, ulong WorkspaceBest);

    public static int Run(string[] args)
    {
        string outDir = Arg(args, "--out") ?? "bench/results";
        int iters = int.Parse(Arg(args, "--iters") ?? "50");
        int algos = int.Parse(Arg(args, "--algos") ?? "16");
        using var ctx = CudaContext.Open();
        using var kernels = new KernelCache(ctx);
        using var stream = CudaStream.Create(ctx);
        string card = ctx.Name, date = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
        NativeLibraries.EnsureResolver();
        ctx.Bind();
        CudaException.CheckBlas(CublasLtApi.cublasLtCreate(out var handle), "cublasLtCreate");
        const long workspaceBytes = 32L << 20;
        using var workspace = new DeviceBuffer<byte>(ctx, workspaceBytes);
        Console.WriteLine($"# baselines on {card}, cuBLASLt {CublasLtApi.cublasLtGetVersion()}");
        var results = new List<Timing>();
        try
        {
            foreach (var (m, n, k) in Shapes)
            {
                long wBytes = (long)n * k * 2;
                int copies = (int)Math.Max(1, (128L << 20) / wBytes + 1);
                // BF16 operands, random; FP8 operands quantized from them (valid e4m3 codes, real per-row scales).
                using var xb = new DeviceBuffer<ushort>(ctx, (long)m * k);
                RandomFill.Bf16(kernels, stream, xb, 1, 1f);
                var wb = Enumerable.Range(0, copies).Select(i => new DeviceBuffer<ushort>(ctx, (long)n * k)).ToList();
                for (int i = 0; i < copies; i++) RandomFill.Bf16(kernels, stream, wb[i], (uint)(2 + i), 0.02f);
                using var x8 = new DeviceBuffer<byte>(ctx, (long)m * k);
                using var sx = new DeviceBuffer<float>(ctx, m);
                ActivationQuantFp8.Run(kernels, stream, xb, x8, sx, m, k);
                var w8 = Enumerable.Range(0, copies).Select(_ => new DeviceBuffer<byte>(ctx, (long)n * k)).ToList();
                using var sw = new DeviceBuffer<float>(ctx, n);
                foreach (var (src, dst) in wb.Zip(w8)) ActivationQuantFp8.Run(kernels, stream, src, dst, sw, n, k);
                using var y = new DeviceBuffer<ushort>(ctx, (long)m * n);
                try
                {
                    results.Add(TimeGemm(ctx, stream, handle, workspace, "bf16", m, n, k, iters, algos,
                        i => (wb[i % copies].Pointer, xb.Pointer), y.Pointer, 0, 0, fastAccum: false));
                    foreach (bool fast in new[] { false, true })
                        results.Add(TimeGemm(ctx, stream, handle, workspace, fast ? "fp8 rowwise fast-accum" : "fp8 rowwise", m, n, k, iters, algos,
                            i => (w8[i % copies].Pointer, x8.Pointer), y.Pointer, sw.Pointer, sx.Pointer, fastAccum: fast));
                    foreach (var r in results.TakeLast(3))
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"{r.Kind,-24} {m}x{n}x{k}: heuristic #0 {r.HeuristicUs:F1} us, best #{r.BestIndex} of {r.Candidates} {r.BestUs:F1} us ({Tflops(m, n, k, r.BestUs):F0} TFLOP/s)"));
                }
                finally
                {
                    foreach (var b in wb) b.Dispose();
                    foreach (var b in w8) b.Dispose();
                }
            }
        }
        finally { CublasLtApi.cublasLtDestroy(handle); }
        Report(outDir, card, date, "dotnet Nibble.Bench.dll baselines " + string.Join(' ', args), iters, results, Arg(args, "--torch"));
        return 0;
    }

    static double Tflops(int m, int n, int k, double us) => 2.0 * m * n * k / (us * 1e6);

    /// <summary>Times heuristic candidate 0 and every other candidate; FP8 when <paramref name="aScale"/> is set (per-channel A, per-token B).</summary>
    static Timing TimeGemm(CudaContext ctx, CudaStream stream, IntPtr handle, DeviceBuffer<byte> workspace, string kind, int m, int n, int k, int iters, int algos,
        Func<int, (ulong W, ulong X)> operands, ulong y, ulong aScale, ulong bScale, bool fastAccum)
    {
        bool fp8 = aScale != 0;
        int inType = fp8 ? CublasLtApi.R8FE4M3 : CublasLtApi.R16BF;
        CudaException.CheckBlas(CublasLtApi.cublasLtMatmulDescCreate(out var desc, CublasLtApi.Compute32F, CublasLtApi.R32F), "desc");
        IntPtr la = 0, lb = 0, lc = 0, pref = 0;
        try
        {
            int opT = CublasLtApi.OpT, opN = CublasLtApi.OpN;
            CublasLtApi.cublasLtMatmulDescSetAttribute(desc, CublasLtApi.DescTransA, &opT, 4);
            CublasLtApi.cublasLtMatmulDescSetAttribute(desc, CublasLtApi.DescTransB, &opN, 4);
            if (fp8)
            {
                int mode = CublasLtApi.ScaleOuterVec32F;
                CudaException.CheckBlas(CublasLtApi.cublasLtMatmulDescSetAttribute(desc, CublasLtApi.DescAScaleMode, &mode, 4), "A scale mode");
                CudaException.CheckBlas(CublasLtApi.cublasLtMatmulDescSetAttribute(desc, CublasLtApi.DescBScaleMode, &mode, 4), "B scale mode");
                CublasLtApi.cublasLtMatmulDescSetAttribute(desc, CublasLtApi.DescAScalePointer, &aScale, 8);
                CublasLtApi.cublasLtMatmulDescSetAttribute(desc, CublasLtApi.DescBScalePointer, &bScale, 8);
                sbyte fast = (sbyte)(fastAccum ? 1 : 0);
                CublasLtApi.cublasLtMatmulDescSetAttribute(desc, CublasLtApi.DescFastAccum, &fast, 1);
            }
            CudaException.CheckBlas(CublasLtApi.cublasLtMatrixLayoutCreate(out la, inType, (ulong)k, (ulong)n, k), "layout A");
            CudaException.CheckBlas(CublasLtApi.cublasLtMatrixLayoutCreate(out lb, inType, (ulong)k, (ulong)m, k), "layout B");
            CudaException.CheckBlas(CublasLtApi.cublasLtMatrixLayoutCreate(out lc, CublasLtApi.R16BF, (ulong)n, (ulong)m, n), "layout C");
            CudaException.CheckBlas(CublasLtApi.cublasLtMatmulPreferenceCreate(out pref), "pref");
            ulong ws = (ulong)workspace.Bytes;
            CublasLtApi.cublasLtMatmulPreferenceSetAttribute(pref, CublasLtApi.PrefMaxWorkspaceBytes, &ws, 8);
            var found = new CublasLtApi.HeuristicResult[algos];
            int count;
            fixed (CublasLtApi.HeuristicResult* r = found)
                CudaException.CheckBlas(CublasLtApi.cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, lc, pref, algos, r, out count), $"heuristic {kind} {m}x{n}x{k}");
            if (count == 0) throw new NibbleException($"cuBLASLt has no {kind} algorithm for {m}x{n}x{k}.");
            double Time(int a, int runs)
            {
                return GpuTimer.MedianMicroseconds(ctx, stream, runs, i =>
                {
                    var (w, x) = operands(i);
                    float alpha = 1f, beta = 0f;
                    ctx.Bind();
                    fixed (CublasLtApi.HeuristicResult* algo = &found[a])
                        CudaException.CheckBlas(CublasLtApi.cublasLtMatmul(handle, desc, &alpha, w, la, x, lb, &beta, y, lc, y, lc, algo->Algo, workspace.Pointer,
                            (nuint)workspace.Bytes, stream.Handle), "cublasLtMatmul");
                });
            }
            double first = Time(0, iters);
            int best = 0;
            double bestUs = first;
            for (int a = 1; a < count; a++)
            {
                double t = Time(a, Math.Max(5, iters / 5));
                if (t < bestUs * 0.99) { best = a; bestUs = t; }
            }
            if (best != 0) bestUs = Time(best, iters);
            if (bestUs > first) { bestUs = first; best = 0; }
            return new Timing(kind, m, n, k, first, bestUs, best, count, found[best].WorkspaceSize);
        }
        finally
        {
            if (pref != 0) CublasLtApi.cublasLtMatmulPreferenceDestroy(pref);
            foreach (var l in new[] { la, lb, lc }) if (l != 0) CublasLtApi.cublasLtMatrixLayoutDestroy(l);
            CublasLtApi.cublasLtMatmulDescDestroy(desc);
        }
    }

    static void Report(string outDir, string card, string date, string command, int iters, List<Timing> results, string? torchJson)
    {
        // torch JSON: {"card":..., "torch":..., "rows":[{"kind":"bf16"|"fp8 rowwise"|"fp8 rowwise fast-accum","m":..,"n":..,"k":..,"us":..}]}
        var torch = new Dictionary<(string, int, int, int), double>();
        string torchInfo = "not run";
        if (torchJson is not null && File.Exists(torchJson))
        {
            var node = JsonNode.Parse(File.ReadAllText(torchJson))!;
            torchInfo = $"PyTorch {node["torch"]}, {node["card"]}";
            foreach (var r in node["rows"]!.AsArray())
                torch[((string)r!["kind"]!, (int)r["m"]!, (int)r["n"]!, (int)r["k"]!)] = (double)r["us"]!;
        }
        var md = new StringBuilder();
        md.AppendLine($"# cuBLASLt (as Nibble calls it) vs PyTorch on {card}, {date}");
        md.AppendLine();
        md.AppendLine($"Command: `{command}` after `python3 bench/baselines_torch.py --out torch.json` in the same device call ({torchInfo}). " +
                      $"Median of {iters} CUDA-event-timed runs after 3 warm-ups, weights rotated over copies of ≥ 128 MB in both. " +
                      "cuBLASLt: TN, FP32 accumulation, bf16 output, 32 MiB workspace; FP8 e4m3 with per-token × per-channel FP32 outer-vector scales. " +
                      "`heuristic` = the heuristic's first algorithm (what Nibble's plans use), `best` = fastest of the returned candidates. " +
                      "PyTorch: `x @ w.t()` (bf16) and `torch._scaled_mm(x8, w8.t(), scale_a=[M,1], scale_b=[1,N], out_dtype=bf16)` (rowwise).");
        md.AppendLine();
        md.AppendLine("| kind | M × N × K | cuBLASLt heuristic µs | best µs (candidate / of) | best TFLOP/s | PyTorch µs | PyTorch TFLOP/s | PyTorch / cuBLASLt heuristic | within 5% |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            string t = "", tf = "", ratio = "", ok = "";
            if (torch.TryGetValue((r.Kind, r.M, r.N, r.K), out double tu))
            {
                t = tu.ToString("F1", CultureInfo.InvariantCulture);
                tf = Tflops(r.M, r.N, r.K, tu).ToString("F0", CultureInfo.InvariantCulture);
                double q = tu / r.HeuristicUs;
                ratio = q.ToString("F3", CultureInfo.InvariantCulture);
                ok = q >= 0.95 ? "yes" : $"no ({(1 - q) * 100:F0}% slower)";
            }
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Kind} | {r.M} × {r.N} × {r.K} | {r.HeuristicUs:F1} | {r.BestUs:F1} (#{r.BestIndex}/{r.Candidates}) | {Tflops(r.M, r.N, r.K, r.BestUs):F0} | {t} | {tf} | {ratio} | {ok} |"));
        }
        Console.WriteLine(md.ToString());
        Directory.CreateDirectory(outDir);
        Nibble.Formats.AtomicFile.WriteAllText(Path.Combine(outDir, "baselines.md"), md.ToString());
        Nibble.Formats.AtomicFile.WriteAllText(Path.Combine(outDir, "baselines.json"), JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
