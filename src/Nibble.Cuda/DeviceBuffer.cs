using System.Runtime.InteropServices;
using Nibble.Cuda.Native;

namespace Nibble.Cuda;

/// <summary>A typed device allocation (cuMemAlloc) of <see cref="Length"/> elements; freed on Dispose.</summary>
public sealed class DeviceBuffer<T> : IDisposable where T : unmanaged
{
    readonly CudaContext context;
    public ulong Pointer { get; private set; }
    public long Length { get; }
    public long Bytes => Length * Marshal.SizeOf<T>();

    public DeviceBuffer(CudaContext context, long length)
    {
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length));
        this.context = context;
        Length = length;
        context.Bind();
        var bytes = Math.Max(1, length * Marshal.SizeOf<T>());
        int r = Driver.cuMemAlloc(out var p, (nuint)bytes);
        if (r == 2) // CUDA_ERROR_OUT_OF_MEMORY
            throw new NibbleException($"The GPU ran out of memory allocating {bytes / (1024.0 * 1024):F1} MiB; free other GPU work or use a smaller batch.");
        CudaException.Check(r, $"cuMemAlloc({bytes} bytes)");
        Pointer = p;
    }

    /// <summary>Scratch that grows on demand: returns <paramref name="buffer"/>, first replaced by a new allocation if it holds fewer than <paramref name="length"/> elements.</summary>
    public static DeviceBuffer<T> AtLeast(ref DeviceBuffer<T>? buffer, CudaContext context, long length)
    {
        if (buffer is null || buffer.Length < length) { buffer?.Dispose(); buffer = new DeviceBuffer<T>(context, length); }
        return buffer;
    }

    public static DeviceBuffer<T> From(CudaContext context, ReadOnlySpan<T> host, CudaStream? stream = null)
    {
        var b = new DeviceBuffer<T>(context, host.Length);
        b.CopyFrom(host, stream);
        return b;
    }

    /// <summary>Host → device, synchronous with respect to the host (the stream is synchronized before returning).</summary>
    public unsafe void CopyFrom(ReadOnlySpan<T> host, CudaStream? stream = null, long offset = 0)
    {
        if (offset + host.Length > Length) throw new ArgumentException("copy runs past the end of the device buffer");
        context.Bind();
        var s = stream?.Handle ?? IntPtr.Zero;
        fixed (T* p = host)
            CudaException.Check(Driver.cuMemcpyHtoDAsync(Pointer + (ulong)(offset * sizeof(T)), p, (nuint)(host.Length * sizeof(T)), s), "cuMemcpyHtoDAsync");
        CudaException.Check(Driver.cuStreamSynchronize(s), "cuStreamSynchronize after cuMemcpyHtoDAsync");
    }

    /// <summary>Device → host; waits for the stream, so earlier kernels on it are finished and their errors surface here.</summary>
    public unsafe void CopyTo(Span<T> host, CudaStream? stream = null, long offset = 0)
    {
        if (offset + host.Length > Length) throw new ArgumentException("copy runs past the end of the device buffer");
        context.Bind();
        var s = stream?.Handle ?? IntPtr.Zero;
        fixed (T* p = host)
            CudaException.Check(Driver.cuMemcpyDtoHAsync(p, Pointer + (ulong)(offset * sizeof(T)), (nuint)(host.Length * sizeof(T)), s), "cuMemcpyDtoHAsync");
        CudaException.Check(Driver.cuStreamSynchronize(s), "cuStreamSynchronize after cuMemcpyDtoHAsync");
    }

    public T[] ToArray(CudaStream? stream = null)
    {
        var a = new T[Length];
        CopyTo(a, stream);
        return a;
    }

    /// <summary>Fills every byte with <paramref name="value"/> (e.g. 0xFF to poison outputs before a test).</summary>
    public void FillBytes(byte value, CudaStream? stream = null)
    {
        context.Bind();
        CudaException.Check(Driver.cuMemsetD8Async(Pointer, value, (nuint)Bytes, stream?.Handle ?? IntPtr.Zero), "cuMemsetD8Async");
    }

    public void CopyFromDevice(DeviceBuffer<T> source, CudaStream? stream = null)
    {
        if (source.Length > Length) throw new ArgumentException("source is longer than destination");
        context.Bind();
        CudaException.Check(Driver.cuMemcpyDtoDAsync(Pointer, source.Pointer, (nuint)source.Bytes, stream?.Handle ?? IntPtr.Zero), "cuMemcpyDtoDAsync");
    }

    public void Dispose()
    {
        if (Pointer == 0) return;
        try { context.Bind(); Driver.cuMemFree(Pointer); } catch (ObjectDisposedException) { }
        Pointer = 0;
    }
}
