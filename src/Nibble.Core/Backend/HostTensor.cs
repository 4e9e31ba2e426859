using System.Buffers;
using System.Runtime.InteropServices;

namespace Nibble.Backend;

/// <summary>
/// A tensor in host memory: F32 activations in a managed array (owned or a row view of one), or
/// BF16/F32 weights viewed in place inside a memory-mapped checkpoint (no copy, so a model larger
/// than RAM pages in from disk instead of being loaded).
/// </summary>
public sealed unsafe class HostTensor : Tensor
{
    readonly float[]? _floats;
    readonly int _offset;
    readonly ushort[]? _halves;
    readonly int[]? _ints;
    readonly void* _pointer;

    HostTensor(TensorDType dtype, int[] shape, float[]? floats, int offset, ushort[]? halves, int[]? ints, void* pointer)
        : base(dtype, shape)
    {
        _floats = floats; _offset = offset; _halves = halves; _ints = ints; _pointer = pointer;
    }

    public static HostTensor Zeros(params int[] shape) =>
        new(TensorDType.F32, shape, new float[shape.Aggregate(1L, (a, b) => a * b)], 0, null, null, null);

    /// <summary>Wraps (does not copy) a float array; writes through the tensor are seen by the array and back.</summary>
    public static HostTensor Wrap(float[] values, params int[] shape)
    {
        var t = new HostTensor(TensorDType.F32, shape, values, 0, null, null, null);
        if (t.ElementCount != values.Length)
            throw new ArgumentException($"{values.Length} values do not fill shape {t.ShapeText}.", nameof(values));
        return t;
    }

    /// <summary>Wraps bf16 bit patterns (owned copy of a weight, e.g. after rescaling).</summary>
    public static HostTensor WrapBf16(ushort[] bits, params int[] shape)
    {
        var t = new HostTensor(TensorDType.BF16, shape, null, 0, bits, null, null);
        if (t.ElementCount != bits.Length)
            throw new ArgumentException($"{bits.Length} values do not fill shape {t.ShapeText}.", nameof(bits));
        return t;
    }

    public static HostTensor WrapInt32(int[] values, params int[] shape) =>
        new(TensorDType.I32, shape, null, 0, null, values, null);

    /// <summary>A view of memory owned elsewhere (a memory-mapped checkpoint); it must outlive the tensor.</summary>
    public static HostTensor View(TensorDType dtype, nint pointer, params int[] shape) =>
        new(dtype, shape, null, 0, null, null, (void*)pointer);

    public override Tensor SliceRows(int start, int count)
    {
        int row = RowLength;
        if (start < 0 || count < 0 || start + count > Rows)
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) outside {ShapeText}");
        var shape = (int[])Shape.Clone();
        shape[0] = count;
        if (_floats is not null) return new HostTensor(DType, shape, _floats, _offset + start * row, null, null, null);
        if (_pointer is not null)
            return new HostTensor(DType, shape, null, 0, null, null, (byte*)_pointer + (long)start * row * ElementSize);
        throw new NotSupportedException("Row views exist for F32 arrays and mapped weights only.");
    }

    int ElementSize => DType == TensorDType.BF16 ? 2 : 4;

    /// <summary>The F32 elements (activations, or F32 weights).</summary>
    public Span<float> Floats
    {
        get
        {
            if (DType != TensorDType.F32) throw new InvalidOperationException($"Tensor is {DType}, not F32.");
            if (_floats is not null) return _floats.AsSpan(_offset, checked((int)ElementCount));
            return new Span<float>(_pointer, checked((int)ElementCount));
        }
    }

    /// <summary>The BF16 bit patterns of a weight.</summary>
    public ReadOnlySpan<ushort> Bf16
    {
        get
        {
            if (DType != TensorDType.BF16) throw new InvalidOperationException($"Tensor is {DType}, not BF16.");
            return _halves is not null ? _halves : new ReadOnlySpan<ushort>(_pointer, checked((int)ElementCount));
        }
    }

    public Span<int> Ints => DType == TensorDType.I32 && _ints is not null ? _ints : throw new InvalidOperationException($"Tensor is {DType}, not I32.");

    /// <summary>Pins the storage for the duration of a kernel call. Mapped views are already fixed.</summary>
    public MemoryHandle Pin()
    {
        if (_pointer is not null) return new MemoryHandle(_pointer);
        if (_floats is not null) { var h = GCHandle.Alloc(_floats, GCHandleType.Pinned); return new MemoryHandle((float*)h.AddrOfPinnedObject() + _offset, h); }
        if (_halves is not null) { var h = GCHandle.Alloc(_halves, GCHandleType.Pinned); return new MemoryHandle((void*)h.AddrOfPinnedObject(), h); }
        var hi = GCHandle.Alloc(_ints!, GCHandleType.Pinned);
        return new MemoryHandle((void*)hi.AddrOfPinnedObject(), hi);
    }

    public override void CopyTo(Span<float> destination)
    {
        switch (DType)
        {
            case TensorDType.F32: Floats.CopyTo(destination); break;
            case TensorDType.BF16:
                var src = Bf16;
                for (int i = 0; i < src.Length; i++) destination[i] = BitConverter.Int32BitsToSingle(src[i] << 16);
                break;
            default:
                var ints = Ints;
                for (int i = 0; i < ints.Length; i++) destination[i] = ints[i];
                break;
        }
    }

    public override void CopyFrom(ReadOnlySpan<float> source) => source.CopyTo(Floats);
}
