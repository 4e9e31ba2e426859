using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>
/// Launch of the small-M W4A8 kernels (W4A8GemmMma.cu, plans with <see cref="GemmPlan.Mma"/>): their parameter struct,
/// the σ decode table (<see cref="W4A8DecodeTable"/>, uploaded once) and the optional FP32 bias, which these kernels add
/// before the one bf16 rounding as the contract says (W4A8Reference). Used through <see cref="W4A8Gemm.Run"/>.
/// Kernels <c>w4a8_mma_m{MT}_w{WN}</c> (v3) and <c>w4a8_mma_m{MT}_w{WN}u</c> (v6: the same decode, ring steps wholly
/// inside the split without bounds guards, loads at running pointer + constant) and <c>w4a8_mma_m{MT}_w{WN}v</c> (v7: v6
/// with each ring slot refilled after its k-block's MMAs, no register copies; same arithmetic).
/// </summary>
internal sealed class W4A8GemmDecode(CudaContext context) : IDisposable
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct Params
    {
        public ulong X, TokenScale, Weight, Scales, ChannelScale, Y, Workspace, Counters;
        public int M, N, K, KBlocksPerSplit, Splits, GroupM;
        public ulong Table, TableScale, Bias, X16;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct X16Params
    {
        public ulong X8, X16;
        public int N16;
    }

    /// <summary>Slabs per warp the planner must use (1, 2, or 4 with 8 tokens); 0 lets it choose. For benchmarks.</summary>
    public static int ForceWn { get; set; }

    DeviceBuffer<uint>? table;
    DeviceBuffer<ushort>? x16; // v8: f16 copy of the activations, grown to the largest M·K seen

    /// <param name="unguarded">the v6 kernel (unguarded ring steps).</param>
    /// <param name="f16Activations">the v8 kernel (v6's loop with late refills, reading an f16 copy of the activations).</param>
    public static string KernelName(GemmPlan plan, bool unguarded = false, bool f16Activations = false) =>
        plan.W4A8Kernel + (f16Activations ? "h" : unguarded ? "u" : "");

    public void Launch(CudaModule module, CudaStream stream, GemmPlan pl, DeviceBuffer<byte> x8, DeviceBuffer<float> tokenScale,
        W4A8GemmOperands w, DeviceBuffer<ushort> y, int m, ulong workspace, ulong counters, DeviceBuffer<float>? bias, bool unguarded = false,
        bool f16Activations = false)
    {
        if (bias is not null && bias.Length < w.N) throw new ArgumentException($"W4A8 GEMM bias has {bias.Length} values for N={w.N}.", nameof(bias));
        table ??= DeviceBuffer<uint>.From(context, W4A8DecodeTable.Build(), stream);
        ulong x16Pointer = 0;
        if (f16Activations)
        {
            long count = (long)m * w.K; // K is a multiple of 128, so count is of whole 16-value runs
            x16Pointer = DeviceBuffer<ushort>.AtLeast(ref x16, context, count).Pointer;
            var xp = new X16Params { X8 = x8.Pointer, X16 = x16Pointer, N16 = (int)(count / 16) };
            module.Function("w4a8_x8_to_f16").Launch(stream, ((uint)((xp.N16 + 255) / 256), 1, 1), 256u, xp);
        }
        var p = new Params
        {
            X = x8.Pointer, TokenScale = tokenScale.Pointer, Weight = w.WeightTiled.Pointer, Scales = w.SigmaTiled.Pointer,
            ChannelScale = w.ChannelScale.Pointer, Y = y.Pointer, Workspace = workspace, Counters = counters,
            M = m, N = w.N, K = w.K, KBlocksPerSplit = pl.KBlocksPerSplit, Splits = pl.Splits, GroupM = pl.GroupM,
            Table = table.Pointer, TableScale = table.Pointer + W4A8DecodeTable.ScaleOffsetBytes, Bias = bias?.Pointer ?? 0,
            X16 = x16Pointer,
        };
        module.Function(KernelName(pl, unguarded, f16Activations)).Launch(stream, ((uint)pl.Ctas, (uint)pl.Splits, 1), 128u, p);
    }

    public void Dispose()
    {
        table?.Dispose();
        x16?.Dispose();
    }
}
