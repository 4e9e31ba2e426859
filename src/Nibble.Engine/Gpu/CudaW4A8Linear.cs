using Nibble.Backend;
using Nibble.Cuda;
using Nibble.Cuda.Backend;
using Nibble.Cuda.Kernels;
using Nibble.Models;

namespace Nibble.Engine.Gpu;

/// <summary>
/// The W4A8 linear layer on the CUDA backend: F32 activations → per-token FP8 (from F32, so the codes and s_tok equal
/// the CPU <c>Nibble.Quantization.W4A8Linear</c>'s) → W4A8 GEMM (bf16 out, c'·s_tok epilogue) → F32 (+ bias).
/// Differences from the CPU layer: FP32 summation order inside the GEMM. The bias is added before the one bf16 rounding
/// (as the CPU layer and W4A8Reference do) by the small-M kernel's epilogue; the M &gt; 32 kernels have no bias in
/// their epilogue yet, so there it is added after the bf16 rounding (at most one bf16 ulp from the contract, which
/// matters when a few large outputs dominate: see CudaQuantizedLinearTests).
/// </summary>
public sealed class CudaW4A8Linear : ILinear, IDisposable
{
    readonly CudaBackend _backend;
    readonly W4A8Gemm _gemm;
    readonly DeviceBuffer<float>? _bias;
    DeviceBuffer<byte>? _x8;
    DeviceBuffer<float>? _tokenScale;
    DeviceBuffer<ushort>? _y;

    /// <param name="weightPackedNK8">compressed-tensors weight_packed [N, K/8] int32 (uint4b8 nibbles).</param>
    /// <param name="scalesNG">weight_scale [N, K/G] bf16 bits (G = 128, or G = K channel-wise).</param>
    public CudaW4A8Linear(CudaBackend backend, ReadOnlySpan<int> weightPackedNK8, ReadOnlySpan<ushort> scalesNG, int n, int k, int groupSize, float[]? bias = null)
    {
        if (bias is not null && bias.Length != n) throw new ArgumentException($"Bias of {bias.Length} for {n} outputs.", nameof(bias));
        _backend = backend;
        Operands = W4A8GemmOperands.FromCheckpoint(backend.Kernels, backend.Context, backend.Stream, weightPackedNK8, scalesNG, n, k, groupSize);
        _gemm = new W4A8Gemm(backend.Kernels, backend.Context);
        _bias = bias is null ? null : DeviceBuffer<float>.From(backend.Context, bias, backend.Stream);
    }

    public W4A8GemmOperands Operands { get; }
    /// <summary>The GEMM plan this layer runs for <paramref name="m"/> tokens.</summary>
    public GemmPlan PlanFor(int m) => _gemm.Plan(m, OutFeatures, InFeatures);
    public int InFeatures => Operands.K;
    public int OutFeatures => Operands.N;

    public void Forward(Tensor input, Tensor output)
    {
        var x = F32(input, "input"); var o = F32(output, "output");
        int m = x.Rows, k = InFeatures, n = OutFeatures;
        if (x.RowLength != k || o.RowLength != n || o.Rows != m)
            throw new ArgumentException($"CudaW4A8Linear [{n}, {k}] got input {x.ShapeText}, output {o.ShapeText}.");
        if (m == 0) return;
        var ctx = _backend.Context;
        var x8 = DeviceBuffer<byte>.AtLeast(ref _x8, ctx, (long)m * k);
        var tokenScale = DeviceBuffer<float>.AtLeast(ref _tokenScale, ctx, m);
        var y = DeviceBuffer<ushort>.AtLeast(ref _y, ctx, (long)m * n);
        var plan = _gemm.Plan(m, n, k);
        QuantLinearIoKernel.ActivationQuantFp8F32(_backend.Kernels, _backend.Stream, x.Pointer, x8, tokenScale, m, k, plan.GemmOrderActivations);
        bool fused = _bias is not null && W4A8Gemm.AddsBias(plan);
        _gemm.Run(_backend.Stream, x8, tokenScale, Operands, y, m, plan, fused ? _bias : null);
        QuantLinearIoKernel.Bf16ToF32(_backend.Kernels, _backend.Stream, y.Pointer, fused ? 0 : _bias?.Pointer ?? 0, o.Pointer, (long)m * n, n);
        GC.KeepAlive(x); GC.KeepAlive(o);
    }

    internal static CudaTensor F32(Tensor t, string what) =>
        t is CudaTensor { DType: TensorDType.F32 } c ? c : throw new ArgumentException($"Quantized GPU linears take F32 CUDA tensors; the {what} is {t.GetType().Name} {t.DType}.");

    public void Dispose()
    {
        _gemm.Dispose(); Operands.Dispose(); _bias?.Dispose();
        _x8?.Dispose(); _tokenScale?.Dispose(); _y?.Dispose();
    }
}
