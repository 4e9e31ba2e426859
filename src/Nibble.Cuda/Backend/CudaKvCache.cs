using Nibble.Backend;
using Nibble.Cuda.Native;

namespace Nibble.Cuda.Backend;

/// <summary>Device KV cache in float32: per layer, keys and values laid out [kvHead][position][headDim] like CpuKvCache.</summary>
public sealed class CudaKvCache : KvCache
{
    readonly CudaBackend _backend;
    readonly DeviceBlock[] _keys, _values;

    internal CudaKvCache(CudaBackend backend, int layers, int kvHeads, int headDim, int capacity) : base(layers, kvHeads, headDim, capacity)
    {
        _backend = backend;
        long bytes = LayerBytes;
        _keys = new DeviceBlock[layers];
        _values = new DeviceBlock[layers];
        for (int l = 0; l < layers; l++)
        {
            _keys[l] = backend.Rent(bytes, transient: false);
            _values[l] = backend.Rent(bytes, transient: false);
            backend.Memset(_keys[l].Pointer, bytes);
            backend.Memset(_values[l].Pointer, bytes);
        }
    }

    long LayerBytes => (long)KvHeads * Capacity * HeadDim * sizeof(float);

    /// <summary>Bytes of device memory the cache holds (keys and values of every layer).</summary>
    public long DeviceBytes => 2 * Layers * LayerBytes;

    public ulong Keys(int layer) => _keys[layer].Pointer;
    public ulong Values(int layer) => _values[layer].Pointer;

    public override void CopyPrefixFrom(KvCache source, int length)
    {
        if (source is not CudaKvCache src || src.KvHeads != KvHeads || src.HeadDim != HeadDim || src.Layers != Layers)
            throw new ArgumentException("KV caches differ in layout.", nameof(source));
        if (length > src.Length || length > Capacity) throw new ArgumentOutOfRangeException(nameof(length));
        _backend.Context.Bind();
        var stream = _backend.Stream.Handle;
        ulong rowBytes = (ulong)HeadDim * sizeof(float);
        for (int l = 0; l < Layers; l++)
            for (int h = 0; h < KvHeads; h++)
            {
                ulong from = (ulong)h * (ulong)src.Capacity * rowBytes, to = (ulong)h * (ulong)Capacity * rowBytes;
                nuint bytes = (nuint)((ulong)length * rowBytes);
                if (bytes == 0) continue;
                CudaException.Check(Driver.cuMemcpyDtoDAsync(_keys[l].Pointer + to, src._keys[l].Pointer + from, bytes, stream), "cuMemcpyDtoDAsync (KV prefix)");
                CudaException.Check(Driver.cuMemcpyDtoDAsync(_values[l].Pointer + to, src._values[l].Pointer + from, bytes, stream), "cuMemcpyDtoDAsync (KV prefix)");
            }
        Length = length;
        GC.KeepAlive(src);
    }

    public override void Dispose()
    {
        foreach (var b in _keys) b.Dispose();
        foreach (var b in _values) b.Dispose();
    }
}
