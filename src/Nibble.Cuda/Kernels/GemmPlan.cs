namespace Nibble.Cuda.Kernels;

/// <summary>
/// Launch shape of the mma.sync GEMMs: token tile MT, 16-row slabs per warp WN, serial split-K factor.
/// Small M gives few CTAs (N/64 for M ≤ 8), so K is split until about <see cref="TargetCtasPerSm"/> CTAs per SM
/// exist, keeping all 132 SMs streaming weights; each split covers whole 128-wide groups.
/// </summary>
public readonly record struct GemmPlan(int MT, int WN, int Splits, int KBlocksPerSplit, int MTiles, int NTiles, int GroupM)
{
    public const int TargetCtasPerSm = 4;

    public string KernelSuffix => $"m{MT}_w{WN}";
    public int Ctas => MTiles * NTiles;

    public static GemmPlan Choose(int m, int n, int k, int sms, bool w4a16)
    {
        int mt = m <= 8 ? 8 : m <= 16 ? 16 : m <= 32 ? 32 : 64;
        int wn = w4a16 ? 1 : mt >= 64 ? 2 : 1;
        int mTiles = (m + mt - 1) / mt, nTiles = n / (64 * wn);
        int groups = k / 128;
        int ctas = mTiles * nTiles;
        int splits = 1;
        if (ctas < 2 * sms)
            splits = Math.Clamp((TargetCtasPerSm * sms + ctas - 1) / ctas, 1, Math.Max(1, groups / 2));
        int groupsPerSplit = (groups + splits - 1) / splits;
        splits = (groups + groupsPerSplit - 1) / groupsPerSplit;
        return new GemmPlan(mt, wn, splits, groupsPerSplit * 2, mTiles, nTiles, 8);
    }
}
