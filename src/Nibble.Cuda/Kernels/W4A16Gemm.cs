using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>W4A16 operands: tiled uint4b8 nibbles (N*K/2 bytes) and bf16 group scales in the tiled pair layout.</summary>
public sealed class W4A16GemmOperands : IDisposable
{
    public int N { get; }
    public int K { get; }
    public DeviceBuffer<byte> WeightTiled { get; }
    public DeviceBuffer<ushort> ScalesTiled { get; }
    public long WeightBytes => WeightTiled.Bytes + ScalesTiled.Bytes;

    [StructLayout(LayoutKind.Sequential)]
    struct PrepParams { public ulong WeightPacked, Scales, WeightTiled, ScalesTiled; public int N, K; }

    public W4A16GemmOperands(CudaContext context, int n, int k)
    {
        W4A8WeightPrep.Validate(n, k);
        N = n; K = k;
        WeightTiled = new DeviceBuffer<byte>(context, (long)n * k / 2);
        ScalesTiled = new DeviceBuffer<ushort>(context, (long)n * (k / 128));
    }

    public static W4A16GemmOperands FromCheckpoint(KernelCache kernels, CudaContext context, CudaStream stream,
        DeviceBuffer<int> weightPackedNK8, DeviceBuffer<ushort> scalesNG, int n, int k)
    {
        var ops = new W4A16GemmOperands(context, n, k);
        var p = new PrepParams { WeightPacked = weightPackedNK8.Pointer, Scales = scalesNG.Pointer, WeightTiled = ops.WeightTiled.Pointer, ScalesTiled = ops.ScalesTiled.Pointer, N = n, K = k };
        long lanes = (long)n * k / 32;
        kernels.Load("W4A16Gemm.cu").Function("w4a16_prep").Launch(stream, ((uint)((lanes + 255) / 256), 1, 1), 256, p);
        return ops;
    }

    public static W4A16GemmOperands FromCheckpoint(KernelCache kernels, CudaContext context, CudaStream stream,
        ReadOnlySpan<int> weightPackedNK8, ReadOnlySpan<ushort> scalesNG, int n, int k)
    {
        using var w = DeviceBuffer<int>.From(context, weightPackedNK8, stream);
        using var s = DeviceBuffer<ushort>.From(context, scalesNG, stream);
        var ops = FromCheckpoint(kernels, context, stream, w, s, n, k);
        stream.Synchronize();
        return ops;
    }

    public void Dispose() { WeightTiled.Dispose(); ScalesTiled.Dispose(); }
}

/// <summary>Launcher of the W4A16 comparator GEMM (W4A16Gemm.cu): Y = bf16(Σ_g S·Σ_k x·q), bf16 activations.</summary>
public sealed class W4A16Gemm(KernelCache kernels, CudaContext context) : IDisposable
{
    readonly SplitKScratch scratch = new(context);

    /// <summary>Slabs per warp for M ≤ 16: 0 or 1 = one (fastest in the H100 runs but at two shapes), 2 = two (the activation
    /// fragments serve both); both with K split to fill the resident slots. −1: the M &gt; 16 rule (<see cref="GemmPlan.Choose"/>).</summary>
    public int SmallMWn { get; init; }

    /// <summary>
    /// M ≤ 16: one 16-row slab per warp (or two, <see cref="SmallMWn"/>), K split until the resident slots (driver occupancy)
    /// are full, each split whole groups; larger M: <see cref="GemmPlan.Choose"/>.
    /// </summary>
    public GemmPlan Plan(int m, int n, int k)
    {
        var plan = GemmPlan.Choose(m, n, k, context.MultiprocessorCount, w4a16: true);
        if (m > 16 || n % 128 != 0 || SmallMWn < 0) return plan;
        int wn = SmallMWn == 2 ? 2 : 1;
        int groups = k / 128, mTiles = (m + plan.MT - 1) / plan.MT, nTiles = n / (64 * wn), ctas = mTiles * nTiles;
        int resident = Math.Max(1, kernels.Load("W4A16Gemm.cu").Function(KernelName(plan.MT, wn)).MaxActiveBlocksPerSm(128, 0));
        int cap = resident * context.MultiprocessorCount;
        int splits = ctas <= cap ? Math.Clamp(cap / ctas, 1, Math.Max(1, groups / 2)) : 1;
        int gps = (groups + splits - 1) / splits;
        return new GemmPlan(plan.MT, wn, 1, (groups + gps - 1) / gps, gps * 2, mTiles, nTiles, 8);
    }

    static string KernelName(int mt, int wn) => wn == 1 ? $"w4a16_gemm_m{mt}" : $"w4a16_gemm_m{mt}_w{wn}";

    public void Run(CudaStream stream, DeviceBuffer<ushort> x, W4A16GemmOperands w, DeviceBuffer<ushort> y, int m, GemmPlan? plan = null)
    {
        if (m <= 0) return;
        if (x.Length < (long)m * w.K || y.Length < (long)m * w.N)
            throw new ArgumentException($"W4A16 GEMM buffers are smaller than M={m}, N={w.N}, K={w.K}");
        var pl = plan ?? Plan(m, w.N, w.K);
        var (ws, counters) = scratch.Get(pl, m, w.N);
        var f = kernels.Load("W4A16Gemm.cu").Function(KernelName(pl.MT, pl.WN));
        var p = new W4A8Gemm.Params
        {
            X = x.Pointer, Weight = w.WeightTiled.Pointer, Scales = w.ScalesTiled.Pointer, Y = y.Pointer, Workspace = ws, Counters = counters,
            M = m, N = w.N, K = w.K, KBlocksPerSplit = pl.KBlocksPerSplit, Splits = pl.Splits, GroupM = pl.GroupM,
        };
        f.Launch(stream, ((uint)pl.Ctas, (uint)pl.Splits, 1), 128, p);
    }

    public void Dispose() => scratch.Dispose();
}
