namespace Nibble.Cuda.Kernels;

/// <summary>
/// Launch shape of the GEMMs: token tile MT (the W4A8 wgmma N), warpgroups (W4A8) or 16-row warps-per-slab (W4A16)
/// per CTA as WN (CTA rows = 64·WN), k-blocks per pipeline stage KS, and the serial split-K factor.
/// Small M gives few CTAs (N/64 for M ≤ 8), so K is split until about <see cref="TargetCtasPerSm"/> CTAs per SM
/// exist, keeping all 132 SMs streaming weights; each split covers whole 128-wide groups.
/// </summary>
public readonly record struct GemmPlan(int MT, int WN, int KS, int Splits, int KBlocksPerSplit, int MTiles, int NTiles, int GroupM, bool Mma = false)
{
    public const int TargetCtasPerSm = 4;
    /// <summary>k-blocks per stage (and weight ring depth 8) of the M > 32 wgmma kernels; 4 was v2's setting.</summary>
    public static int LargeKs { get; set; } = 8;
    public int Ctas => MTiles * NTiles;

    /// <summary>Dynamic shared memory of the W4A8 kernel: 3 stages of MT tokens × 64·KS bytes.</summary>
    public uint W4A8SharedBytes => Mma ? 0 : (uint)(3 * MT * 64 * KS);
    public string W4A8Kernel => Mma ? $"w4a8_mma_m{MT}_w{WN}" : $"w4a8_gemm_n{MT}_wg{WN}_ks{KS}";
    public string W4A8Source => Mma ? "W4A8GemmMma.cu" : "W4A8Gemm.cu";
    /// <summary>Whether the W4A8 kernel of this plan reads x8 in GEMM order (wgmma) or natural order (mma.sync).</summary>
    public bool GemmOrderActivations => !Mma;

    /// <param name="mmaMaxM">W4A8 only: up to this M the mma.sync decode kernel is used instead of wgmma.</param>
    /// <summary>
    /// W4A8: among the kernel shapes that suit M, prefer one whose CTAs all fit in one wave (then split K until the
    /// resident slots are full), else the best wave efficiency. <paramref name="residentPerSm"/> asks the driver's
    /// occupancy calculator for a candidate.
    /// </summary>
    public static GemmPlan ChooseW4A8(int m, int n, int k, int sms, int mmaMaxM, Func<GemmPlan, int> residentPerSm)
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
}
