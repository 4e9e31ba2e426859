using System.Collections.Concurrent;
using Nibble.Cuda.Native;

namespace Nibble.Cuda.Backend;

/// <summary>
/// A stream-ordered caching allocator for one backend (the idea of PyTorch's CUDA caching allocator): blocks are
/// keyed by rounded size and reused as soon as they are returned, which is safe because every kernel and copy of the
/// backend runs on its one stream, so a block's next user is ordered after its last one. The model code allocates
/// activations per op and never disposes them, so a block comes back either on <see cref="DeviceBlock.Dispose"/>
/// (deterministic) or from its finalizer (queued, reused at the next rent); transient blocks report their size to
/// the GC as memory pressure so garbage is collected in proportion to the device memory it holds. When cuMemAlloc
/// runs out, the pool collects garbage and frees its cached blocks before trying again. Disposing the pool frees
/// every block it ever allocated.
/// </summary>
internal sealed class DeviceMemoryPool : IDisposable
{
    readonly CudaContext _context;
    readonly CudaStream _stream;
    readonly object _gate = new();
    readonly Dictionary<long, Stack<ulong>> _free = new();
    readonly Dictionary<ulong, long> _allocated = new();
    readonly ConcurrentQueue<(ulong Pointer, long Bytes)> _finalized = new();
    bool _disposed;

    public DeviceMemoryPool(CudaContext context, CudaStream stream) => (_context, _stream) = (context, stream);

    /// <summary>Bytes held from the driver (live plus cached).</summary>
    public long AllocatedBytes { get; private set; }

    /// <summary>Bytes in returned blocks waiting for reuse.</summary>
    public long CachedBytes { get; private set; }

    /// <summary>
    /// Fresh transient bytes taken from the driver after which a rent that misses the pool first runs a garbage
    /// collection and its finalizers (so unreferenced activations come back), bounding the pool's growth.
    /// </summary>
    public long CollectAfterBytes { get; set; } = 256L << 20;

    long _freshSinceCollect;

    // CUDA-graph capture: every block handed out while a capture runs is baked into the graph, so it is "reserved":
    // when it comes back it is parked instead of reused, until the graph is released.
    HashSet<ulong>? _capturing;
    readonly HashSet<ulong> _reserved = new();
    readonly Dictionary<ulong, long> _parked = new();

    /// <summary>Starts recording the blocks rented for a graph capture.</summary>
    public void BeginCapture()
    {
        lock (_gate) _capturing = new HashSet<ulong>();
    }

    /// <summary>Ends the recording: the returned blocks stay reserved for the graph until <see cref="ReleaseCapture"/>.</summary>
    public HashSet<ulong> EndCapture()
    {
        lock (_gate)
        {
            var set = _capturing ?? new HashSet<ulong>();
            _capturing = null;
            return set;
        }
    }

    /// <summary>The graph is gone: its blocks return to the pool (those already given back at once, the rest when disposed).</summary>
    public void ReleaseCapture(HashSet<ulong> blocks)
    {
        lock (_gate)
        {
            foreach (var p in blocks)
            {
                _reserved.Remove(p);
                if (_parked.Remove(p, out long size) && !_disposed) Push(p, size);
            }
        }
    }

    void Record(ulong pointer)
    {
        if (_capturing is null) return;
        _capturing.Add(pointer);
        _reserved.Add(pointer);
    }

    static long RoundUp(long bytes)
    {
        bytes = Math.Max(bytes, 1);
        long granule = bytes <= 1 << 20 ? 512 : 1 << 20;
        return (bytes + granule - 1) / granule * granule;
    }

    /// <summary>A block of at least <paramref name="bytes"/>; <paramref name="transient"/> activations add GC memory pressure.</summary>
    public DeviceBlock Rent(long bytes, bool transient)
    {
        long size = RoundUp(bytes);
        if (TryReuse(size, transient) is { } reused) return reused;
        if (transient && _freshSinceCollect + size > CollectAfterBytes)
        {
            _freshSinceCollect = 0;
            GC.Collect();
            GC.WaitForPendingFinalizers();
            if (TryReuse(size, transient) is { } collected) return collected;
        }
        if (transient) _freshSinceCollect += size;
        var fresh = Allocate(size);
        lock (_gate) Record(fresh);
        return new DeviceBlock(this, fresh, size, transient);
    }

