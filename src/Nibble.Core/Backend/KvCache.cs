namespace Nibble.Backend;

/// <summary>
/// Keys and values of one sequence for every layer, at positions [0, <see cref="Length"/>).
/// The model advances <see cref="Length"/> after all layers have appended a step's tokens.
/// </summary>
public abstract class KvCache : IDisposable
{
    protected KvCache(int layers, int kvHeads, int headDim, int capacity) =>
        (Layers, KvHeads, HeadDim, Capacity) = (layers, kvHeads, headDim, capacity);

    public int Layers { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }
    public int Capacity { get; }

    /// <summary>Tokens whose keys and values every layer holds.</summary>
    public int Length { get; set; }

    /// <summary>Forgets everything after the first <paramref name="length"/> tokens (e.g. to reuse a shared prompt prefix).</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Length);
        Length = length;
    }

    /// <summary>Copies the first <paramref name="length"/> positions of every layer from <paramref name="source"/>.</summary>
    public abstract void CopyPrefixFrom(KvCache source, int length);

    public virtual void Dispose() { }
}
