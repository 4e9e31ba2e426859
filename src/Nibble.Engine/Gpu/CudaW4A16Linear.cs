using Nibble.Backend;
using Nibble.Cuda;
using Nibble.Cuda.Backend;
using Nibble.Cuda.Kernels;
using Nibble.Models;

namespace Nibble.Engine.Gpu;

/// <summary>
/// The W4A16 linear layer on the CUDA backend: F32 activations → bf16 (round to nearest even) → W4A16 GEMM
/// (bf16 out) → F32 (+ bias). Unlike the CPU <c>Nibble.Quantization.W4A16Linear</c> (F32 activations, F32 output),
/// activations and outputs are rounded to bf16 here, as on every W4A16 GPU kernel (Marlin, Machete).
/// </summary>
public sealed class CudaW4A16Linear : ILinear, IDisposable
{
    readonly CudaBackend _backend;
    readonly W4A16Gemm _gemm;
    readonly DeviceBuffer<float>? _bias;
    DeviceBuffer<ushort>? _xBf16;
    DeviceBuffer<ushort>? _y;

    public CudaW4A16Linear(CudaBackend backend, ReadOnlySpan<int> weightPackedNK8, ReadOnlySpan<ushort> scalesNG, int n, int k, int groupSize, float[]? bias = null)
    {
        if (bias is not null && bias.Length != n) throw new ArgumentException($"Bias of {bias.Length} for {n} outputs.", nameof(bias));
        if (groupSize != 128)
            throw new NibbleException($"The GPU W4A16 GEMM supports group size 128 but the checkpoint uses {groupSize}; requantize with group size 128 or use --device cpu.");
        _backend = backend;
        Operands = W4A16GemmOperands.FromCheckpoint(backend.Kernels, backend.Context, backend.Stream, weightPackedNK8, scalesNG, n, k);
        _gemm = new W4A16Gemm(backend.Kernels, backend.Context);
        _bias = bias is null ? null : DeviceBuffer<float>.From(backend.Context, bias, backend.Stream);
    }

    public W4A16GemmOperands Operands { get; }
    public int InFeatures => Operands.K;
    public int OutFeatures => Operands.N;

    public void Forward(Tensor input, Tensor output)
    {
        var x = CudaW4A8Linear.F32(input, "input"); var o = CudaW4A8Linear.F32(output, "output");
        int m = x.Rows, k = InFeatures, n = OutFeatures;
        if (x.RowLength != k || o.RowLength != n || o.Rows != m)
            throw new ArgumentException($"CudaW4A16Linear [{n}, {k}] got input {x.ShapeText}, output {o.ShapeText}.");
        if (m == 0) return;
        var ctx = _backend.Context;
        var xBf16 = DeviceBuffer<ushort>.AtLeast(ref _xBf16, ctx, (long)m * k);
        var y = DeviceBuffer<ushort>.AtLeast(ref _y, ctx, (long)m * n);
        DenseMatMulKernel.Split(_backend.Kernels, _backend.Stream, x.Pointer, xBf16.Pointer, (long)m * k, split: false);
        _gemm.Run(_backend.Stream, xBf16, Operands, y, m);
        QuantLinearIoKernel.Bf16ToF32(_backend.Kernels, _backend.Stream, y.Pointer, _bias?.Pointer ?? 0, o.Pointer, (long)m * n, n);
        GC.KeepAlive(x); GC.KeepAlive(o);
    }

    public void Dispose()
    {
        _gemm.Dispose(); Operands.Dispose(); _bias?.Dispose();
        _xBf16?.Dispose(); _y?.Dispose();
    }
}
