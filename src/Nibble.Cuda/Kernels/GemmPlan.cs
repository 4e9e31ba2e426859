namespace Nibble.Cuda.Kernels;

/// <summary>
/// Launch shape of the GEMMs: token tile MT (the W4A8 wgmma N), warpgroups (W4A8) or 16-row warps-per-slab (W4A16)
/// per CTA as WN (CTA rows = 64·WN), k-blocks per pipeline stage KS, and the serial split-K factor.
/// Small M gives few CTAs (N/64 for M ≤ 8), so K is split until about <see cref="TargetCtasPerSm"/> CTAs per SM
/// exist, keeping all 132 SMs streaming weights; each split covers whole 128-wide groups.
/// </summary>
/// <remarks><c>Ws</c>: the warp-specialized W4A8 kernel (W4A8GemmWs.cu, M &gt; 32): WN = 64-row slices per CTA (2 or 4),
/// KS = wgmma groups kept in flight (only 1 is built: 2 was serialized by ptxas), 384 threads, one 128-wide k group
/// per stage.</remarks>
public readonly record struct GemmPlan(int MT, int WN, int KS, int Splits, int KBlocksPerSplit, int MTiles, int NTiles, int GroupM, bool Mma = false, bool Ws = false)
{
    public const int TargetCtasPerSm = 4;
    /// <summary>k-blocks per stage (and weight ring depth 8) of the M > 32 wgmma kernels; 4 was v2's setting.</summary>
    public static int LargeKs { get; set; } = 8;
    public int Ctas => MTiles * NTiles;

    /// <summary>Dynamic shared memory of the W4A8 kernel: 3 stages of MT tokens × 64·KS bytes.</summary>
    public uint W4A8SharedBytes => Mma ? 0 : Ws ? (uint)WsSharedBytes(MT, WN / 2) : (uint)(3 * MT * 64 * KS);
    public string W4A8Kernel => Mma ? $"w4a8_mma_m{MT}_w{WN}" : Ws ? $"w4a8_ws_n{MT}_r{WN / 2}_w{KS}" : $"w4a8_gemm_n{MT}_wg{WN}_ks{KS}";
    public string W4A8Source => Mma ? "W4A8GemmMma.cu" : Ws ? "W4A8GemmWs.cu" : "W4A8Gemm.cu";
    public int W4A8Threads => Mma ? 128 : Ws ? 384 : 128 * WN;
    /// <summary>Whether the W4A8 kernel of this plan reads x8 in GEMM order (wgmma) or natural order (mma.sync).</summary>
    public bool GemmOrderActivations => !Mma;

    /// <summary>
    /// W4A8: among the kernel shapes that suit M, prefer one whose CTAs all fit in one wave (then split K until the
    /// resident slots are full), else the best wave efficiency. <paramref name="residentPerSm"/> asks the driver's
    /// occupancy calculator for a candidate. <paramref name="ws"/>: M &gt; 32 runs the warp-specialized kernel.
    /// </summary>
    /// <param name="mmaMaxM">W4A8 only: up to this M the mma.sync decode kernel is used instead of wgmma.</param>
    public static GemmPlan ChooseW4A8(int m, int n, int k, int sms, int mmaMaxM, Func<GemmPlan, int> residentPerSm, bool ws = false)
    {
        var shapes = new List<(int MT, int WN, int KS, bool Mma)>();
        if (m <= Math.Min(mmaMaxM, 32))
        {
            // One 16-row slab per warp first (fewest registers, most warps: faster than two in the H100 runs at all
            // but a few shapes), two when that fits the waves better; W4A8GemmDecode.ForceWn pins one (benchmarks).
            int mt = m <= 8 ? 8 : m <= 16 ? 16 : 32;
            foreach (int wn in W4A8GemmDecode.ForceWn > 0 ? new[] { W4A8GemmDecode.ForceWn } : new[] { 1, 2 })
                if (wn <= 2 || mt == 8) shapes.Add((mt, wn, 1, true));
        }
        else if (m <= 16) { shapes.Add((m <= 8 ? 8 : 16, 1, 8, false)); }
        else if (m <= 32) { shapes.Add((32, 1, 4, false)); shapes.Add((32, 2, 4, false)); }
        else if (ws) return ChooseWs(m, n, k, sms);
        else if (m <= 64) shapes.Add((64, 2, LargeKs, false));
        else shapes.Add((128, 2, LargeKs, false));
        int groups = k / 128;
        GemmPlan? best = null;
        double bestEff = -1;
        foreach (var (mt, wn, ks, mma) in shapes)
        {
            if (n % (64 * wn) != 0) continue;
            int mTiles = (m + mt - 1) / mt, nTiles = n / (64 * wn), ctas = mTiles * nTiles;
            var plan = new GemmPlan(mt, wn, ks, 1, groups * 2, mTiles, nTiles, 8, mma);
            int cap = Math.Max(1, residentPerSm(plan)) * sms;
            int splits = 1;
            double eff;
            if (ctas <= cap) { splits = Math.Clamp(cap / ctas, 1, Math.Max(1, groups / 2)); eff = 1; }
            // The M ≤ 8 decode kernel streams weights: past one wave, slots refill as CTAs retire, so a partial last wave
            // costs little (H100, 57344×8192 M=1: one slab per warp, 1.13 waves, 108 µs; two slabs in one wave, 118 µs).
            // Not for the m32 tiles: there one slab per warp past a wave lost (57344×8192 M=32: 204 µs against 173).
            else if (mma && mt == 8) eff = 1;
            else eff = ctas / (Math.Ceiling((double)ctas / cap) * cap);
            if (eff > bestEff + 1e-9)
            {
                int gps = (groups + splits - 1) / splits;
                splits = (groups + gps - 1) / gps;
                best = plan with { Splits = splits, KBlocksPerSplit = gps * 2 };
                bestEff = eff;
            }
        }
        return best ?? Choose(m, n, k, sms, w4a16: false, mmaMaxM);
    }

    public static GemmPlan Choose(int m, int n, int k, int sms, bool w4a16, int mmaMaxM = 0)
    {
        int mt, wn, ks;
        bool mma = !w4a16 && m <= Math.Min(mmaMaxM, 32);
        if (w4a16 || mma) { mt = m <= 8 ? 8 : m <= 16 ? 16 : m <= 32 ? 32 : 64; wn = 1; ks = 1; }
        else if (m <= 8) (mt, wn, ks) = (8, 1, 8);
        else if (m <= 16) (mt, wn, ks) = (16, 1, 8);
        else if (m <= 32) (mt, wn, ks) = (32, 1, 4);
        else if (m <= 64) (mt, wn, ks) = (64, 2, 4);
        else (mt, wn, ks) = (128, 2, 4);
        if (n % (64 * wn) != 0) wn = 1;
        int mTiles = (m + mt - 1) / mt, nTiles = n / (64 * wn);
        int groups = k / 128;
        int ctas = mTiles * nTiles;
        int splits = 1;
        if (ctas < 2 * sms)
            splits = Math.Clamp((TargetCtasPerSm * sms + ctas - 1) / ctas, 1, Math.Max(1, groups / 2));
        int groupsPerSplit = (groups + splits - 1) / splits;
        splits = (groups + groupsPerSplit - 1) / groupsPerSplit;
        return new GemmPlan(mt, wn, ks, splits, groupsPerSplit * 2, mTiles, nTiles, 8, mma);
    }
    /// <summary>Dynamic shared memory of W4A8GemmWs.cu for token tile <paramref name="mt"/> and <paramref name="ms"/> m64 slices per
    /// consumer warpgroup, with or without the TMA-store output buffers (mirrors WsShape).</summary>
    public static int WsSharedBytes(int mt, int ms, bool tmaStore = true, int ctasPerSm = 1)
    {
        int slabs = 8 * ms, tx = mt * 128 + slabs * 1024 + slabs * 16, stage = (tx + 1023) / 1024 * 1024;
        int epi = tmaStore ? 2 * 2 * ms * 4096 : 0;
        int ring = ctasPerSm == 2 ? 112 * 1024 - 3072 - epi : tmaStore ? 224 * 1024 - 3072 - epi : 216 * 1024;
        return Math.Min(16, ring / stage) * stage + 3072 + epi;
    }

    /// <summary>
    /// Cost model of <see cref="ChooseWs"/>: 2 (default) = fitted to the gemm-large2 sweep (every token tile × rows ×
    /// split at M = 64..8192, <c>bench/results/gemm-large2-h100-sweep.txt</c>), see <see cref="WsCostMicroseconds"/>;
    /// 0 = the first guess in clocks, 1 = refitted to gemm-large run 3 (both kept for comparison; they only consider
    /// the token tile matching M and underestimate split-K, e.g. 4096² M=256: n256 s3 42.6 µs against 21.5 for the
    /// n64 s1 plan model 2 picks).
    /// </summary>
    public static int WsModel { get; set; } = 2;
    /// <summary>Test/bench override of the warp-specialized shape: (token tile, WN); null = cost model.</summary>
    public static (int MT, int WN)? WsForce { get; set; }
    /// <summary>Test/bench override of the warp-specialized split-K factor (must divide the 128-wide groups into equal-size splits but the last); null = cost model.</summary>
    public static int? WsForceSplits { get; set; }

    /// <summary>
    /// Warp-specialized kernel (one 384-thread CTA per SM): token tile 64, 128 or 256, 128 or 256 weight rows, and a
    /// split-K factor, chosen by cost model 2 (<see cref="WsCostMicroseconds"/>, every built tile for every M). Models
    /// 0 and 1 (token tile 64 for M ≤ 64, 128 for M ≤ 128, else 256): a per-SM cost model in clocks: per 128-wide k group the larger of the
    /// tensor-core time (2·rows·tokens·128 at ~8.5k FP8 flop/clk/SM), the decode issue time (∝ weight rows, not
    /// tokens) and the bytes (weights from HBM at the SM's share of ~1.7 kB/clk, activations from L2), times the
    /// waves, plus a fixed cost per CTA and the split-K round trip.
    /// </summary>
    public static GemmPlan ChooseWs(int m, int n, int k, int sms, int? costModel = null)
    {
        int model = costModel ?? WsModel;
        int groups = k / 128;
        GemmPlan? best = null;
        double bestCost = double.MaxValue;
        var shapes = new List<(int Mt, int Ms)>();
        if (WsForce is { } f) shapes.Add((f.MT, f.WN / 2));
        else if (model == 2) shapes.AddRange([(64, 1), (128, 1), (256, 1), (64, 2), (128, 2)]);
        else if (m <= 64) { shapes.Add((64, 1)); shapes.Add((64, 2)); }
        else if (m <= 128) { shapes.Add((128, 1)); shapes.Add((128, 2)); }
        else { shapes.Add((256, 1)); shapes.Add((128, 2)); }
        foreach (var (mt, ms) in shapes)
        {
            int rows = 128 * ms;
            if (n % rows != 0) continue;
            int mTiles = (m + mt - 1) / mt, nTiles = n / rows, tiles = mTiles * nTiles;
            for (int s = 1; s <= Math.Min(groups, 16); s++)
            {
                int gps = (groups + s - 1) / s, splits = (groups + gps - 1) / gps;
                if (splits != s || (WsForceSplits is { } fs && s != fs)) continue;
                if (model == 2)
                {
                    double us = WsCostMicroseconds(mt, ms, tiles, gps, splits, sms);
                    if (us < bestCost * 0.98)
                    {
                        bestCost = us;
                        best = new GemmPlan(mt, 2 * ms, 1, splits, gps * 2, mTiles, nTiles, 8, Mma: false, Ws: true);
                    }
                    continue;
                }
                long ctas = (long)tiles * splits;
                double waves = Math.Ceiling((double)ctas / sms);
                double active = Math.Min(ctas, sms);
                // Model 1 (run 3 of gemm-large): a consumer warpgroup pair needs ~1100 clk per group and 64-row slice
                // (decode + wgmma latency chain; measured 1200-2400 clk per stage at mid M), ~4000 clk per work unit
                // (pipeline fill, epilogue). Model 0: the first guess (300 clk, 1000 clk).
                double mma = 2.0 * rows * mt * 128 / 8500, decode = (model == 1 ? 1100.0 : 300.0) * ms;
                double bytes = rows * 64 / Math.Min(30.0, 1700.0 / active) + mt * 128 / 60.0;
                double cost = waves * (gps * Math.Max(mma, Math.Max(decode, bytes)) + (model == 1 ? 4000 : 1000));
                if (splits > 1) cost += (double)m * n * 4 * (splits + 1) / 1700.0;
                if (cost < bestCost * 0.98)
                {
                    bestCost = cost;
                    best = new GemmPlan(mt, 2 * ms, 1, splits, gps * 2, mTiles, nTiles, 8, Mma: false, Ws: true);
                }
            }
        }
        return best ?? throw new ArgumentException($"W4A8 GEMM: no warp-specialized shape fits N={n}");
    }

    /// <summary>
    /// Model 2 of the warp-specialized kernel's time in µs (H100 SXM, fitted to the gemm-large2 sweep: 196 plans at
    /// M = 64..256 within −14%..+42% of measured, mean ratio 0.99–1.11 per tile kind; it picks the fastest measured plan
    /// at 18 of 20 (shape, M) points and one within 4% at another):
    /// launch + fill 5 µs; per 128-wide k group the larger of the consumers' decode → wgmma latency chain (measured
    /// per tile: 0.46 / 0.54 / 0.65 µs for 64 / 128 / 256 tokens × 128 rows, 0.79 / 0.91 for 64 / 128 tokens × 256
    /// rows) and the L2 → SM bytes of all active CTAs at 6.5 TB/s; per work unit the bf16 epilogue (~16 GB/s per SM:
    /// 4 µs for a 256 × 128 tile) and, with split-K, the fp32 partial tile written and re-read (~38 GB/s per SM);
    /// the last unit of a tile also reads the other splits' partials (the reduce is serial within one CTA).
    /// </summary>
    public static double WsCostMicroseconds(int mt, int ms, int tiles, int groupsPerSplit, int splits, int sms)
    {
        double chain = (mt, ms) switch
        {
            (64, 1) => 0.456, (128, 1) => 0.543, (256, 1) => 0.646, (64, 2) => 0.789, (128, 2) => 0.908,
            _ => 0.3 + 0.0027 * mt * ms, // not built; only reachable through WsForce
        };
        int rows = 128 * ms;
        long units = (long)tiles * splits;
        double waves = Math.Ceiling((double)units / sms), active = Math.Min(units, sms);
        double l2 = active * (mt * 128.0 + rows * 64.0) / 6.5e6;
        double stage = Math.Max(chain, l2);
        double epilogue = rows * mt * 2.0 / 16e3;
        double partial = rows * mt * 4.0 / 38e3;
        double perUnit = groupsPerSplit * stage + epilogue + (splits > 1 ? 2 * partial : 0);
        return 5 + waves * perUnit + (splits > 1 ? (splits - 1) * partial : 0);
    }
}
