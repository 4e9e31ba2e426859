using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Nibble.Cuda;
using Nibble.Cuda.Kernels;

namespace Nibble.Bench;

/// <summary>
/// `gemm` suite (GPU): our W4A8 and W4A16 GEMMs against cuBLASLt FP8 (per-token × per-channel) and BF16, all in one
/// run, timed with CUDA events (median), weights rotated over enough copies to exceed 2× L2 so no run reads a warm
/// cache. Also the W4A8 weight-preprocessing bandwidth and the kernel cache's cold/warm start.
/// Usage: gemm [--out dir] [--shapes N:K,N:K] [--ms 1,16,...] [--iters n] [--timer busy] [--no-compile-times] [--stamps] [--cooldown-ms 2000]
/// [--ws-sweep MT:WN:S,...] [--ws-model 0|1|2] [--ws-split 0|1] [--ws-epi 0|1] [--ws-prefetch 0|1] [--ws-force MT:WN] (see the code).
/// </summary>
public static class GpuGemmSuite
{
    static readonly (int N, int K)[] DefaultShapes =
        [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336), (10240, 8192), (8192, 8192), (57344, 8192), (8192, 28672), (12288, 12288)];
    static readonly int[] DefaultMs = [1, 4, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];

    public sealed record Row(int M, int N, int K, double w4a8_us, double w4a16_us, double fp8_us, double bf16_us, double act_quant_us,
        double? w4a8_wgmma_us, double? w4a8_mma_us, string w4a8_plan, string card, string date);

    public static int Run(string[] args)
    {
        string outDir = Arg(args, "--out") ?? "bench/results";
        var shapes = Arg(args, "--shapes") is { } s ? s.Split(',').Select(p => p.Split(':')).Select(p => (int.Parse(p[0]), int.Parse(p[1]))).ToArray() : DefaultShapes;
        var ms = Arg(args, "--ms") is { } mm ? mm.Split(',').Select(int.Parse).ToArray() : DefaultMs;
        int iters = int.Parse(Arg(args, "--iters") ?? "30");
        if (Arg(args, "--large-ks") is { } lks) GemmPlan.LargeKs = int.Parse(lks);
        if (Arg(args, "--mma-ring") is { } ring) W4A8Gemm.DefaultMmaRing = int.Parse(ring);
        if (Arg(args, "--ws") is { } wsArg) W4A8Gemm.DefaultWarpSpecialized = wsArg != "0";
        // Warp-specialized variants: weights by TMA maps or bulk copies, k-walk rotation, plan cost model, forced shape "MT:WN".
        if (Arg(args, "--ws-tmaw") is { } wsTmaw) W4A8Gemm.WsTensorMapWeights = wsTmaw != "0";
        if (Arg(args, "--ws-model") is { } wsModel) GemmPlan.WsModel = int.Parse(wsModel);
        if (Arg(args, "--ws-rot") is { } wsRot) W4A8Gemm.WsRotateK = wsRot != "0";
        if (Arg(args, "--ws-force") is { } wsForce) GemmPlan.WsForce = (int.Parse(wsForce.Split(':')[0]), int.Parse(wsForce.Split(':')[1]));
        // gemm-large2: split-K workspace layout / paired-store epilogue defaults, and a per-shape sweep of forced plans
        // "MT:WN:S,..." timing each with the old build, the new builds and without epilogue (see Sweep).
        if (Arg(args, "--ws-split") is { } wsSplit) W4A8Gemm.DefaultWsSplitLayout = int.Parse(wsSplit);
        if (Arg(args, "--ws-epi") is { } wsEpi) W4A8Gemm.DefaultWsPairedStores = int.Parse(wsEpi);
        if (Arg(args, "--ws-prefetch") is { } wsPf) W4A8Gemm.DefaultWsPrefetch = int.Parse(wsPf);
        if (Arg(args, "--ws-regs") is { } wsRegs) W4A8Gemm.DefaultWsRegs = int.Parse(wsRegs);
        bool wsVariants = args.Contains("--ws-variants");
        var sweep = Arg(args, "--ws-sweep") is { } sw ? sw.Split(',').Select(t => t.Split(':').Select(int.Parse).ToArray()).ToArray() : [];
        bool onlyW4a8 = args.Contains("--only-w4a8");
        bool stamps = args.Contains("--stamps");
        int cooldownMs = int.Parse(Arg(args, "--cooldown-ms") ?? "2000");
        double budgetS = double.Parse(Arg(args, "--budget-s") ?? "400", CultureInfo.InvariantCulture);
        bool decodeVariants = args.Contains("--decode-variants");
        if (Arg(args, "--decode-unguarded") is { } ung) W4A8Gemm.DefaultDecodeUnguarded = ung != "0";
        if (Arg(args, "--decode-v8") is { } v8) W4A8Gemm.DefaultDecodeF16Activations = v8 != "0";
        var clock = Stopwatch.StartNew();

        using var ctx = CudaContext.Open();
        ctx.RequireHopper();
        var compile = args.Contains("--only-w4a8") || args.Contains("--no-compile-times") ? (Cold: 0.0, Warm: 0.0) : CompileTimes(ctx);
        using var kernels = new KernelCache(ctx);
        using var stream = CudaStream.Create(ctx);
        using var lt = new CublasLt(ctx);
        using var w4a8 = new W4A8Gemm(kernels, ctx);
        using var w4a8Wgmma = new W4A8Gemm(kernels, ctx) { MmaMaxM = 0, WarpSpecialized = false };
        using var w4a8Mma = new W4A8Gemm(kernels, ctx) { MmaMaxM = 32, DecodeWideOnlyAbove16 = false };
        using var w4a16 = new W4A16Gemm(kernels, ctx);
        using var wsOld = new W4A8Gemm(kernels, ctx) { WsSplitLayout = 0, WsPairedStores = 0, WsPrefetch = 0 };
        using var wsNew = new W4A8Gemm(kernels, ctx) { WsSplitLayout = 1, WsPairedStores = 1, WsPrefetch = 1 };
        using var wsSplit1 = new W4A8Gemm(kernels, ctx) { WsSplitLayout = 1, WsPairedStores = 0, WsPrefetch = 0 };
        using var wsEpi1 = new W4A8Gemm(kernels, ctx) { WsSplitLayout = 0, WsPairedStores = 1, WsPrefetch = 0 };
        using var wsPf1 = new W4A8Gemm(kernels, ctx) { WsSplitLayout = 0, WsPairedStores = 0, WsPrefetch = 1 };
        if (args.Contains("--timer") && Arg(args, "--timer") == "busy") GpuTimer.Spin = st => GpuSpin.Run(kernels, st, 60);
        string card = ctx.Name, date = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
        Console.WriteLine($"# {card} ({ctx.Arch}, {ctx.MultiprocessorCount} SMs, L2 {ctx.L2CacheBytes >> 20} MB), driver {ctx.DriverVersionText}, NVRTC {KernelCache.NvrtcVersion()}, cuBLASLt {lt.Version}");
        Console.WriteLine($"# kernel compile: cold {compile.Cold:F0} ms, warm (disk cache) {compile.Warm:F1} ms");
        var rows = new List<Row>();
        var prep = new List<(int N, int K, double Us, double GBs)>();
        long l2 = ctx.L2CacheBytes;

        foreach (var (n, k) in shapes)
        {
            if (clock.Elapsed.TotalSeconds > budgetS) { Console.WriteLine($"# time budget reached; skipped shape {n}x{k} and later"); break; }
            // The previous shape ended on M = 8192 points at the 700 W power cap, and the clock stays low for a while
            // after (measured: 8192² M=1 32.0 µs straight after 57344×8192 M=8192, 22.4 µs in a run that had rested).
            // A real decode runs at ~130 W and full clock, so each shape starts from rest, then 0.3 s of spinning brings the
            // clock back up from idle (the first rested run had one point measured during the ramp).
            Thread.Sleep(cooldownMs);
            if (cooldownMs > 0) { GpuSpin.Run(kernels, stream, 300_000); stream.Synchronize(); }
            // Checkpoint-layout weights, random on the device; preprocessing timed.
            using var packed = new DeviceBuffer<int>(ctx, (long)n * k / 8);
            using var scales = new DeviceBuffer<ushort>(ctx, (long)n * (k / 128));
            RandomFill.Words(kernels, stream, packed, 1);
            RandomFill.GroupScales(kernels, stream, scales, 2, 0.02f);
            int r8 = Copies(l2, (long)n * k / 2), r16 = r8, rf8 = Copies(l2, (long)n * k), rbf = Copies(l2, (long)n * k * 2);
            if (onlyW4a8) r16 = rf8 = rbf = 0; // variant runs time the W4A8 kernel alone
            var opsA = new List<W4A8GemmOperands>();
            var opsB = new List<W4A16GemmOperands>();
            var wf8 = new List<DeviceBuffer<byte>>();
            var wbf = new List<DeviceBuffer<ushort>>();
            using var chan = new DeviceBuffer<float>(ctx, n);
            try
            {
                for (int i = 0; i < r8; i++) { var o = new W4A8GemmOperands(ctx, n, k); W4A8WeightPrep.Run(kernels, stream, packed, scales, o); opsA.Add(o); }
                for (int i = 0; i < r16; i++) opsB.Add(W4A16GemmOperands.FromCheckpoint(kernels, ctx, stream, packed, scales, n, k));
                for (int i = 0; i < rf8; i++) { var b = new DeviceBuffer<byte>(ctx, (long)n * k); RandomFill.E4M3(kernels, stream, b, (uint)(10 + i)); wf8.Add(b); }
                for (int i = 0; i < rbf; i++) { var b = new DeviceBuffer<ushort>(ctx, (long)n * k); RandomFill.Bf16(kernels, stream, b, (uint)(20 + i), 0.05f); wbf.Add(b); }
                chan.CopyFromDevice(opsA[0].ChannelScale, stream);
                double prepUs = Time(ctx, stream, 10, i => W4A8WeightPrep.Run(kernels, stream, packed, scales, opsA[0]));
                double ckptBytes = (double)n * k / 2 + (double)n * (k / 128) * 2;
                prep.Add((n, k, prepUs, ckptBytes / (prepUs * 1e3)));
                Console.WriteLine($"# prep {n}x{k}: {prepUs:F1} us, {ckptBytes / (prepUs * 1e3):F0} GB/s of checkpoint bytes");

                foreach (int m in ms)
                {
                    if (clock.Elapsed.TotalSeconds > budgetS) break;
                    using var x = new DeviceBuffer<ushort>(ctx, (long)m * k);
                    using var x8 = new DeviceBuffer<byte>(ctx, (long)m * k);
                    using var x8g = new DeviceBuffer<byte>(ctx, (long)m * k);
                    using var ts = new DeviceBuffer<float>(ctx, m);
                    using var y = new DeviceBuffer<ushort>(ctx, (long)m * n);
                    RandomFill.Bf16(kernels, stream, x, (uint)(m + 99), 2f);
                    ActivationQuantFp8.Run(kernels, stream, x, x8, ts, m, k);
                    ActivationQuantFp8.Run(kernels, stream, x, x8g, ts, m, k, gemmOrder: true);
                    int it = m >= 2048 && (long)n * k >= 100_000_000 ? Math.Max(5, iters / 3) : iters;
                    var plan = w4a8.Plan(m, n, k);
                    double tq = Time(ctx, stream, it, i => ActivationQuantFp8.Run(kernels, stream, x, x8g, ts, m, k, gemmOrder: true));
                    // Steady state: each weight copy's TMA maps are encoded once (at load, in a real model), not in the timed loop.
                    foreach (var o in opsA) w4a8.Run(stream, plan.GemmOrderActivations ? x8g : x8, ts, o, y, m, plan);
                    // --stamps: the wall-clock window of each timed column, to line up with an nvidia-smi clock/power log.
                    double Stamped(string what, Action<int> launch)
                    {
                        var t0 = DateTime.UtcNow;
                        double us = Time(ctx, stream, it, launch);
                        if (stamps) Console.WriteLine($"#   stamp {what} M={m} N={n} K={k}: {t0:HH:mm:ss.fff} - {DateTime.UtcNow:HH:mm:ss.fff}");
                        return us;
                    }
                    double ta = Stamped("w4a8", i => w4a8.Run(stream, plan.GemmOrderActivations ? x8g : x8, ts, opsA[i % r8], y, m, plan));
                    // "wgmma" column: W4A8Gemm.cu's kernel, for comparison with the mma.sync (M <= 64) or warp-specialized plan.
                    double? tw = !onlyW4a8 && (m <= 64 || plan.Ws) ? Time(ctx, stream, it, i => w4a8Wgmma.Run(stream, x8g, ts, opsA[i % r8], y, m)) : null;
                    double? tm = !onlyW4a8 && m <= 32 ? Time(ctx, stream, it, i => w4a8Mma.Run(stream, x8, ts, opsA[i % r8], y, m)) : null;
                    double tb = onlyW4a8 ? double.NaN : Stamped("w4a16", i => w4a16.Run(stream, x, opsB[i % r16], y, m));
                    if (decodeVariants && m <= 32)
                    {
                        DecodeVariants(kernels, ctx, stream, it, x8, ts, opsA, y, m, n, k);
                        var w16 = new List<string>();
                        foreach (int wn in new[] { 2, -1 })
                        {
                            using var g16 = new W4A16Gemm(kernels, ctx) { SmallMWn = wn };
                            var p16 = g16.Plan(m, n, k);
                            double t1 = Time(ctx, stream, it, i => g16.Run(stream, x, opsB[i % r16], y, m, p16));
                            w16.Add(string.Create(CultureInfo.InvariantCulture, $"wn={p16.WN} s{p16.Splits}{(wn < 0 ? " (M>16 rule)" : "")}: {t1:F1}"));
                        }
                        var pp = w4a16.Plan(m, n, k);
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"#   w4a16 M={m}: planned wn={pp.WN} s{pp.Splits}: {tb:F1} | {string.Join(" | ", w16)}"));
                    }
                    double tf = onlyW4a8 ? double.NaN : Stamped("fp8", i => lt.Fp8(stream, x8, wf8[i % rf8], ts, chan, y, m, n, k));
                    double tbf = onlyW4a8 ? double.NaN : Stamped("bf16", i => lt.Bf16(stream, x, wbf[i % rbf], y, m, n, k));
                    if (plan.Ws && wsVariants) WsVariants(kernels, ctx, stream, it, m, n, k, x8g, ts, opsA, y, plan);
                    if (plan.Ws && sweep.Length > 0) Sweep(ctx, stream, it, sweep, m, n, k, x8g, ts, opsA, y, [wsOld, wsNew, wsSplit1, wsEpi1, wsPf1], plan);
                    var row = new Row(m, n, k, ta, tb, tf, tbf, tq, tw, tm, plan.ToString(), card, date);
                    rows.Add(row);
                    double tflop = 2.0 * m * n * k / 1e12;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"M={m,5} N={n,5} K={k,5}  w4a8 {ta,9:F1} us ({tflop / (ta * 1e-6),6:F0} TF, {opsA[0].WeightBytes / (ta * 1e3),5:F0} GB/s)  w4a16 {tb,9:F1}  fp8 {tf,9:F1}  bf16 {tbf,9:F1}  quant {tq,6:F1} (wgmma {tw ?? double.NaN,7:F1} mma {tm ?? double.NaN,7:F1}) | w4a8/fp8 {ta / tf:F2}  w4a8/bf16 {ta / tbf:F2}  w4a16/w4a8 {tb / ta:F2}  [{(plan.Mma ? "mma m" : plan.Ws ? "ws n" : "n")}{plan.MT} wg{plan.WN} s{plan.Splits}]"));
                }
            }
            finally
            {
                foreach (var o in opsA) o.Dispose();
                foreach (var o in opsB) o.Dispose();
                foreach (var b in wf8) b.Dispose();
                foreach (var b in wbf) b.Dispose();
            }
        }
        Console.WriteLine($"# cuBLASLt FP8 scale mode: {lt.Fp8ScaleMode}");
        if (!onlyW4a8) Write(outDir, rows, prep, compile, card, date, lt.Fp8ScaleMode, string.Join(' ', args));
        return 0;
    }

    /// <summary>--decode-variants: times the small-M kernels, v3, v6 (unguarded ring steps) and v8 (v6 with late refills + f16 activation pass), as planned and with 1 or 2 slabs per warp (console only).</summary>
    static void DecodeVariants(KernelCache kernels, CudaContext ctx, CudaStream stream, int it, DeviceBuffer<byte> x8, DeviceBuffer<float> ts,
        List<W4A8GemmOperands> ops, DeviceBuffer<ushort> y, int m, int n, int k)
    {
        var parts = new List<string>();
        foreach (int version in new[] { 3, 6, 8 })
            foreach (int wn in new[] { 0, 1, 2 })
            {
                W4A8GemmDecode.ForceWn = wn;
                try
                {
                    using var g = new W4A8Gemm(kernels, ctx) { DecodeUnguarded = version >= 6, DecodeF16Activations = version == 8, DecodeF16Auto = false, DecodeWideOnlyAbove16 = false };
                    var pl = g.Plan(m, n, k);
                    double t = Time(ctx, stream, it, i => g.Run(stream, x8, ts, ops[i % ops.Count], y, m, pl));
                    parts.Add(string.Create(CultureInfo.InvariantCulture, $"v{version} {(wn == 0 ? "planned " : "")}w{pl.WN} s{pl.Splits}: {t:F1}"));
                }
                finally { W4A8GemmDecode.ForceWn = 0; }
            }
        Console.WriteLine($"#   decode variants M={m} N={n} K={k}: {string.Join(" | ", parts)}");
    }

    /// <summary>
    /// --ws-variants: the planned warp-specialized tile (and, at M ≥ 1024, the two 128-accumulator tiles) timed with
    /// each build: scalar or TMA-store epilogue (W4A8_WS_STORE), and two CTAs per SM (W4A8_WS_OCC=2, small tiles). Console only.
    /// (A W4A8_WS_GROUP 2 build, one wgmma group per 128-k stage, was measured slower everywhere and removed: ptxas serializes its wgmmas, C7513.)
    /// </summary>
    static void WsVariants(KernelCache kernels, CudaContext ctx, CudaStream stream, int it, int m, int n, int k, DeviceBuffer<byte> x8g, DeviceBuffer<float> ts,
        List<W4A8GemmOperands> ops, DeviceBuffer<ushort> y, GemmPlan planned)
    {
        var builds = new (string Tag, int Regs, int Store, int Occ)[] { ("base", 232, 0, 1), ("store", 232, 1, 1), ("store-2cta", 232, 1, 2) };
        var plans = new List<GemmPlan> { planned };
        void AddForced(int mt, int wn, int splits)
        {
            GemmPlan.WsForce = (mt, wn);
            GemmPlan.WsForceSplits = splits;
            try { var p = GemmPlan.ChooseWs(m, n, k, ctx.MultiprocessorCount); if (!plans.Contains(p)) plans.Add(p); }
            catch (ArgumentException) { }
            finally { GemmPlan.WsForce = null; GemmPlan.WsForceSplits = null; }
        }
        if (m >= 1024)
            foreach (var (mt, wn) in new[] { (256, 2), (128, 4) }) AddForced(mt, wn, 1);
        if (m <= 256) // the 64-token × 128-row tile (the one two CTAs per SM can run) at 1, 2 and 4 splits
            foreach (int s in new[] { 1, 2, 4 }) AddForced(64, 2, s);
        foreach (var p in plans)
        {
            var parts = new List<string>();
            foreach (var (tag, regs, store, occ) in builds)
            {
                using var g = new W4A8Gemm(kernels, ctx) { WsRegs = regs, WsStore = store, WsOcc = occ };
                if (occ == 2 && g.WsCtasPerSm(p) != 2) continue; // tile too big for two CTAs per SM
                foreach (var o in ops) g.Run(stream, x8g, ts, o, y, m, p); // modules loaded, TMA maps encoded
                double t = Time(ctx, stream, it, i => g.Run(stream, x8g, ts, ops[i % ops.Count], y, m, p));
                parts.Add(string.Create(CultureInfo.InvariantCulture, $"{tag} {t:F1}"));
            }
            Console.WriteLine($"#   ws variants M={m} N={n} K={k} [n{p.MT} wg{p.WN} s{p.Splits}{(p == planned ? " planned" : "")}]: {string.Join(" | ", parts)}");
        }
    }

    /// <summary>
    /// One line per forced warp-specialized plan (MT:WN:S; the default plan first): old build, new build (split layout
    /// 1 + paired stores + prefetch), each change alone (split layout only where S &gt; 1), and the old and prefetch
    /// builds without epilogue (main loop only; output not written).
    /// </summary>
    static void Sweep(CudaContext ctx, CudaStream stream, int it, int[][] sweep, int m, int n, int k, DeviceBuffer<byte> x8g, DeviceBuffer<float> ts,
        List<W4A8GemmOperands> ops, DeviceBuffer<ushort> y, W4A8Gemm[] builds, GemmPlan defaultPlan)
    {
        var plans = new List<(string Tag, GemmPlan Plan)> { ("default", defaultPlan) };
        foreach (var c in sweep)
        {
            if (m >= 2048 && (c[0] < 128 || c[2] > 1)) continue; // large M: whole-K tiles of 128+ tokens only
            if (n % (128 * (c[1] / 2)) != 0 || (k / 128) < c[2]) continue;
            GemmPlan.WsForce = (c[0], c[1]);
            GemmPlan.WsForceSplits = c[2];
            try
            {
                var p = GemmPlan.ChooseWs(m, n, k, ctx.MultiprocessorCount);
                if (p.Splits == c[2] && !plans.Any(q => q.Plan == p)) plans.Add(($"{c[0]}:{c[1]}:{c[2]}", p));
            }
            catch (ArgumentException) { }
            finally { GemmPlan.WsForce = null; GemmPlan.WsForceSplits = null; }
        }
        int r = ops.Count;
        var (wsOld, wsNew, wsSplit1, wsEpi1, wsPf1) = (builds[0], builds[1], builds[2], builds[3], builds[4]);
        foreach (var (tag, p) in plans)
        {
            foreach (var o in ops) foreach (var b in builds) b.Run(stream, x8g, ts, o, y, m, p); // TMA maps encoded, modules loaded
            double T(W4A8Gemm g) => Time(ctx, stream, it, i => g.Run(stream, x8g, ts, ops[i % r], y, m, p));
            double tOld = T(wsOld), tNew = T(wsNew), tS1 = p.Splits > 1 ? T(wsSplit1) : double.NaN, tE1 = T(wsEpi1), tP1 = T(wsPf1);
            W4A8Gemm.WsSkipEpilogue = true;
            double tLoop, tLoopPf;
            try { tLoop = T(wsOld); tLoopPf = T(wsPf1); }
            finally { W4A8Gemm.WsSkipEpilogue = false; }
            int units = p.Ctas * p.Splits, steps = p.KBlocksPerSplit / 2, waves = (units + ctx.MultiprocessorCount - 1) / ctx.MultiprocessorCount;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"sweep M={m,5} N={n,5} K={k,5} {tag,-8} [n{p.MT} wg{p.WN} s{p.Splits}] units {units,4} waves {waves,2} steps {steps,3} | old {tOld,7:F1} new {tNew,7:F1} split1 {tS1,7:F1} epi1 {tE1,7:F1} pf1 {tP1,7:F1} loop {tLoop,7:F1} loop-pf1 {tLoopPf,7:F1} us | new/old {tNew / tOld:F3}"));
        }
    }

    static int Copies(long l2, long bytes) => (int)Math.Clamp((2 * l2 + bytes - 1) / bytes + 1, 1, 16);

    static double Time(CudaContext ctx, CudaStream stream, int iters, Action<int> launch) =>
        GpuTimer.MedianMicroseconds(ctx, stream, iters, launch);

    static (double Cold, double Warm) CompileTimes(CudaContext ctx)
    {
        var dir = Path.Combine(Path.GetTempPath(), "nibble-bench-kc-" + Guid.NewGuid().ToString("N"));
        string[] files = ["W4A8Gemm.cu", "W4A8GemmMma.cu", "W4A8GemmWs.cu", "W4A16Gemm.cu", "ActivationQuantFp8.cu", "W4A8WeightPrep.cu"];
        try
        {
            double cold, warm;
            var sw = Stopwatch.StartNew();
            using (var c = new KernelCache(ctx, dir)) foreach (var f in files) c.Load(f, hopperOnly: f.StartsWith("W4A8Gemm"));
            cold = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            using (var c = new KernelCache(ctx, dir)) foreach (var f in files) c.Load(f, hopperOnly: f.StartsWith("W4A8Gemm"));
            warm = sw.Elapsed.TotalMilliseconds;
            return (cold, warm);
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    static void Write(string dir, List<Row> rows, List<(int N, int K, double Us, double GBs)> prep, (double Cold, double Warm) compile,
        string card, string date, string fp8Mode, string args)
    {
        Directory.CreateDirectory(dir);
        var json = JsonSerializer.Serialize(new
        {
            suite = "gemm", card, date, command = "dotnet Nibble.Bench.dll gemm " + args, cublaslt_fp8_scale_mode = fp8Mode,
            kernel_compile_cold_ms = compile.Cold, kernel_compile_warm_ms = compile.Warm,
            prep = prep.Select(p => new { p.N, p.K, us = p.Us, checkpoint_GBps = p.GBs }), rows,
        }, new JsonSerializerOptions { WriteIndented = true });
        Nibble.Formats.AtomicFile.WriteAllText(Path.Combine(dir, "gemm.json"), json);
        var md = new StringBuilder();
        md.AppendLine($"# GEMM benchmark: {card}, {date}");
        md.AppendLine();
        md.AppendLine($"Command: `dotnet Nibble.Bench.dll gemm {args}`. Median of CUDA-event-timed runs, weights rotated beyond 2x L2. GEMM only (W4A8 excludes the activation quantization, shown separately as `quant`). cuBLASLt FP8 scale mode: {fp8Mode}. Kernel compile cold {compile.Cold:F0} ms, warm {compile.Warm:F1} ms.");
        md.AppendLine();
        md.AppendLine("| M | N | K | W4A8 µs | W4A16 µs | FP8 µs | BF16 µs | quant µs | W4A8 TF/s | W4A8 weight GB/s | W4A8/FP8 time | W4A8/BF16 time | W4A16/W4A8 |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
        {
            double wb = (double)r.N * r.K / 2 + (double)r.N * r.K / 128 + 4.0 * r.N;
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.M} | {r.N} | {r.K} | {r.w4a8_us:F1} | {r.w4a16_us:F1} | {r.fp8_us:F1} | {r.bf16_us:F1} | {r.act_quant_us:F1} | {2.0 * r.M * r.N * r.K / (r.w4a8_us * 1e6):F0} | {wb / (r.w4a8_us * 1e3):F0} | {r.w4a8_us / r.fp8_us:F2} | {r.w4a8_us / r.bf16_us:F2} | {r.w4a16_us / r.w4a8_us:F2} |"));
        }
        md.AppendLine();
        md.AppendLine("Weight preprocessing (checkpoint → W4A8 operands):");
        md.AppendLine();
        foreach (var p in prep) md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"- {p.N}x{p.K}: {p.Us:F1} µs, {p.GBs:F0} GB/s of checkpoint bytes"));
        Nibble.Formats.AtomicFile.WriteAllText(Path.Combine(dir, "gemm.md"), md.ToString());
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
