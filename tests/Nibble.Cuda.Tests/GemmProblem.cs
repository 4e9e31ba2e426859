using Nibble.Cuda.Kernels;

namespace Nibble.Cuda.Tests;

/// <summary>
/// A random GEMM problem for the GPU kernel tests: int4 checkpoint codes (<see cref="Reference.RandomPacked"/>, the
/// first <c>minus8Rows</c> rows all q = -8), bf16 group scales (adversarial or not) and bf16 activations, drawn from
/// <c>rng</c> in that order; plus a bf16 output on the device that <see cref="RunPoisoned"/> fills with NaN before each
/// run, so an output the kernel leaves unwritten fails the error check. Device buffers are created on first use.
/// </summary>
abstract class GemmProblem : IDisposable
{
    DeviceBuffer<ushort>? y, x;

    protected GemmProblem(Random rng, int m, int n, int k, int minus8Rows, bool adversarialScales)
    {
        (M, N, K) = (m, n, k);
        Packed = Reference.RandomPacked(rng, n, k, minus8Rows);
        Scales = Reference.RandomScales(rng, n, k, adversarialScales);
        X = Reference.RandomActivations(rng, m, k);
    }

    public int M { get; }
    public int N { get; }
    public int K { get; }
    public int[] Packed { get; }
    public ushort[] Scales { get; }
    /// <summary>bf16 activations [M, K].</summary>
    public ushort[] X { get; }

    protected static CudaContext Context => Gpu.Context;
    protected static CudaStream Stream => Gpu.Stream;

    /// <summary>The activations on the device.</summary>
    public DeviceBuffer<ushort> DeviceX => x ??= DeviceBuffer<ushort>.From(Context, X, Stream);

    /// <summary>The bf16 output [M, N] on the device.</summary>
    public DeviceBuffer<ushort> Y => y ??= new DeviceBuffer<ushort>(Context, (long)M * N);

    /// <summary>Fills <see cref="Y"/> with 0xFF bytes (bf16 NaN everywhere), runs <paramref name="run"/> on it and returns it.</summary>
    public ushort[] RunPoisoned(Action<DeviceBuffer<ushort>> run)
    {
        Y.FillBytes(0xFF, Stream);
        run(Y);
        return Y.ToArray(Stream);
    }

    public virtual void Dispose()
    {
        y?.Dispose();
        x?.Dispose();
    }
}

/// <summary>
/// A W4A8 problem: besides the checkpoint data, the FP8 activation codes and token scales of the CPU quantizer
/// (<see cref="ActivationQuantFp8.Reference"/>), the logical sigma and c' of the CPU weight preprocessing, and on the
/// device the prepared weights and x8 in both orders.
/// </summary>
sealed class W4A8Problem : GemmProblem
{
    W4A8GemmOperands? operands;
    DeviceBuffer<byte>? x8GemmOrder, x8Rows;
    DeviceBuffer<float>? tokenScale;

    public W4A8Problem(Random rng, int m, int n, int k, int minus8Rows, bool adversarialScales)
        : base(rng, m, n, k, minus8Rows, adversarialScales)
    {
        X8 = new byte[(long)m * k];
        TokenScale = new float[m];
        ActivationQuantFp8.Reference(X, m, k, X8, TokenScale);
        (Sigma, ChannelScale, _, _) = Reference.Prep(Packed, Scales, n, k);
    }

    /// <summary>e4m3 activation codes [M, K], row order.</summary>
    public byte[] X8 { get; }
    public float[] TokenScale { get; }
    /// <summary>Logical FP8 group scales [N, K/128].</summary>
    public byte[] Sigma { get; }
    /// <summary>c' per output channel [N].</summary>
    public float[] ChannelScale { get; }

    /// <summary>The exact-product reference <see cref="Reference.W4A8"/> with c' (or <paramref name="channelScale"/> instead).</summary>
    public double[] Exact(float[]? channelScale = null) =>
        Reference.W4A8(X8, TokenScale, Packed, Sigma, channelScale ?? ChannelScale, M, N, K);

    public W4A8GemmOperands Operands => operands ??= W4A8GemmOperands.FromCheckpoint(Gpu.Kernels, Context, Stream, Packed, Scales, N, K);
    public DeviceBuffer<byte> X8GemmOrder => x8GemmOrder ??= DeviceBuffer<byte>.From(Context, ActivationQuantFp8.ToGemmOrder(X8, M, K), Stream);
    public DeviceBuffer<byte> X8Rows => x8Rows ??= DeviceBuffer<byte>.From(Context, X8, Stream);
    public DeviceBuffer<float> DeviceTokenScale => tokenScale ??= DeviceBuffer<float>.From(Context, TokenScale, Stream);

    /// <summary>
    /// Runs <paramref name="gemm"/> on poisoned <see cref="GemmProblem.Y"/> with x8 in the order the plan reads
    /// (<paramref name="plan"/>, or the GEMM's own plan when null, which is then left to <see cref="W4A8Gemm.Run"/>).
    /// </summary>
    public ushort[] RunPoisoned(W4A8Gemm gemm, GemmPlan? plan = null, DeviceBuffer<float>? bias = null)
    {
        var x8 = (plan ?? gemm.Plan(M, N, K)).GemmOrderActivations ? X8GemmOrder : X8Rows;
        return RunPoisoned(y => gemm.Run(Stream, x8, DeviceTokenScale, Operands, y, M, plan, bias));
    }

    public override void Dispose()
    {
        operands?.Dispose();
        x8GemmOrder?.Dispose();
        x8Rows?.Dispose();
        tokenScale?.Dispose();
        base.Dispose();
    }
}

/// <summary>A W4A16 problem: the exact-product reference from bf16 activations and scales, and the prepared weights on the device.</summary>
sealed class W4A16Problem(Random rng, int m, int n, int k, int minus8Rows, bool adversarialScales)
    : GemmProblem(rng, m, n, k, minus8Rows, adversarialScales)
{
    W4A16GemmOperands? operands;

    /// <summary>The exact-product reference <see cref="Reference.W4A16"/>.</summary>
    public double[] Exact() => Reference.W4A16(X, Packed, Scales, M, N, K);

    public W4A16GemmOperands Operands => operands ??= W4A16GemmOperands.FromCheckpoint(Gpu.Kernels, Context, Stream, Packed, Scales, N, K);

    /// <summary>Runs <paramref name="gemm"/> on poisoned <see cref="GemmProblem.Y"/> (<paramref name="plan"/> null: the GEMM's own plan).</summary>
    public ushort[] RunPoisoned(W4A16Gemm gemm, GemmPlan? plan = null) =>
        RunPoisoned(y => gemm.Run(Stream, DeviceX, Operands, y, M, plan));

    public override void Dispose()
    {
        operands?.Dispose();
        base.Dispose();
    }
}
