namespace Nibble.Cuda.Kernels;

/// <summary>
/// A W4A8 linear layer on the GPU: bf16 activations in, bf16 out. Per call: dynamic per-token FP8 quantization,
/// then the W4A8 GEMM with the per-token × per-channel epilogue. Scratch for x8/s_tok grows with M.
/// </summary>
public sealed class W4A8Linear : IDisposable
{
    readonly KernelCache kernels;
    readonly CudaContext context;
    readonly W4A8Gemm gemm;
    DeviceBuffer<byte>? x8;
    DeviceBuffer<float>? tokenScale;

    public W4A8GemmOperands Operands { get; }

    public W4A8Linear(KernelCache kernels, CudaContext context, W4A8GemmOperands operands)
    {
        this.kernels = kernels;
        this.context = context;
        Operands = operands;
        gemm = new W4A8Gemm(kernels, context);
    }

    public void Run(CudaStream stream, DeviceBuffer<ushort> xBf16, DeviceBuffer<ushort> y, int m)
    {
        var x8 = DeviceBuffer<byte>.AtLeast(ref this.x8, context, (long)m * Operands.K);
        var tokenScale = DeviceBuffer<float>.AtLeast(ref this.tokenScale, context, m);
        var plan = gemm.Plan(m, Operands.N, Operands.K);
        ActivationQuantFp8.Run(kernels, stream, xBf16, x8, tokenScale, m, Operands.K, gemmOrder: plan.GemmOrderActivations);
        gemm.Run(stream, x8, tokenScale, Operands, y, m, plan);
    }

    public void Dispose() { gemm.Dispose(); x8?.Dispose(); tokenScale?.Dispose(); }
}
