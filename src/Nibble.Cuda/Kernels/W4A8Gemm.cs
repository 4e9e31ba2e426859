using Nibble.Cuda.Native;
using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>
/// Launcher of the W4A8 GEMM (W4A8Gemm.cu, W4A8GemmMma.cu for small M, W4A8GemmWs.cu for M &gt; 32):
/// Y[M,N] bf16 = c'[n]·s_tok[m]·Σ x8·e4m3(q·σ). Owns the split-K workspace and tile counters; not thread-safe (one per stream).
/// </summary>
public sealed class W4A8Gemm : IDisposable
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct Params
    {
        public ulong X, TokenScale, Weight, Scales, ChannelScale, Y, Workspace, Counters;
        public int M, N, K, KBlocksPerSplit, Splits, GroupM;
    }

    /// <summary>W4A8GemmWs.cu's parameters: three TMA descriptors first, the output's last (64-byte aligned in the kernel).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 640)]
    internal unsafe struct WsParams
    {
        [FieldOffset(0)] public fixed byte ActMap[128];
        [FieldOffset(128)] public fixed byte WeightMap[128];
        [FieldOffset(256)] public fixed byte SigmaMap[128];
        [FieldOffset(384)] public ulong TokenScale;
        [FieldOffset(392)] public ulong Weight;
        [FieldOffset(400)] public ulong Scales;
        [FieldOffset(408)] public ulong ChannelScale;
        [FieldOffset(416)] public ulong Y;
        [FieldOffset(424)] public ulong Workspace;
        [FieldOffset(432)] public ulong Counters;
        [FieldOffset(440)] public int M;
        [FieldOffset(444)] public int N;
        [FieldOffset(448)] public int K;
        [FieldOffset(452)] public int KBlocksPerSplit;
        [FieldOffset(456)] public int Splits;
        [FieldOffset(460)] public int GroupM;
        [FieldOffset(464)] public int Flags;
        [FieldOffset(512)] public fixed byte YMap[128];
    }

    readonly KernelCache kernels;
    readonly CudaContext context;
    readonly SplitKScratch scratch;
    readonly W4A8GemmDecode decode;

    public W4A8Gemm(KernelCache kernels, CudaContext context)
    {
        context.RequireHopper();
        this.kernels = kernels;
        this.context = context;
        scratch = new SplitKScratch(context);
        decode = new W4A8GemmDecode(context);
    }

    /// <summary>Compiles (or loads from the disk cache) the kernels now rather than at the first call.</summary>
    public void Warm() { ModuleFor("W4A8Gemm.cu"); ModuleFor("W4A8GemmMma.cu"); if (WarpSpecialized) ModuleFor("W4A8GemmWs.cu"); }

    /// <summary>M &gt; 32 runs the warp-specialized kernel (W4A8GemmWs.cu) rather than W4A8Gemm.cu's.</summary>
    public bool WarpSpecialized { get; init; } = DefaultWarpSpecialized;
    public static bool DefaultWarpSpecialized { get; set; } = true;

    /// <summary>FP32 promotion of the FP8 tensor-core sums: 0 none (default: it changed no measured error), 1 per 128-wide group, 2 per 64-wide block.</summary>
    public int Promote { get; init; } = 0;

    /// <summary>Up to this M (at most 32) the mma.sync decode kernel (W4A8GemmMma.cu) runs instead of the wgmma kernel;
    /// above 16 tokens only for wide matrices unless <see cref="DecodeWideOnlyAbove16"/> is off.</summary>
    public int MmaMaxM { get; init; } = 32;

    /// <summary>
    /// For 16 &lt; M ≤ 32 use the decode kernel only when N ≥ 16384. H100 final run (bench/results/gemm-decode-h100.md,
    /// "wgmma" vs "mma" columns at M=32): the decode kernel wins by 3–6% at N = 28672 and 57344 and loses by 15–35% to
    /// W4A8Gemm.cu's n32 tile at N ≤ 10240 (tie at 12288), where four token tiles of activation conversion per k-block
    /// outweigh its cheaper weight stream.
    /// </summary>
    public bool DecodeWideOnlyAbove16 { get; init; } = true;

    int DecodeMaxM(int n) => DecodeWideOnlyAbove16 && n < 16384 ? Math.Min(MmaMaxM, 16) : MmaMaxM;

    /// <summary>Weight k-blocks in flight per thread in the mma.sync decode kernel (4 default).</summary>
    public int MmaRing { get; init; } = DefaultMmaRing;
    public static int DefaultMmaRing { get; set; } = 4;

    /// <summary>
    /// Split-K workspace layout of the warp-specialized kernel (W4A8GemmWs.cu, define W4A8_WS_SPLIT): 0 = [split][M][N]
    /// scalar partial sums, 1 (default) = thread-private 16-byte vectors reduced in chunks of 64 floats. Same bits.
    /// gemm-large2 H100 sweep: 1 is faster at every split plan the cost model picks (4096² M=64 n64 s4 18.6 → 15.6 µs,
    /// 8192×28672 M=256 n256 s2 116.4 → 105.2), slower only on multi-wave split plans that no model picks.
    /// </summary>
    public int WsSplitLayout { get; init; } = DefaultWsSplitLayout;
    public static int DefaultWsSplitLayout { get; set; } = 1;
    /// <summary>
    /// Warp-specialized epilogue (define W4A8_WS_EPI): 0 (default) = bf16 scalar stores, 1 = pairs of rows as u32 (same
    /// bits). Measured within run-to-run drift of 0 (−8%..+14% at M ≥ 2048 in one run), so not switched on.
    /// </summary>
    public int WsPairedStores { get; init; } = DefaultWsPairedStores;
    public static int DefaultWsPairedStores { get; set; } = 0;
    /// <summary>
    /// Warp-specialized main loop (define W4A8_WS_PREFETCH): 1 = the next stage's codes/σ are read before waiting on the
    /// last wgmma group (same bits). Measured equal or slower (256-row tiles up to +30%: ptxas spills more), so 0.
    /// </summary>
    public int WsPrefetch { get; init; } = DefaultWsPrefetch;
    public static int DefaultWsPrefetch { get; set; } = 0;
    /// <summary>Consumer registers of the warp-specialized kernel (define W4A8_WS_REGS): 232 (producer 40) or 240 (producer 24).</summary>
    public int WsRegs { get; init; } = DefaultWsRegs;
    public static int DefaultWsRegs { get; set; } = Environment.GetEnvironmentVariable("NIBBLE_W4A8_WS_REGS") == "240" ? 240 : 232;
    /// <summary>
    /// Warp-specialized epilogue (define W4A8_WS_STORE): 1 (default) = through shared memory (stmatrix) and TMA bulk stores
    /// that drain while the next tile's main loop runs, 0 = bf16 scalar stores from registers. Same bits. Two same-run H100
    /// comparisons (bench/results/gemm-ws-store-h100-20261127.log): geometric mean 0.96× the time at 64 ≤ M ≤ 256, 0.95× at
    /// M = 512–1024, 0.97× at M ≥ 2048. NIBBLE_W4A8_WS_STORE=0 selects 0 for a process.
    /// </summary>
    public int WsStore { get; init; } = DefaultWsStore;
    public static int DefaultWsStore { get; set; } = Environment.GetEnvironmentVariable("NIBBLE_W4A8_WS_STORE") == "0" ? 0 : 1;
    /// <summary>Benchmark diagnostic only: the warp-specialized kernel skips its epilogue (Y is NOT written) to time the main loop.</summary>
    public static bool WsSkipEpilogue { get; set; }

    /// <summary>
    /// Two warp-specialized CTAs per SM (define W4A8_WS_OCC=2: 104 registers per consumer thread, ≤ 112 KB of shared
    /// memory each) for the 64-token × 128-row tile (32 accumulators per thread; ptxas cannot fit the 64-accumulator tiles
    /// in the 80 registers at entry); other tiles keep one CTA per SM. Off (NIBBLE_W4A8_WS_OCC=2 turns it on): same bits, and
    /// within ±5 % of the planned one-CTA plans on the H100 (bench/results/gemm-ws-occ2-h100-20261127.log).
    /// </summary>
    public int WsOcc { get; init; } = DefaultWsOcc;
    public static int DefaultWsOcc { get; set; } = Environment.GetEnvironmentVariable("NIBBLE_W4A8_WS_OCC") == "2" ? 2 : 1;
    /// <summary>CTAs per SM this instance launches <paramref name="plan"/> with (1 or 2).</summary>
    public int WsCtasPerSm(GemmPlan plan) => WsOcc == 2 && plan.Ws && plan.MT * (plan.WN / 2) <= 64 ? 2 : 1;

    CudaModule ModuleFor(string source, int occ = 1) => occ == 2
        ? kernels.Load(source, hopperOnly: true, [.. WsDefines(), "W4A8_WS_OCC=2"])
        : ModuleFor(source);

    CudaModule ModuleFor(string source) =>
        source switch
        {
            "W4A8Gemm.cu" => kernels.Load(source, hopperOnly: true, Promote == 0 ? [] : [$"W4A8_PROMOTE={Promote}"]),
            "W4A8GemmMma.cu" => kernels.Load(source, hopperOnly: true, MmaRing == 4 ? [] : [$"W4A8_MMA_RING={MmaRing}"]),
            "W4A8GemmWs.cu" => kernels.Load(source, hopperOnly: true, WsDefines()),
            _ => kernels.Load(source, hopperOnly: true),
        };

    string[] WsDefines()
    {
        var d = new List<string>();
        if (WsSplitLayout != 0) d.Add($"W4A8_WS_SPLIT={WsSplitLayout}");
        if (WsPairedStores != 0) d.Add($"W4A8_WS_EPI={WsPairedStores}");
        if (WsPrefetch != 0) d.Add($"W4A8_WS_PREFETCH={WsPrefetch}");
        if (WsRegs != 232) d.Add($"W4A8_WS_REGS={WsRegs}");
        if (WsStore != 1) d.Add($"W4A8_WS_STORE={WsStore}");
        return [.. d];
    }

    readonly Dictionary<(int, int, int), GemmPlan> plans = new();

    public GemmPlan Plan(int m, int n, int k)
    {
        if (plans.TryGetValue((m, n, k), out var p)) return p;
        p = GemmPlan.ChooseW4A8(m, n, k, context.MultiprocessorCount, DecodeMaxM(n),
            c => ModuleFor(c.W4A8Source).Function(KernelName(c, m, n, k)).MaxActiveBlocksPerSm(c.W4A8Threads, (int)c.W4A8SharedBytes), WarpSpecialized);
        plans[(m, n, k)] = p;
        return p;
    }

    /// <summary>Whether the kernel of <paramref name="plan"/> adds a bias passed to <see cref="Run"/> (before the bf16 rounding).</summary>
    public static bool AddsBias(GemmPlan plan) => plan.Mma;

    /// <summary>
    /// Runs Y = GEMM(x8, W); <paramref name="x8"/> must be in the order <see cref="GemmPlan.GemmOrderActivations"/> of the plan says.
    /// <paramref name="bias"/> (FP32 [N]) is added before the bf16 rounding by the plans that <see cref="AddsBias"/>; passing one to another plan is an error.
    /// </summary>
    public void Run(CudaStream stream, DeviceBuffer<byte> x8, DeviceBuffer<float> tokenScale, W4A8GemmOperands w, DeviceBuffer<ushort> y, int m, GemmPlan? plan = null,
        DeviceBuffer<float>? bias = null)
    {
        if (m <= 0) return;
        if (x8.Length < (long)m * w.K || tokenScale.Length < m || y.Length < (long)m * w.N)
            throw new ArgumentException($"W4A8 GEMM buffers are smaller than M={m}, N={w.N}, K={w.K}");
        var pl = plan ?? Plan(m, w.N, w.K);
        if (bias is not null && !AddsBias(pl)) throw new ArgumentException($"The W4A8 kernel {pl.W4A8Kernel} adds no bias; add it after the GEMM.", nameof(bias));
        if (pl.Mma) { RunDecode(stream, x8, tokenScale, w, y, m, pl, bias); return; }

        var (ws, counters) = scratch.Get(pl, m, w.N);
        int occ = WsCtasPerSm(pl);
        var f = ModuleFor(pl.W4A8Source, occ).Function(pl.W4A8Kernel);
        if (pl.Ws)
        {
            var wp = new WsParams
            {
                TokenScale = tokenScale.Pointer, Weight = w.WeightTiled.Pointer, Scales = w.SigmaTiled.Pointer,
                ChannelScale = w.ChannelScale.Pointer, Y = y.Pointer, Workspace = ws, Counters = counters,
                M = m, N = w.N, K = w.K, KBlocksPerSplit = pl.KBlocksPerSplit, Splits = pl.Splits, GroupM = pl.GroupM,
            };
            if (WsTensorMapWeights) wp.Flags |= 1;
            if (WsRotateK) wp.Flags |= 2;
            if (WsSkipEpilogue) wp.Flags |= 4;
            SetMaps(ref wp, x8.Pointer, m, w, pl.MT, 4 * pl.WN, WsStore == 1 ? y.Pointer : 0);
            // Persistent: one (or two) CTAs per SM loop over the (tile, split) work units.
            f.Launch(stream, ((uint)Math.Min((long)pl.Ctas * pl.Splits, occ * context.MultiprocessorCount), 1, 1), (uint)pl.W4A8Threads, wp,
                (uint)GemmPlan.WsSharedBytes(pl.MT, pl.WN / 2, WsStore == 1, occ));
            return;
        }
        var p = new Params
        {
            X = x8.Pointer, TokenScale = tokenScale.Pointer, Weight = w.WeightTiled.Pointer, Scales = w.SigmaTiled.Pointer,
            ChannelScale = w.ChannelScale.Pointer, Y = y.Pointer, Workspace = ws, Counters = counters,
            M = m, N = w.N, K = w.K, KBlocksPerSplit = pl.KBlocksPerSplit, Splits = pl.Splits, GroupM = pl.GroupM,
        };
        f.Launch(stream, ((uint)pl.Ctas, (uint)pl.Splits, 1), (uint)pl.W4A8Threads, p, pl.W4A8SharedBytes);
    }

    /// <summary>Weights and σ through two TMA maps (3 copies per stage) rather than 2 bulk copies per 16-row slab.</summary>
    public static bool WsTensorMapWeights { get; set; } = true;
    /// <summary>
    /// Start each n-tile's k walk at a different 128-wide group (meant to spread concurrent activation reads over L2).
    /// Off: run 4 measured no difference (M=256: 65.2 µs rotated, 64.1 plain), so the L2 hot-spot guess was wrong.
    /// </summary>
    public static bool WsRotateK { get; set; } = false;

    // Encoded TMA descriptors by (address, rows, row bytes, box): a host call each, cached because the runtime reuses buffers.
    readonly Dictionary<(ulong, long, long, int, int, bool), byte[]> maps = new();

    /// <summary>
    /// The three TMA maps of the warp-specialized kernel: x8 [M][K] bytes with a 128 × <paramref name="tokens"/> box and
    /// 128-byte swizzle (wgmma's K-major SWIZZLE_128B layout; rows past M read as zeros); the tiled codes as u64
    /// [N/16][K] with a 1 KB × <paramref name="slabs"/> box (the two 512-byte k-blocks of a group per slab, unswizzled, the
    /// layout the consumers read); σ pairs as u64 [N/16][K/64] with a 16 B × slabs box.
    /// </summary>
    unsafe void SetMaps(ref WsParams p, ulong x8, int m, W4A8GemmOperands w, int tokens, int slabs, ulong y)
    {
        // The output (W4A8_WS_STORE): y [M][N] bf16 moved as u16, 64 rows of N × 32 tokens per box, 128-byte swizzle.
        if (y != 0) fixed (byte* o = p.YMap) Map(o, y, Driver.TensorMapUint16, w.N, m, (long)w.N * 2, 64, 32, swizzle: true);
        fixed (byte* a = p.ActMap) Map(a, x8, Driver.TensorMapUint8, w.K, m, w.K, 128, tokens, swizzle: true);
        fixed (byte* b = p.WeightMap) Map(b, w.WeightTiled.Pointer, Driver.TensorMapUint64, w.K, w.N / 16, (long)w.K * 8, 128, slabs, swizzle: false);
        fixed (byte* c = p.SigmaMap) Map(c, w.SigmaTiled.Pointer, Driver.TensorMapUint64, w.K / 64, w.N / 16, (long)w.K / 8, 2, slabs, swizzle: false);
    }

    unsafe void Map(byte* dst, ulong address, int type, long cols, long rows, long rowBytes, int boxCols, int boxRows, bool swizzle)
    {
        var key = (address, rows, rowBytes, boxRows, type, swizzle);
        if (!maps.TryGetValue(key, out var enc))
        {
            enc = new byte[128];
            ulong* dims = stackalloc ulong[2] { (ulong)cols, (ulong)rows };
            ulong* strides = stackalloc ulong[1] { (ulong)rowBytes };
            uint* box = stackalloc uint[2] { (uint)boxCols, (uint)boxRows };
            uint* elem = stackalloc uint[2] { 1, 1 };
            fixed (byte* e = enc)
                CudaException.Check(Driver.cuTensorMapEncodeTiled(e, type, 2, address, dims, strides, box, elem, Driver.TensorMapInterleaveNone,
                    swizzle ? Driver.TensorMapSwizzle128B : Driver.TensorMapSwizzleNone, Driver.TensorMapL2Promotion256B, Driver.TensorMapOobFillZero),
                    $"cuTensorMapEncodeTiled({rows}x{cols}, box {boxRows}x{boxCols})");
            if (maps.Count > 256) maps.Clear();
            maps[key] = enc;
        }
        new ReadOnlySpan<byte>(enc).CopyTo(new Span<byte>(dst, 128));
    }

    /// <summary>
    /// Small M through the v6 decode kernels (<c>w4a8_mma_*u</c>): v3's exact decode, with every ring step that lies
    /// wholly inside the split run without bounds guards and each load at a running pointer + constant. On by default:
    /// 17 % faster than v3 (geometric mean over the 9 issue shapes × M 1/4/16/32, 0.71–1.02×) in the same H100 run
    /// (bench/results/gemm-h100-final-20261127.log, `--decode-variants`). NIBBLE_W4A8_DECODE_UNGUARDED=0 selects v3
    /// for a process.
    /// </summary>
    public bool DecodeUnguarded { get; init; } = DefaultDecodeUnguarded;
    public static bool DefaultDecodeUnguarded { get; set; } = Environment.GetEnvironmentVariable("NIBBLE_W4A8_DECODE_UNGUARDED") != "0";

    /// <summary>
    /// Small M through the v8 decode kernels (<c>w4a8_mma_*h</c>): v6 (with late ring refills) reading an f16 copy of the activations that one
    /// extra pass (<c>w4a8_x8_to_f16</c>) writes per GEMM, instead of every warp converting e4m3 at every k-block; same
    /// values, same sums. Off (allocates a scratch buffer on first use, so not inside graph capture first);
    /// NIBBLE_W4A8_DECODE_V8=1 selects it for a process.
    /// </summary>
    public bool DecodeF16Activations { get; init; } = DefaultDecodeF16Activations;
    public static bool DefaultDecodeF16Activations { get; set; } = Environment.GetEnvironmentVariable("NIBBLE_W4A8_DECODE_V8") == "1";

    /// <summary>
    /// v8 without being asked for 8 &lt; M ≤ 16 on matrices of at least 100M weights: there the f16 activation pass pays for
    /// itself (same H100 run, bench/results/gemm-decode4-h100.log, M=16: 57344×8192 126 → 112 µs, 8192×28672 71 → 66,
    /// 12288² 54 → 50, 28672×4096 43 → 41), while on smaller matrices and at M ≤ 8 its extra launch costs 2–3 µs; at
    /// M = 32 (four token tiles, 180–254 registers) it was slower (57344×8192: 211 µs against 173).
    /// NIBBLE_W4A8_DECODE_V8_AUTO=0 turns the rule off for a process; so does choosing v3 (NIBBLE_W4A8_DECODE_UNGUARDED=0).
    /// </summary>
    public bool DecodeF16Auto { get; init; } = DefaultDecodeF16Auto;
    public static bool DefaultDecodeF16Auto { get; set; } = Environment.GetEnvironmentVariable("NIBBLE_W4A8_DECODE_V8_AUTO") != "0";
    /// <summary>The kernel <see cref="Run"/> launches for this problem (diagnostics and tests).</summary>
    public string KernelFor(int m, int n, int k) => KernelName(Plan(m, n, k), m, n, k);
    string KernelName(GemmPlan pl, int m, int n, int k) =>
        pl.Mma ? W4A8GemmDecode.KernelName(pl, DecodeUnguarded, UseF16Activations(m, n, k)) : pl.W4A8Kernel;
    bool UseF16Activations(int m, int n, int k) => DecodeF16Activations || (DecodeF16Auto && DecodeUnguarded && m > 8 && m <= 16 && (long)n * k >= 100_000_000);

    void RunDecode(CudaStream stream, DeviceBuffer<byte> x8, DeviceBuffer<float> tokenScale, W4A8GemmOperands w, DeviceBuffer<ushort> y, int m, GemmPlan pl, DeviceBuffer<float>? bias)
    {
        var (ws, counters) = scratch.Get(pl, m, w.N);
        bool f16 = UseF16Activations(m, w.N, w.K);
        decode.Launch(ModuleFor("W4A8GemmMma.cu"), stream, pl, x8, tokenScale, w, y, m, ws, counters, bias, DecodeUnguarded, f16);
    }

    /// <summary>Decodes all 16 unified codes through the kernel's LUT path for each sigma (test hook).</summary>
    public byte[] ProbeLut(CudaStream stream, byte[] sigmas)
    {
        using var s = DeviceBuffer<byte>.From(context, sigmas, stream);
        using var o = new DeviceBuffer<byte>(context, sigmas.Length * 16L);
        var f = ModuleFor("W4A8Gemm.cu").Function("w4a8_lut_probe");
        f.Launch(stream, ((uint)((sigmas.Length + 127) / 128), 1, 1), 128, new ProbeParams { Sigma = s.Pointer, Out = o.Pointer, Count = sigmas.Length });
        return o.ToArray(stream);
    }

    [StructLayout(LayoutKind.Sequential)]
    struct ProbeParams { public ulong Sigma, Out; public int Count; }

    public void Dispose() { scratch.Dispose(); decode.Dispose(); }
}

/// <summary>Split-K workspace (fp32 partial sums) and per-tile tickets, grown on demand; tickets are zero at rest.</summary>
internal sealed class SplitKScratch(CudaContext context) : IDisposable
{
    DeviceBuffer<float>? workspace;
    DeviceBuffer<uint>? counters;

    public (ulong Workspace, ulong Counters) Get(GemmPlan plan, int m, int n)
    {
        if (plan.Splits <= 1) return (0, 0);
        // The warp-specialized kernel's thread-private layout covers whole token tiles (MTiles·MT ≥ M rows).
        long wsLen = (long)plan.Splits * (plan.Ws ? Math.Max(m, plan.MTiles * plan.MT) : m) * n;
        var ws = DeviceBuffer<float>.AtLeast(ref workspace, context, wsLen);
        if (counters is null || counters.Length < plan.Ctas)
        {
            counters?.Dispose();
            counters = new DeviceBuffer<uint>(context, Math.Max(plan.Ctas, 4096));
            counters.FillBytes(0);
            context.Synchronize();
        }
        return (ws.Pointer, counters.Pointer);
    }

    public void Dispose() { workspace?.Dispose(); counters?.Dispose(); }
}
