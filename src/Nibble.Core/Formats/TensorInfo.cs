namespace Nibble.Formats;

/// <summary>One tensor's entry in a safetensors header. <see cref="Offset"/> is relative to the data section.</summary>
public sealed record TensorInfo(string Name, SafetensorsDType DType, long[] Shape, long Offset, long Length)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
