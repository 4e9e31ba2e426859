using System.Text.Json;

namespace Nibble.Formats;

/// <summary>
/// All safetensors files of a model directory seen as one name → tensor map:
/// a single <c>model.safetensors</c>, or the shards listed by <c>model.safetensors.index.json</c>.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    readonly List<SafetensorsFile> _files = [];
    readonly Dictionary<string, SafetensorsFile> _byTensor = new(StringComparer.Ordinal);

    public string Directory { get; }
    public IReadOnlyList<SafetensorsFile> Files => _files;
    public IEnumerable<TensorInfo> Tensors => _byTensor.Values.SelectMany(f => f.Tensors.Values).DistinctBy(t => t.Name);
    public IEnumerable<string> TensorNames => _byTensor.Keys;
    public long TotalBytes => _files.Sum(f => f.FileLength);

    SafetensorsCheckpoint(string directory) => Directory = directory;

    public static SafetensorsCheckpoint Open(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
            throw new SafetensorsException($"Model directory '{directory}' does not exist; pass a Hugging Face model folder.");
        var checkpoint = new SafetensorsCheckpoint(directory);
        try
        {
            string index = System.IO.Path.Combine(directory, IndexFileName);
            string single = System.IO.Path.Combine(directory, SingleFileName);
            if (File.Exists(index)) checkpoint.OpenSharded(index);
            else if (File.Exists(single)) checkpoint.Add(SafetensorsFile.Open(single), requireAll: null);
            else
            {
                var files = System.IO.Directory.GetFiles(directory, "*.safetensors")
                    .Where(f => !System.IO.Path.GetFileName(f).StartsWith("reference_outputs", StringComparison.Ordinal))
                    .Order(StringComparer.Ordinal).ToList();
                if (files.Count == 0)
                    throw new SafetensorsException($"Model directory '{directory}' has no {SingleFileName} or {IndexFileName}; it is not a safetensors checkpoint.");
                foreach (var f in files) checkpoint.Add(SafetensorsFile.Open(f), requireAll: null);
            }
            return checkpoint;
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    void OpenSharded(string indexPath)
    {
        Dictionary<string, string> weightMap;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException($"Shard index '{indexPath}' has no weight_map object; the checkpoint is incomplete.");
            weightMap = wm.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal);
        }
        catch (JsonException e)
        {
            throw new SafetensorsException($"Shard index '{indexPath}' is not valid JSON ({e.Message}).", e);
        }

        foreach (var group in weightMap.GroupBy(kv => kv.Value, kv => kv.Key))
        {
            string shardPath = System.IO.Path.Combine(Directory, group.Key);
            if (!File.Exists(shardPath))
                throw new SafetensorsException($"Shard '{group.Key}' listed in '{indexPath}' is missing from '{Directory}'; download every shard of the model.");
            Add(SafetensorsFile.Open(shardPath), requireAll: group.ToList());
        }
    }

    void Add(SafetensorsFile file, IReadOnlyList<string>? requireAll)
    {
        _files.Add(file);
        foreach (var name in file.Tensors.Keys)
        {
            if (!_byTensor.TryAdd(name, file))
                throw new SafetensorsException($"Tensor '{name}' appears in both '{_byTensor[name].Path}' and '{file.Path}'; the checkpoint is inconsistent.");
        }
        if (requireAll is not null)
            foreach (var name in requireAll)
                if (!file.Contains(name))
                    throw new SafetensorsException($"Tensor '{name}' is listed for '{file.Path}' in the shard index but is not in that file; the checkpoint is inconsistent.");
    }

    public bool Contains(string name) => _byTensor.ContainsKey(name);

    public SafetensorsFile FileOf(string name) =>
        _byTensor.TryGetValue(name, out var f) ? f
        : throw new SafetensorsException($"Tensor '{name}' is not in the checkpoint at '{Directory}'; the weights do not match the model's architecture.");

    public TensorInfo GetInfo(string name) => FileOf(name).GetInfo(name);
    public ReadOnlySpan<byte> GetBytes(string name) => FileOf(name).GetBytes(name);
    public ReadOnlySpan<T> GetSpan<T>(string name) where T : unmanaged => FileOf(name).GetSpan<T>(name);
    public ReadOnlyMemory<byte> GetMemory(string name) => FileOf(name).GetMemory(name);
    public nint GetPointer(string name) => FileOf(name).GetPointer(name);

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
        _byTensor.Clear();
    }
}
