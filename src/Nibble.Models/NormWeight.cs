using Nibble.Backend;
using Nibble.Formats;

namespace Nibble.Models;

/// <summary>
/// An RMSNorm weight as a mutable float32 array (AWQ folds scales into it). On the CPU backend the
/// tensor aliases <see cref="Values"/>; after changing values on a device backend call <see cref="Refresh"/>.
/// </summary>
public sealed class NormWeight
{
    readonly IBackend _backend;

    public NormWeight(IBackend backend, float[] values, float eps)
    {
        _backend = backend;
        Values = values;
        Eps = eps;
        Tensor = backend.FromHost(values, values.Length);
    }

    public static NormWeight Load(IBackend backend, SafetensorsCheckpoint checkpoint, string name, int size, float eps)
    {
        if (!checkpoint.Contains(name))
            throw new NibbleException($"Tensor '{name}' is missing from '{checkpoint.Directory}'; the weights do not match config.json.");
        var t = backend.Weight(checkpoint, name);
        if (t.ElementCount != size)
            throw new NibbleException($"Tensor '{name}' has shape {t.ShapeText}, expected [{size}] from config.json.");
        return new NormWeight(backend, t.ToArray(), eps);
    }

    public float[] Values { get; }
    public float Eps { get; }
    public Tensor Tensor { get; private set; }

    public void Refresh() => Tensor = _backend.FromHost(Values, Values.Length);
}
