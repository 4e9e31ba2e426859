using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>
/// Launch of the small-M W4A8 kernels (W4A8GemmMma.cu, plans with <see cref="GemmPlan.Mma"/>): their parameter struct,
/// the σ decode table (<see cref="W4A8DecodeTable"/>, uploaded once) and the optional FP32 bias, which these kernels add
/// before the one bf16 rounding as the contract says (W4A8Reference). Used through <see cref="W4A8Gemm.Run"/>.
/// Two families: the register-ring kernel <c>w4a8_mma_m{MT}_w{WN}</c> (KS = 1) and the bulk-copy kernel
/// <c>w4a8_bulk_m{MT}_c{4·WN}_k{KS}</c> (KS = k-blocks per chunk &gt; 1; 4·WN consumer warps of one slab each + a producer
/// warp; the CTA covers 64·WN rows either way, so the plan's tiles mean the same).
/// </summary>
internal sealed class W4A8GemmDecode(CudaContext context) : IDisposable
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct Params
    {
        public ulong X, TokenScale, Weight, Scales, ChannelScale, Y, Workspace, Counters;
        public int M, N, K, KBlocksPerSplit, Splits, GroupM;
        public ulong Table, TableScale, Bias;
    }

    /// <summary>Slabs per warp the planner must use (1, 2, or 4 with 8 tokens); 0 lets it choose. For benchmarks.</summary>
    public static int ForceWn { get; set; }

    DeviceBuffer<uint>? table;

    /// <summary>Stages of the bulk kernel's shared-memory ring (W4A8_BULK_STAGES).</summary>
    public const int BulkStages = 4;

    public static bool IsBulk(GemmPlan plan) => plan.Mma && plan.KS > 1;
    /// <param name="lutPrefetch">register-ring kernel: the variant that loads the next group's decode table entries a group ahead.</param>
    public static string KernelName(GemmPlan plan, bool lutPrefetch = false) =>
        IsBulk(plan) ? $"w4a8_bulk_m{plan.MT}_c{4 * plan.WN}_k{plan.KS}" : plan.W4A8Kernel + (lutPrefetch ? "p" : "");
    public static int Threads(GemmPlan plan) => IsBulk(plan) ? 32 * (4 * plan.WN + 1) : 128;
    /// <summary>Dynamic shared memory of the bulk kernel (mirrors BulkShape in W4A8GemmMma.cu).</summary>
    public static int SharedBytes(GemmPlan plan) =>
        IsBulk(plan) ? BulkStages * 4 * plan.WN * (plan.KS * 512 + plan.KS / 2 * 16) + 16 * BulkStages : 0;

    /// <summary>
    /// The bulk-copy plan for M ≤ 32: token tile as the register-ring plan, 128 rows per CTA (8 consumer warps), chunks
    /// of 4 k-blocks, K split until the resident CTAs (driver occupancy at its shared memory) fill the SMs.
    /// </summary>
    public static GemmPlan BulkPlan(int m, int n, int k, int sms, Func<GemmPlan, int> residentPerSm, int wn = 2)
    {
        int mt = m <= 8 ? 8 : m <= 16 ? 16 : 32;
        if (mt != 8) wn = 2;
        int groups = k / 128, mTiles = (m + mt - 1) / mt, nTiles = n / (64 * wn), ctas = mTiles * nTiles;
        var plan = new GemmPlan(mt, wn, 4, 1, groups * 2, mTiles, nTiles, 8, Mma: true);
        int cap = Math.Max(1, residentPerSm(plan)) * sms;
        int splits = ctas <= cap ? Math.Clamp(cap / ctas, 1, Math.Max(1, groups / 2)) : 1;
        int gps = (groups + splits - 1) / splits;
        return plan with { Splits = (groups + gps - 1) / gps, KBlocksPerSplit = gps * 2 };
    }

    public void Launch(CudaModule module, CudaStream stream, GemmPlan pl, DeviceBuffer<byte> x8, DeviceBuffer<float> tokenScale,
        W4A8GemmOperands w, DeviceBuffer<ushort> y, int m, ulong workspace, ulong counters, DeviceBuffer<float>? bias, bool lutPrefetch = false)
    {
        if (bias is not null && bias.Length < w.N) throw new ArgumentException($"W4A8 GEMM bias has {bias.Length} values for N={w.N}.", nameof(bias));
        table ??= DeviceBuffer<uint>.From(context, W4A8DecodeTable.Build(), stream);
        var p = new Params
        {
            X = x8.Pointer, TokenScale = tokenScale.Pointer, Weight = w.WeightTiled.Pointer, Scales = w.SigmaTiled.Pointer,
            ChannelScale = w.ChannelScale.Pointer, Y = y.Pointer, Workspace = workspace, Counters = counters,
            M = m, N = w.N, K = w.K, KBlocksPerSplit = pl.KBlocksPerSplit, Splits = pl.Splits, GroupM = pl.GroupM,
            Table = table.Pointer, TableScale = table.Pointer + W4A8DecodeTable.ScaleOffsetBytes, Bias = bias?.Pointer ?? 0,
        };
        module.Function(KernelName(pl, lutPrefetch)).Launch(stream, ((uint)pl.Ctas, (uint)pl.Splits, 1), (uint)Threads(pl), p, (uint)SharedBytes(pl));
    }

    public void Dispose() => table?.Dispose();
}
