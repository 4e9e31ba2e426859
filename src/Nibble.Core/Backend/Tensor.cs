namespace Nibble.Backend;

/// <summary>Element types a backend tensor can hold. Activations are F32; weights stay in their storage type.</summary>
public enum TensorDType { F32, BF16, I32 }

/// <summary>
/// A dense, contiguous, row-major tensor owned by one backend (host memory for the CPU backend,
/// device memory for a GPU backend). Model code only passes tensors between backend ops; it never
/// reads elements directly, so the same model definition runs on every backend.
/// </summary>
public abstract class Tensor : IDisposable
{
    protected Tensor(TensorDType dtype, int[] shape)
    {
        if (shape.Length == 0 || shape.Any(d => d < 0))
            throw new ArgumentException($"Invalid tensor shape [{string.Join(", ", shape)}].", nameof(shape));
        DType = dtype;
        Shape = shape;
        ElementCount = shape.Aggregate(1L, (a, b) => a * b);
    }

    public TensorDType DType { get; }
    public int[] Shape { get; }
    public long ElementCount { get; }
    public int Rank => Shape.Length;

    /// <summary>The first dimension (tokens for activations, output features for weights).</summary>
    public int Rows => Shape[0];

    /// <summary>Elements per row: the product of every dimension after the first.</summary>
    public int RowLength => checked((int)(ElementCount / Math.Max(1, Shape[0])));

    /// <summary>A view of rows [<paramref name="start"/>, start + count) sharing this tensor's memory.</summary>
    public abstract Tensor SliceRows(int start, int count);

    /// <summary>Copies the elements out as float32 (converting from the storage type).</summary>
    public abstract void CopyTo(Span<float> destination);

    /// <summary>Overwrites the elements from float32 values (F32 tensors only).</summary>
    public abstract void CopyFrom(ReadOnlySpan<float> source);

    public float[] ToArray()
    {
        var result = new float[ElementCount];
        CopyTo(result);
        return result;
    }

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    public virtual void Dispose() { }
}
