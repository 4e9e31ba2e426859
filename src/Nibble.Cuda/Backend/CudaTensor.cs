using Nibble.Backend;
using Nibble.Cuda.Native;

namespace Nibble.Cuda.Backend;

/// <summary>
/// A tensor in device memory of a <see cref="CudaBackend"/>: F32 activations, BF16/F32 weights uploaded once, or I32.
/// Row views share the parent's block (and keep it alive); disposing the owner returns its block to the backend's pool.
/// Host copies run on the backend's stream and wait for it, so they see every op queued before them.
/// </summary>
public sealed unsafe class CudaTensor : Tensor
{
    readonly DeviceBlock _block;
    readonly long _byteOffset;
    readonly CudaTensor? _parent;

    internal CudaTensor(CudaBackend backend, TensorDType dtype, int[] shape, DeviceBlock block, long byteOffset = 0, CudaTensor? parent = null)
        : base(dtype, shape)
    {
        (Backend, _block, _byteOffset, _parent) = (backend, block, byteOffset, parent);
    }

    public CudaBackend Backend { get; }

    /// <summary>Device address of the first element.</summary>
    public ulong Pointer => _block.Pointer + (ulong)_byteOffset;

    public int ElementSize => DType == TensorDType.BF16 ? 2 : 4;

    public long Bytes => ElementCount * ElementSize;

    public override Tensor SliceRows(int start, int count)
    {
        if (start < 0 || count < 0 || start + count > Rows)
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) outside {ShapeText}");
        var shape = (int[])Shape.Clone();
        shape[0] = count;
        return new CudaTensor(Backend, DType, shape, _block, _byteOffset + (long)start * RowLength * ElementSize, _parent ?? this);
    }

    public override void CopyTo(Span<float> destination)
    {
        if (destination.Length < ElementCount) throw new ArgumentException($"Destination holds {destination.Length} values, the tensor {ElementCount}.", nameof(destination));
        int n = checked((int)ElementCount);
        switch (DType)
        {
            case TensorDType.F32:
                fixed (float* d = destination) Download(d, Bytes);
                break;
            case TensorDType.BF16:
                var bits = new ushort[n];
                fixed (ushort* d = bits) Download(d, Bytes);
                for (int i = 0; i < n; i++) destination[i] = BitConverter.Int32BitsToSingle(bits[i] << 16);
                break;
            default:
                var ints = new int[n];
                fixed (int* d = ints) Download(d, Bytes);
                for (int i = 0; i < n; i++) destination[i] = ints[i];
                break;
        }
        GC.KeepAlive(this);
    }

    void Download(void* host, long bytes)
    {
        if (Backend.IsCapturing)
            throw new NibbleException("A device-to-host copy cannot be part of a CUDA graph capture; run this model without CUDA graphs.");
        Backend.Context.Bind();
        var s = Backend.Stream.Handle;
        CudaException.Check(Driver.cuMemcpyDtoHAsync(host, Pointer, (nuint)bytes, s), "cuMemcpyDtoHAsync");
        CudaException.Check(Driver.cuStreamSynchronize(s), "cuStreamSynchronize after a device-to-host copy");
    }

    public override void CopyFrom(ReadOnlySpan<float> source)
    {
        if (DType != TensorDType.F32) throw new InvalidOperationException($"Tensor is {DType}, not F32.");
        if (source.Length != ElementCount) throw new ArgumentException($"{source.Length} values for a tensor of {ElementCount}.", nameof(source));
        fixed (float* s = source) Backend.Upload(Pointer, s, Bytes);
        GC.KeepAlive(this);
    }

    public override void Dispose()
    {
        if (_parent is null) _block.Dispose();
    }
}
