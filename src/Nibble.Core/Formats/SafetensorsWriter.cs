using System.Text;
using System.Text.Json;

namespace Nibble.Formats;

/// <summary>A tensor to write: its header entry and a way to produce exactly <see cref="ByteLength"/> bytes.</summary>
public sealed class TensorData
{
    public string Name { get; }
    public SafetensorsDType DType { get; }
    public long[] Shape { get; }
    public long ByteLength { get; }
    readonly Action<Stream> _write;

    public TensorData(string name, SafetensorsDType dtype, long[] shape, ReadOnlyMemory<byte> data)
        : this(name, dtype, shape, data.Length, s => s.Write(data.Span)) { }

    /// <summary>For tensors too large for one span (over 2 GB) or produced on the fly.</summary>
    public TensorData(string name, SafetensorsDType dtype, long[] shape, long byteLength, Action<Stream> write)
    {
        long expected = shape.Aggregate(1L, (a, b) => checked(a * b)) * dtype.ByteSize();
        if (expected != byteLength)
            throw new SafetensorsException($"Tensor '{name}' has shape [{string.Join(", ", shape)}] × {dtype} = {expected} bytes but {byteLength} bytes were given.");
        (Name, DType, Shape, ByteLength, _write) = (name, dtype, shape, byteLength, write);
    }

    public static TensorData From<T>(string name, SafetensorsDType dtype, long[] shape, T[] values) where T : unmanaged =>
        new(name, dtype, shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    internal void WriteTo(Stream stream) => _write(stream);
}

/// <summary>
/// Writes safetensors files the way the reference implementation does: compact JSON header with
/// <c>__metadata__</c> first and tensors in data order, padded with spaces to a multiple of 8 bytes.
/// Files appear atomically: data goes to a temporary name that is renamed at the end.
/// </summary>
public static class SafetensorsWriter
{
    public static void Write(string path, IReadOnlyList<TensorData> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var duplicate = tensors.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new SafetensorsException($"Tensor '{duplicate.Key}' is given twice for '{path}'; tensor names must be unique.");

        byte[] header = BuildHeader(tensors, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> len = stackalloc byte[8];
            BitConverter.TryWriteBytes(len, (long)header.Length);
            stream.Write(len);
            stream.Write(header);
            foreach (var t in tensors)
            {
                long before = stream.Position;
                t.WriteTo(stream);
                if (stream.Position - before != t.ByteLength)
                    throw new SafetensorsException($"Tensor '{t.Name}' produced {stream.Position - before} bytes but declared {t.ByteLength}.");
            }
        });
    }

    /// <summary>
    /// Writes <c>model-0000i-of-0000n.safetensors</c> shards of at most <paramref name="maxShardBytes"/> of data each
    /// (a single larger tensor gets a shard of its own) plus <c>model.safetensors.index.json</c>;
    /// one shard only is written as plain <c>model.safetensors</c>. Returns the file names written.
    /// </summary>
    public static IReadOnlyList<string> WriteCheckpoint(string directory, IReadOnlyList<TensorData> tensors, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        System.IO.Directory.CreateDirectory(directory);
        var shards = new List<List<TensorData>> { new() };
        long current = 0;
        foreach (var t in tensors)
        {
            if (current > 0 && current + t.ByteLength > maxShardBytes)
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(t);
            current += t.ByteLength;
        }

        if (shards.Count == 1)
        {
            Write(Path.Combine(directory, SafetensorsCheckpoint.SingleFileName), shards[0], metadata);
            return [SafetensorsCheckpoint.SingleFileName];
        }

        var names = new List<string>();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            string name = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            Write(Path.Combine(directory, name), shards[i], metadata);
            names.Add(name);
            foreach (var t in shards[i]) weightMap[t.Name] = name;
        }
        var index = new Dictionary<string, object>
        {
            ["metadata"] = new Dictionary<string, long> { ["total_size"] = tensors.Sum(t => t.ByteLength) },
            ["weight_map"] = weightMap,
        };
        AtomicFile.WriteAllText(Path.Combine(directory, SafetensorsCheckpoint.IndexFileName),
            JsonSerializer.Serialize(index, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        names.Add(SafetensorsCheckpoint.IndexFileName);
        return names;
    }

    static byte[] BuildHeader(IReadOnlyList<TensorData> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType.ToString());
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + t.ByteLength);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.ByteLength;
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - (8 + ms.Length) % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }
}
