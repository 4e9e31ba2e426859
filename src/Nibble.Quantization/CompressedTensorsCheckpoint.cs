using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nibble.Formats;
using Nibble.Numerics;

namespace Nibble.Quantization;

/// <summary>Options for writing a quantized checkpoint.</summary>
public sealed record CompressedTensorsWriteOptions
{
    public required QuantizationScheme Scheme { get; init; }
    /// <summary>Weight group size along K; 0 = channel-wise. vLLM's W4A8 kernel needs 128.</summary>
    public int GroupSize { get; init; } = 128;
    /// <summary>Replace an existing output directory (only once the new one is complete).</summary>
    public bool Overwrite { get; init; }
    /// <summary>Largest shard, in bytes of tensor data (Hugging Face's default is 5 GB).</summary>
    public long MaxShardBytes { get; init; } = 5_000_000_000;
}

/// <summary>Progress of a checkpoint write: Linear layers quantized so far.</summary>
public sealed record QuantizeProgress(int LayersDone, int LayersTotal, string? CurrentLayer);

public sealed record CompressedTensorsWriteResult(string OutputDirectory, int QuantizedLayers, int CopiedTensors, IReadOnlyList<string> Files, IReadOnlyList<string> Ignore);

/// <summary>
/// compressed-tensors <c>pack-quantized</c> checkpoints (spec §2.3–2.4, §6), loadable by vLLM: for every quantized
/// Linear <c>P</c>: <c>P.weight_packed</c> int32 [N, K/8] (uint4b8 nibbles along K, k = 8w in bits 0..3),
/// <c>P.weight_scale</c> bf16 [N, K/G], <c>P.weight_shape</c> int64 [2] = (N, K); every other tensor copied unchanged;
/// <c>config.json</c> gains <c>quantization_config</c> (<see cref="CompressedTensorsConfig"/>); tokenizer, chat template,
/// generation config and other side files are copied. The checkpoint is written into a temporary sibling directory
/// and renamed into place at the end, so a failure never leaves a partial checkpoint.
/// </summary>
public static class CompressedTensorsCheckpoint
{
    public const string WeightPacked = "weight_packed", WeightScale = "weight_scale", WeightShape = "weight_shape";

