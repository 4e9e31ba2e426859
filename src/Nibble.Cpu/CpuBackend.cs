using System.Numerics.Tensors;
using Nibble.Backend;
using Nibble.Formats;
using Tensor = Nibble.Backend.Tensor;

namespace Nibble.Cpu;

/// <summary>
/// The reference backend: float32 math over bf16 (or f32) weights viewed in the memory map.
/// Element-wise ops use TensorPrimitives; linears use <see cref="Gemm"/>; attention is
/// <see cref="AttentionKernel"/>. Tensors are <see cref="HostTensor"/>s.
/// </summary>
public sealed unsafe class CpuBackend : IBackend
{
    public static CpuBackend Instance { get; } = new();

    public string Name => "cpu";

    public Tensor Zeros(params int[] shape) => HostTensor.Zeros(shape);

    public Tensor FromHost(float[] values, params int[] shape) => HostTensor.Wrap(values, shape);

    public Tensor Weight(SafetensorsCheckpoint checkpoint, string name)
    {
        var info = checkpoint.GetInfo(name);
        var dtype = info.DType switch
        {
            SafetensorsDType.BF16 => TensorDType.BF16,
            SafetensorsDType.F32 => TensorDType.F32,
            _ => throw new NibbleException($"Tensor '{name}' is {info.DType}; the CPU backend reads BF16 or F32 weights (convert the checkpoint, e.g. F16 to BF16)."),
        };
        return HostTensor.View(dtype, checkpoint.GetPointer(name), info.Shape.Select(d => checked((int)d)).ToArray());
    }

    static HostTensor H(Tensor t) => t as HostTensor ?? throw new ArgumentException($"The CPU backend got a {t.GetType().Name}; move the tensor to the host first.");

