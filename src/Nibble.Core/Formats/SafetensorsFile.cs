using System.Buffers;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Nibble.Formats;

/// <summary>
/// A memory-mapped safetensors file: an 8-byte little-endian header length, a JSON header, then the data.
/// Tensor views point straight into the map (zero copy); they stay valid until the file is disposed.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>The format's limit on the header (100 MB), as in the reference implementation.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    readonly MemoryMappedFile? _map;
    readonly MemoryMappedViewAccessor? _view;
    readonly byte* _base;
    readonly long _dataStart;
    readonly Dictionary<string, TensorInfo> _tensors;

    public string Path { get; }
    public long FileLength { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;
    public IReadOnlyDictionary<string, string> Metadata { get; }

    SafetensorsFile(string path)
    {
        Path = path;
        if (!File.Exists(path))
            throw new SafetensorsException($"Safetensors file '{path}' does not exist; check the model directory.");
        FileLength = new FileInfo(path).Length;
        if (FileLength < 8)
            throw new SafetensorsException($"Safetensors file '{path}' is truncated ({FileLength} bytes, less than the 8-byte header length); re-download or re-export it.");

        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* ptr = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref ptr);
        _base = ptr + _view.PointerOffset;

        long headerLength = *(long*)_base; // little-endian on every platform we run on
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > FileLength)
            throw new SafetensorsException($"Safetensors file '{path}' declares a header of {headerLength} bytes but the file has {FileLength}; the file is truncated or not safetensors.");
        _dataStart = 8 + headerLength;

        (_tensors, Metadata) = ParseHeader(path, new ReadOnlySpan<byte>(_base + 8, checked((int)headerLength)), FileLength - _dataStart);
    }

    public static SafetensorsFile Open(string path)
    {
        try { return new SafetensorsFile(path); }
        catch (UnauthorizedAccessException e) { throw new SafetensorsException($"Safetensors file '{path}' cannot be read ({e.Message}); check its permissions.", e); }
        catch (IOException e) when (e is not FileNotFoundException) { throw new SafetensorsException($"Safetensors file '{path}' cannot be mapped ({e.Message}).", e); }
    }

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public TensorInfo GetInfo(string name) =>
        _tensors.TryGetValue(name, out var info) ? info
        : throw new SafetensorsException($"Tensor '{name}' is not in '{Path}'; the checkpoint does not match the model's architecture.");

    /// <summary>Address of the tensor's first byte inside the map.</summary>
    public nint GetPointer(string name) => (nint)(_base + _dataStart + GetInfo(name).Offset);

    /// <summary>The tensor's bytes (zero copy). Tensors over 2 GB need <see cref="GetPointer"/>.</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var info = GetInfo(name);
        if (info.Length > int.MaxValue)
            throw new SafetensorsException($"Tensor '{name}' in '{Path}' is {info.Length} bytes, too large for a span; use GetPointer.");
        return new ReadOnlySpan<byte>(_base + _dataStart + info.Offset, (int)info.Length);
    }

    /// <summary>The tensor's elements reinterpreted as <typeparamref name="T"/> (zero copy).</summary>
    public ReadOnlySpan<T> GetSpan<T>(string name) where T : unmanaged
    {
        var info = GetInfo(name);
        if (info.DType.ByteSize() != sizeof(T))
            throw new SafetensorsException($"Tensor '{name}' in '{Path}' is {info.DType} ({info.DType.ByteSize()} bytes per element), not a {typeof(T).Name}.");
        return MemoryMarshal.Cast<byte, T>(GetBytes(name));
    }

    /// <summary>The tensor's bytes as memory (zero copy), e.g. to hand to the writer.</summary>
    public ReadOnlyMemory<byte> GetMemory(string name)
    {
        var info = GetInfo(name);
        return new UnmanagedMemory(_base + _dataStart + info.Offset, checked((int)info.Length)).Memory;
    }

    static (Dictionary<string, TensorInfo>, IReadOnlyDictionary<string, string>) ParseHeader(string path, ReadOnlySpan<byte> header, long dataLength)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header.ToArray()); }
        catch (JsonException e)
        {
            throw new SafetensorsException($"Safetensors file '{path}' has a malformed JSON header ({e.Message}); the file is corrupt.", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException($"Safetensors file '{path}' has a header that is not a JSON object; the file is corrupt.");

            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new SafetensorsException($"Safetensors file '{path}' has a __metadata__ entry that is not an object of strings.");
                    foreach (var m in prop.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()!
                            : throw new SafetensorsException($"Safetensors file '{path}' has metadata '{m.Name}' that is not a string.");
                    continue;
                }
                tensors[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataLength);
            }
            CheckNoOverlap(path, tensors.Values);
            return (tensors, metadata);
        }
    }

    static TensorInfo ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        string Where() => $"tensor '{name}' in '{path}'";
        if (e.ValueKind != JsonValueKind.Object
            || !e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String
            || !e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array
            || !e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new SafetensorsException($"The header entry of {Where()} needs dtype, shape and two data_offsets; the file is corrupt.");

        if (!SafetensorsDTypeExtensions.TryParse(dt.GetString()!, out var dtype))
            throw new SafetensorsException($"The {Where()} has unknown dtype '{dt.GetString()}'; supported: {string.Join(", ", Enum.GetNames<SafetensorsDType>())}.");

        var shape = new long[sh.GetArrayLength()];
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var v) || v < 0)
                throw new SafetensorsException($"The {Where()} has an invalid shape dimension '{d}'.");
            shape[i++] = v;
        }
        if (!off[0].TryGetInt64(out var begin) || !off[1].TryGetInt64(out var end) || begin < 0 || end < begin)
            throw new SafetensorsException($"The {Where()} has invalid data_offsets {off}.");
        if (end > dataLength)
            throw new SafetensorsException($"The {Where()} ends at byte {end} of the data but the data section has {dataLength} bytes; the file is truncated.");

        long elements = 1;
        foreach (var d in shape) elements = checked(elements * d);
        long expected = checked(elements * dtype.ByteSize());
        if (expected != end - begin)
            throw new SafetensorsException($"The {Where()} has shape [{string.Join(", ", shape)}] × {dtype} = {expected} bytes but its data_offsets span {end - begin} bytes.");
        return new TensorInfo(name, dtype, shape, begin, end - begin);
    }

    static void CheckNoOverlap(string path, IEnumerable<TensorInfo> tensors)
    {
        TensorInfo? previous = null;
        foreach (var t in tensors.Where(t => t.Length > 0).OrderBy(t => t.Offset))
        {
            if (previous is not null && t.Offset < previous.Offset + previous.Length)
                throw new SafetensorsException($"Tensors '{previous.Name}' and '{t.Name}' in '{path}' overlap in the data section; the file is corrupt.");
            previous = t;
        }
    }

    public void Dispose()
    {
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }

    sealed class UnmanagedMemory(byte* pointer, int length) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => new(pointer, length);
        public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);
        public override void Unpin() { }
        protected override void Dispose(bool disposing) { }
    }
}

public sealed class SafetensorsException(string message, Exception? inner = null) : NibbleException(message, inner!);
