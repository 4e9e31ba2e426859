using Nibble.Backend;

namespace Nibble.Cpu;

/// <summary>Host KV cache: per layer, keys and values laid out [kvHead][position][headDim] so one head's keys are contiguous.</summary>
public sealed class CpuKvCache : KvCache
{
    readonly float[][] _keys, _values;

    public CpuKvCache(int layers, int kvHeads, int headDim, int capacity) : base(layers, kvHeads, headDim, capacity)
    {
        long perLayer = (long)kvHeads * capacity * headDim;
        if (perLayer > Array.MaxLength)
            throw new NibbleException($"A KV cache of {capacity} tokens needs {perLayer:N0} floats per layer, more than one array holds; use a shorter context.");
        // Refuse before allocating rather than let the machine swap or the process be killed.
        long bytes = 2 * perLayer * layers * sizeof(float);
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (bytes > available / 2)
            throw new NibbleException($"A KV cache of {capacity} tokens needs {bytes / 1e9:F1} GB, more than half of the {available / 1e9:F1} GB available; use a shorter context.");
        _keys = new float[layers][];
        _values = new float[layers][];
        for (int l = 0; l < layers; l++) { _keys[l] = new float[perLayer]; _values[l] = new float[perLayer]; }
    }

    public float[] Keys(int layer) => _keys[layer];
    public float[] Values(int layer) => _values[layer];

    public override void CopyPrefixFrom(KvCache source, int length)
    {
        if (source is not CpuKvCache src || src.KvHeads != KvHeads || src.HeadDim != HeadDim || src.Layers != Layers)
            throw new ArgumentException("KV caches differ in layout.", nameof(source));
        if (length > src.Length || length > Capacity) throw new ArgumentOutOfRangeException(nameof(length));
        for (int l = 0; l < Layers; l++)
            for (int h = 0; h < KvHeads; h++)
            {
                Array.Copy(src._keys[l], (long)h * src.Capacity * HeadDim, _keys[l], (long)h * Capacity * HeadDim, (long)length * HeadDim);
                Array.Copy(src._values[l], (long)h * src.Capacity * HeadDim, _values[l], (long)h * Capacity * HeadDim, (long)length * HeadDim);
            }
        Length = length;
    }
}