    public static CompressedTensorsWriteResult Write(string modelDir, string outputDir, CompressedTensorsWriteOptions options,
        ILinearQuantizer quantizer, IProgress<QuantizeProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        string source = Path.GetFullPath(modelDir), target = Path.GetFullPath(outputDir);
        if (string.Equals(source.TrimEnd('/'), target.TrimEnd('/'), StringComparison.Ordinal))
            throw new NibbleException($"The output directory '{outputDir}' is the model directory itself; pass a new --out directory.");
        if ((Directory.Exists(target) || File.Exists(target)) && !options.Overwrite)
            throw new NibbleException($"The output directory '{outputDir}' already exists; choose another --out or pass --overwrite.");
        if (options.GroupSize < 0) throw new NibbleException($"Group size {options.GroupSize} is negative; use 128 (or 0 for channel-wise).");

        var configNode = ReadConfig(source);
        if (configNode["quantization_config"] is not null)
            throw new NibbleException($"'{modelDir}' is already quantized (its config.json has quantization_config); quantize the original bf16 model.");

        using var checkpoint = SafetensorsCheckpoint.Open(source);
        var names = checkpoint.TensorNames.Order(StringComparer.Ordinal).ToList();
        var linears = names.Where(n => QuantizationTargets.IsQuantizedLinearWeight(n, checkpoint.GetInfo(n).Shape.Length)).ToList();
        var linearSet = linears.ToHashSet(StringComparer.Ordinal);
        if (linears.Count == 0)
            throw new NibbleException($"'{modelDir}' has no decoder Linear weights Nibble knows how to quantize (expected model.layers.N.self_attn.q_proj.weight and the like).");
        foreach (var name in linears)
        {
            var info = checkpoint.GetInfo(name);
            long k = info.Shape[1];
            int group = options.GroupSize == 0 ? (int)k : options.GroupSize;
            if (k % 8 != 0 || k % group != 0)
                throw new NibbleException($"Layer '{QuantizationTargets.ModuleOfWeight(name)}' has {k} input features, not a multiple of the group size {group} (and of 8); use --group-size 0 (channel-wise) or a divisor of {k}.");
            if (info.DType is not (SafetensorsDType.BF16 or SafetensorsDType.F16 or SafetensorsDType.F32))
                throw new NibbleException($"Layer '{name}' is stored as {info.DType}; quantization needs BF16, F16 or F32 weights.");
        }

        var ignore = new List<string> { "lm_head" };
        ignore.AddRange(names.Select(n => QuantizationTargets.ModuleOfWeight(n)).OfType<string>().Where(QuantizationTargets.IsRouter).Distinct());

        string parent = Path.GetDirectoryName(target.TrimEnd('/'))!;
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(target.TrimEnd('/'))}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            int done = 0;
            var tensors = new List<TensorData>();
            int copied = 0;
            foreach (var name in names)
            {
                var info = checkpoint.GetInfo(name);
                if (linearSet.Contains(name))
                {
                    string module = QuantizationTargets.ModuleOfWeight(name)!;
                    int n = checked((int)info.Shape[0]), k = checked((int)info.Shape[1]);
                    int group = options.GroupSize == 0 ? k : options.GroupSize;
                    var pending = new PendingLinear(() =>
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        progress?.Report(new QuantizeProgress(done, linears.Count, module));
                        var w = quantizer.Quantize(name, ReadAsFloat(checkpoint, info), n, k, group);
                        if (w.N != n || w.K != k || w.GroupSize != group)
                            throw new InvalidOperationException($"{quantizer.Method} returned [{w.N}, {w.K}] g{w.GroupSize} for '{name}' [{n}, {k}] g{group}.");
                        progress?.Report(new QuantizeProgress(++done, linears.Count, module));
                        return w;
                    });
                    tensors.Add(new TensorData($"{module}.{WeightPacked}", SafetensorsDType.I32, [n, k / 8], (long)n * (k / 8) * 4,
                        s => s.Write(MemoryMarshal.AsBytes(pending.Get().PackUint4b8().AsSpan()))));
                    tensors.Add(new TensorData($"{module}.{WeightScale}", SafetensorsDType.BF16, [n, k / group], (long)n * (k / group) * 2,
                        s => { s.Write(MemoryMarshal.AsBytes(pending.Get().ScalesBf16.AsSpan())); pending.Release(); }));
                    tensors.Add(TensorData.From($"{module}.{WeightShape}", SafetensorsDType.I64, [2], new long[] { n, k }));
                }
                else
                {
                    ushort[]? replacement = quantizer.ReplaceUnquantized(name);
                    if (replacement is not null)
                    {
                        if (replacement.LongLength != info.ElementCount)
                            throw new InvalidOperationException($"{quantizer.Method} replaced '{name}' with {replacement.Length} values, expected {info.ElementCount}.");
                        tensors.Add(TensorData.From(name, SafetensorsDType.BF16, info.Shape, replacement));
                    }
                    else tensors.Add(CopyOf(checkpoint, info));
                    copied++;
                }
            }

            var files = SafetensorsWriter.WriteCheckpoint(temp, tensors, options.MaxShardBytes, new Dictionary<string, string> { ["format"] = "pt" }).ToList();
            configNode["quantization_config"] = CompressedTensorsConfig.Build(options.Scheme, options.GroupSize, ignore);
            AtomicFile.WriteAllText(Path.Combine(temp, "config.json"), configNode.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            files.Add("config.json");
            foreach (var file in Directory.EnumerateFiles(source).Order(StringComparer.Ordinal))
            {
                string fileName = Path.GetFileName(file);
                if (fileName.StartsWith('.') || fileName.EndsWith(".safetensors", StringComparison.Ordinal)
                    || fileName is SafetensorsCheckpoint.IndexFileName or "config.json") continue;
                File.Copy(file, Path.Combine(temp, fileName));
                files.Add(fileName);
            }
            cancellationToken.ThrowIfCancellationRequested();

            if (Directory.Exists(target) || File.Exists(target))
            {
                // --overwrite: the old checkpoint goes only after the new one is complete.
                string old = Path.Combine(parent, $".{Path.GetFileName(target.TrimEnd('/'))}.old-{Guid.NewGuid():N}");
                if (File.Exists(target)) File.Move(target, old); else Directory.Move(target, old);
                Directory.Move(temp, target);
                if (File.Exists(old)) File.Delete(old); else Directory.Delete(old, recursive: true);
            }
            else Directory.Move(temp, target);
            return new CompressedTensorsWriteResult(target, linears.Count, copied, files, ignore);
        }
        catch
        {
            try { if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The scheme, group size and ignore list of a quantized model directory (its config.json).</summary>
    public static CompressedTensorsQuantization ReadQuantization(string modelDir)
    {
        string path = Path.Combine(modelDir, "config.json");
        var config = ModelConfig.Load(modelDir);
        if (config.QuantizationConfig is not { } q)
            throw new NibbleException($"'{path}' has no quantization_config; '{modelDir}' is not a quantized checkpoint (run nibble quantize first).");
        return CompressedTensorsConfig.Parse(q, path);
    }

    /// <summary>Module names (e.g. model.layers.0.self_attn.q_proj) that have a packed int4 weight.</summary>
    public static IReadOnlyList<string> QuantizedModules(SafetensorsCheckpoint checkpoint) =>
        checkpoint.TensorNames.Where(n => n.EndsWith("." + WeightPacked, StringComparison.Ordinal))
            .Select(n => n[..^(WeightPacked.Length + 1)]).Order(StringComparer.Ordinal).ToList();

    /// <summary>Reads one quantized Linear (weight_packed, weight_scale, weight_shape) back into q and bf16 group scales.</summary>
    public static QuantizedLinearWeights ReadLinear(SafetensorsCheckpoint checkpoint, string module)
    {
        string packedName = $"{module}.{WeightPacked}", scaleName = $"{module}.{WeightScale}", shapeName = $"{module}.{WeightShape}";
        if (!checkpoint.Contains(packedName))
            throw new NibbleException($"'{checkpoint.Directory}' has no '{packedName}'; the layer is not quantized in this checkpoint.");
        var packed = checkpoint.GetInfo(packedName);
        var scale = checkpoint.GetInfo(scaleName);
        var shape = checkpoint.GetInfo(shapeName);
        long[] nk = shape switch
        {
            { DType: SafetensorsDType.I64, ElementCount: 2 } => checkpoint.GetSpan<long>(shapeName).ToArray(),
            { DType: SafetensorsDType.I32, ElementCount: 2 } => checkpoint.GetSpan<int>(shapeName).ToArray().Select(v => (long)v).ToArray(),
            _ => throw new NibbleException($"'{shapeName}' is {shape.DType} {shape.ShapeText}, expected int64 [2]; the checkpoint is not pack-quantized."),
        };
        int n = checked((int)nk[0]), k = checked((int)nk[1]);
        if (packed.DType != SafetensorsDType.I32 || packed.Shape.Length != 2 || packed.Shape[0] != n || packed.Shape[1] * 8 != k)
            throw new NibbleException($"'{packedName}' is {packed.DType} {packed.ShapeText} but weight_shape is [{n}, {k}]; expected int32 [{n}, {k / 8}].");
        if (scale.DType != SafetensorsDType.BF16 || scale.Shape.Length != 2 || scale.Shape[0] != n || scale.Shape[1] <= 0 || k % scale.Shape[1] != 0)
            throw new NibbleException($"'{scaleName}' is {scale.DType} {scale.ShapeText}; expected bf16 [{n}, K/group] with K = {k}.");
        int groupSize = checked((int)(k / scale.Shape[1]));
        return QuantizedLinearWeights.FromPacked(checkpoint.GetSpan<int>(packedName), checkpoint.GetSpan<ushort>(scaleName).ToArray(), n, k, groupSize);
    }

    static JsonObject ReadConfig(string modelDir)
    {
        string path = Path.Combine(modelDir, "config.json");
        ModelConfig.Load(modelDir); // validates architecture and gives the standard missing-file message
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                ?? throw new NibbleException($"'{path}' is not a JSON object; fix or re-download it.");
        }
        catch (JsonException e)
        {
            throw new NibbleException($"'{path}' is not valid JSON ({e.Message}); fix or re-download it.", e);
        }
    }

    /// <summary>Copies a source tensor straight from the memory map, in chunks (tensors may exceed 2 GB).</summary>
    static unsafe TensorData CopyOf(SafetensorsCheckpoint checkpoint, TensorInfo info)
    {
        nint pointer = checkpoint.GetPointer(info.Name);
        long length = info.Length;
        return new TensorData(info.Name, info.DType, info.Shape, length, stream =>
        {
            for (long offset = 0; offset < length; offset += 1 << 30)
                stream.Write(new ReadOnlySpan<byte>((byte*)pointer + offset, (int)Math.Min(1 << 30, length - offset)));
        });
    }

    static float[] ReadAsFloat(SafetensorsCheckpoint checkpoint, TensorInfo info)
    {
        var values = new float[info.ElementCount];
        switch (info.DType)
        {
            case SafetensorsDType.BF16: BFloat16.ToFloat(checkpoint.GetSpan<ushort>(info.Name), values); break;
            case SafetensorsDType.F32: checkpoint.GetSpan<float>(info.Name).CopyTo(values); break;
            case SafetensorsDType.F16:
                var h = checkpoint.GetSpan<Half>(info.Name);
                for (int i = 0; i < h.Length; i++) values[i] = (float)h[i];
                break;
            default: throw new NibbleException($"'{info.Name}' is stored as {info.DType}; quantization needs BF16, F16 or F32 weights.");
        }
        return values;
    }

    /// <summary>Quantizes a layer when its first tensor is written and drops it after the scales, so memory stays one layer deep.</summary>
    sealed class PendingLinear(Func<QuantizedLinearWeights> quantize)
    {
        QuantizedLinearWeights? _weights;
        public QuantizedLinearWeights Get() => _weights ??= quantize();
        public void Release() => _weights = null;
    }
}