    /// <summary>A weight as float values (converting bf16 into <paramref name="scratch"/> when needed).</summary>
    static ReadOnlySpan<float> Floats(Tensor weight, Span<float> scratch)
    {
        var h = H(weight);
        if (h.DType == TensorDType.F32) return h.Floats;
        var bits = h.Bf16;
        Numerics.BFloat16.ToFloat(bits, scratch[..bits.Length]);
        return scratch[..bits.Length];
    }

    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor output)
    {
        var t = H(table);
        var o = H(output).Floats;
        int hidden = t.RowLength;
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)t.Rows)
                throw new NibbleException($"Token id {id} is outside the vocabulary of {t.Rows}; the tokenizer does not match the model.");
            var dst = o.Slice(i * hidden, hidden);
            if (t.DType == TensorDType.BF16)
            {
                Numerics.BFloat16.ToFloat(t.Bf16.Slice(id * hidden, hidden), dst);
            }
            else t.Floats.Slice(id * hidden, hidden).CopyTo(dst);
        }
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor output)
    {
        int dim = (int)weight.ElementCount;
        Span<float> scratch = dim <= 4096 ? stackalloc float[dim] : new float[dim];
        var w = Floats(weight, scratch);
        var src = H(x).Floats;
        var dst = H(output).Floats;
        for (int r = 0; r < src.Length / dim; r++)
            NormRow(src.Slice(r * dim, dim), w, eps, dst.Slice(r * dim, dim));
    }

    public void AddRmsNorm(Tensor residual, Tensor delta, Tensor weight, float eps, Tensor output)
    {
        int dim = (int)weight.ElementCount;
        Span<float> scratch = dim <= 4096 ? stackalloc float[dim] : new float[dim];
        var w = Floats(weight, scratch);
        var r = H(residual).Floats;
        var d = H(delta).Floats;
        var o = H(output).Floats;
        // Row by row, so each residual row is normalised while it is still in L1 after the add.
        for (int row = 0; row < r.Length / dim; row++)
        {
            var rr = r.Slice(row * dim, dim);
            TensorPrimitives.Add(rr, d.Slice(row * dim, dim), rr);
            NormRow(rr, w, eps, o.Slice(row * dim, dim));
        }
    }

    // transformers: x * rsqrt(mean(x²) + eps), then weight * x, all in float32.
    static void NormRow(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps, Span<float> y)
    {
        float meanSquare = TensorPrimitives.SumOfSquares(x) / x.Length;
        float inv = 1f / MathF.Sqrt(meanSquare + eps);
        TensorPrimitives.Multiply(x, inv, y);
        TensorPrimitives.Multiply(y, w, y);
    }

    public void Add(Tensor x, Tensor delta)
    {
        var a = H(x).Floats;
        TensorPrimitives.Add(a, H(delta).Floats, a);
    }

    public void MatMul(Tensor input, Tensor weight, Tensor? bias, Tensor output)
    {
        var a = H(input); var w = H(weight); var c = H(output);
        int k = w.RowLength, n = w.Rows, m = a.Rows;
        if (a.RowLength != k || c.RowLength != n || c.Rows != m)
            throw new ArgumentException($"MatMul shapes do not agree: input {a.ShapeText}, weight {w.ShapeText}, output {c.ShapeText}.");
        using (var pa = a.Pin())
        using (var pw = w.Pin())
        using (var pc = c.Pin())
        {
            if (w.DType == TensorDType.BF16) Gemm.MatMulTransB((float*)pa.Pointer, k, (ushort*)pw.Pointer, k, (float*)pc.Pointer, n, m, n, k);
            else Gemm.MatMulTransB((float*)pa.Pointer, k, (float*)pw.Pointer, k, (float*)pc.Pointer, n, m, n, k);
        }
        if (bias is not null)
        {
            Span<float> scratch = n <= 8192 ? stackalloc float[n] : new float[n];
            var b = Floats(bias, scratch);
            var o = c.Floats;
            for (int r = 0; r < m; r++) TensorPrimitives.Add(o.Slice(r * n, n), b, o.Slice(r * n, n));
        }
    }

    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, RopeTable rope) =>
        RopeKernel.Apply(H(x).Floats, headDim, positions, rope);

    public void Attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, ReadOnlySpan<int> positions, int? slidingWindow, Tensor output)
    {
        var c = cache as CpuKvCache ?? throw new ArgumentException("The CPU backend needs a CpuKvCache.", nameof(cache));
        AttentionKernel.Run(H(q).Floats, H(k).Floats, H(v).Floats, c, layer, positions, slidingWindow, H(output).Floats, q.RowLength / c.HeadDim);
    }

    public void SiluMul(Tensor gate, Tensor up, Tensor output)
    {
        var g = H(gate).Floats; var u = H(up).Floats; var o = H(output).Floats;
        // silu(g) = g · sigmoid(g); chunked through a scratch buffer so output may alias gate.
        Span<float> sig = stackalloc float[1024];
        for (int i = 0; i < g.Length; i += sig.Length)
        {
            int n = Math.Min(sig.Length, g.Length - i);
            var s = sig[..n];
            TensorPrimitives.Sigmoid(g.Slice(i, n), s);
            TensorPrimitives.Multiply(s, g.Slice(i, n), s);
            TensorPrimitives.Multiply(s, u.Slice(i, n), o.Slice(i, n));
        }
    }

    public MoeRouting Route(Tensor routerLogits, int topK, bool renormalize)
    {
        var logits = H(routerLogits);
        return MoeRouter.Route(logits.Floats, logits.Rows, logits.RowLength, topK, renormalize);
    }

    public void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination)
    {
        var s = H(source).Floats; var d = H(destination).Floats;
        int width = source.RowLength;
        for (int r = 0; r < rows.Length; r++) s.Slice(rows[r] * width, width).CopyTo(d.Slice(r * width, width));
    }

    public void ScatterAddRows(Tensor source, ReadOnlySpan<int> rows, ReadOnlySpan<float> scales, Tensor destination)
    {
        var s = H(source).Floats; var d = H(destination).Floats;
        int width = source.RowLength;
        for (int r = 0; r < rows.Length; r++)
        {
            var dst = d.Slice(rows[r] * width, width);
            TensorPrimitives.MultiplyAdd(s.Slice(r * width, width), scales[r], dst, dst);
        }
    }

    public void MulSigmoidGate(Tensor x, Tensor gate)
    {
        var s = H(x).Floats; var g = H(gate).Floats;
        int width = x.RowLength;
        for (int r = 0; r < x.Rows; r++)
        {
            float sig = 1f / (1f + MathF.Exp(-g[r]));
            TensorPrimitives.Multiply(s.Slice(r * width, width), sig, s.Slice(r * width, width));
        }
    }

    public KvCache CreateKvCache(int layers, int kvHeads, int headDim, int capacity) => new CpuKvCache(layers, kvHeads, headDim, capacity);
}