    DeviceBlock? TryReuse(long size, bool transient)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            DrainFinalized();
            if (!_free.TryGetValue(size, out var stack) || stack.Count == 0) return null;
            CachedBytes -= size;
            var p = stack.Pop();
            Record(p);
            return new DeviceBlock(this, p, size, transient);
        }
    }

    ulong Allocate(long size)
    {
        _context.Bind();
        int r = Driver.cuMemAlloc(out var p, (nuint)size);
        if (r == 2) // CUDA_ERROR_OUT_OF_MEMORY: give back garbage and cached blocks, then try once more
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Trim();
            _context.Bind();
            r = Driver.cuMemAlloc(out p, (nuint)size);
            if (r == 2)
                throw new NibbleException($"The GPU ran out of memory allocating {size / (1024.0 * 1024):F1} MiB ({AllocatedBytes / (1024.0 * 1024 * 1024):F2} GiB already held by this backend); use a shorter context, a smaller model or the CPU backend.");
        }
        CudaException.Check(r, $"cuMemAlloc({size} bytes)");
        lock (_gate)
        {
            _allocated[p] = size;
            AllocatedBytes += size;
        }
        return p;
    }

    internal void Return(ulong pointer, long bytes, bool fromFinalizer)
    {
        if (fromFinalizer) { _finalized.Enqueue((pointer, bytes)); return; }
        lock (_gate)
        {
            if (_disposed) return;
            Push(pointer, bytes);
        }
    }

    void Push(ulong pointer, long bytes)
    {
        if (_reserved.Contains(pointer)) { _parked[pointer] = bytes; return; }
        if (!_free.TryGetValue(bytes, out var stack)) _free[bytes] = stack = new Stack<ulong>();
        stack.Push(pointer);
        CachedBytes += bytes;
    }

    void DrainFinalized()
    {
        while (_finalized.TryDequeue(out var b)) Push(b.Pointer, b.Bytes);
    }

    /// <summary>Frees every cached (returned) block back to the driver, after the stream has finished with them.</summary>
    public void Trim()
    {
        lock (_gate)
        {
            if (_disposed) return;
            DrainFinalized();
            _stream.Synchronize();
            foreach (var (size, stack) in _free)
                while (stack.Count > 0)
                {
                    var p = stack.Pop();
                    Driver.cuMemFree(p);
                    _allocated.Remove(p);
                    AllocatedBytes -= size;
                }
            CachedBytes = 0;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            try
            {
                _stream.Synchronize();
                foreach (var p in _allocated.Keys) Driver.cuMemFree(p);
            }
            catch (ObjectDisposedException) { } // the context went first: the driver has released everything
            _allocated.Clear();
            _free.Clear();
            AllocatedBytes = CachedBytes = 0;
        }
    }
}

/// <summary>One rented device block; returns to its pool on Dispose or, failing that, from the finalizer.</summary>
internal sealed class DeviceBlock : IDisposable
{
    readonly DeviceMemoryPool _pool;
    readonly bool _pressure;
    int _returned;

    internal DeviceBlock(DeviceMemoryPool pool, ulong pointer, long bytes, bool pressure)
    {
        (_pool, Pointer, Bytes, _pressure) = (pool, pointer, bytes, pressure);
        if (pressure) GC.AddMemoryPressure(bytes);
    }

    public ulong Pointer { get; }
    public long Bytes { get; }

    ~DeviceBlock() => Release(fromFinalizer: true);

    public void Dispose()
    {
        Release(fromFinalizer: false);
        GC.SuppressFinalize(this);
    }

    void Release(bool fromFinalizer)
    {
        if (Interlocked.Exchange(ref _returned, 1) != 0) return;
        if (_pressure) GC.RemoveMemoryPressure(Bytes);
        _pool.Return(Pointer, Bytes, fromFinalizer);
    }
}
