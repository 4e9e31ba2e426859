namespace Nibble.Cuda.Kernels;

/// <summary>
/// The W4A8 GEMM's device operands for one linear layer (N outputs, K inputs): tiled unified int4 codes
/// (N*K/2 bytes), FP8 group scales sigma in the tiled pair layout (N*K/128 bytes) and the FP32 channel scale c' [N].
/// Built on the GPU from checkpoint tensors by <see cref="W4A8WeightPrep"/>.
/// </summary>
public sealed class W4A8GemmOperands : IDisposable
{
    public int N { get; }
    public int K { get; }
    public DeviceBuffer<byte> WeightTiled { get; }
    public DeviceBuffer<byte> SigmaTiled { get; }
    public DeviceBuffer<float> ChannelScale { get; }

    /// <summary>Weight bytes the GEMM streams per call (codes + group scales + channel scales).</summary>
    public long WeightBytes => WeightTiled.Bytes + SigmaTiled.Bytes + ChannelScale.Bytes;

    public W4A8GemmOperands(CudaContext context, int n, int k)
    {
        W4A8WeightPrep.Validate(n, k);
        N = n; K = k;
        WeightTiled = new DeviceBuffer<byte>(context, (long)n * k / 2);
        SigmaTiled = new DeviceBuffer<byte>(context, (long)n * (k / 128));
        ChannelScale = new DeviceBuffer<float>(context, n);
    }

    /// <summary>
    /// Uploads checkpoint tensors (weight_packed [N, K/8] int32, weight_scale [N, K/128] bf16, or [N, 1] for a
    /// channel-wise checkpoint with <paramref name="groupSize"/> = K) and preprocesses them on the GPU.
    /// </summary>
    public static W4A8GemmOperands FromCheckpoint(KernelCache kernels, CudaContext context, CudaStream stream,
        ReadOnlySpan<int> weightPackedNK8, ReadOnlySpan<ushort> scalesNG, int n, int k, int groupSize = 128)
    {
        W4A8WeightPrep.Validate(n, k);
        if (groupSize == k && k != 128) scalesNG = W4A8WeightPrep.ExpandChannelScales(scalesNG, n, k);
        else if (groupSize != 128)
            throw new NibbleException($"W4A8 supports group size 128 or channel-wise (group size = K = {k}) but the checkpoint uses {groupSize}; requantize with group size 128.");
        using var w = DeviceBuffer<int>.From(context, weightPackedNK8, stream);
        using var s = DeviceBuffer<ushort>.From(context, scalesNG, stream);
        var ops = new W4A8GemmOperands(context, n, k);
        W4A8WeightPrep.Run(kernels, stream, w, s, ops);
        stream.Synchronize();
        return ops;
    }

    public void Dispose()
    {
        WeightTiled.Dispose();
        SigmaTiled.Dispose();
        ChannelScale.Dispose();
    }
}
