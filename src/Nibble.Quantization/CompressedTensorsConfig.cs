using System.Text.Json;
using System.Text.Json.Nodes;

namespace Nibble.Quantization;

/// <summary>The parts of a compressed-tensors <c>quantization_config</c> Nibble uses.</summary>
/// <param name="GroupSize">Weight group size; 0 means channel-wise (one scale per output row).</param>
public sealed record CompressedTensorsQuantization(QuantizationScheme Scheme, int GroupSize, IReadOnlyList<string> Ignore);

/// <summary>
/// Builds and parses <c>config.json → quantization_config</c> for pack-quantized int4 checkpoints (spec §2.4: fields of
/// compressed-tensors QuantizationConfig / QuantizationScheme / QuantizationArgs, preset W4AFP8 or W4A16, one group
/// <c>group_0</c> targeting Linear). vLLM picks CompressedTensorsW4A8Fp8 on SM90 from exactly these fields (weights int
/// 4-bit symmetric static group; input float 8-bit dynamic per-token); note vLLM's W4A8 kernel needs group size 128.
/// </summary>
public static class CompressedTensorsConfig
{
    public const string PackQuantized = "pack-quantized";

    public static JsonObject Build(QuantizationScheme scheme, int groupSize, IEnumerable<string> ignore)
    {
        if (groupSize < 0) throw new ArgumentOutOfRangeException(nameof(groupSize));
        var weights = new JsonObject
        {
            ["actorder"] = null,
            ["block_structure"] = null,
            ["dynamic"] = false,
            ["group_size"] = groupSize == 0 ? null : groupSize,
            ["num_bits"] = 4,
            ["observer"] = "memoryless_minmax",
            ["observer_kwargs"] = new JsonObject(),
            ["scale_dtype"] = null,
            ["strategy"] = groupSize == 0 ? "channel" : "group",
            ["symmetric"] = true,
            ["type"] = "int",
            ["zp_dtype"] = null,
        };
        JsonObject? input = scheme == QuantizationScheme.W4A16 ? null : new JsonObject
        {
            ["actorder"] = null,
            ["block_structure"] = null,
            ["dynamic"] = true,
            ["group_size"] = null,
            ["num_bits"] = 8,
            ["observer"] = null,
            ["observer_kwargs"] = new JsonObject(),
            ["scale_dtype"] = null,
            ["strategy"] = "token",
            ["symmetric"] = true,
            ["type"] = "float",
            ["zp_dtype"] = null,
        };
        return new JsonObject
        {
            ["config_groups"] = new JsonObject
            {
                ["group_0"] = new JsonObject
                {
                    ["format"] = PackQuantized,
                    ["input_activations"] = input,
                    ["output_activations"] = null,
                    ["targets"] = new JsonArray("Linear"),
                    ["weights"] = weights,
                },
            },
            ["format"] = PackQuantized,
            ["global_compression_ratio"] = null,
            ["ignore"] = new JsonArray(ignore.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray()),
            ["kv_cache_scheme"] = null,
            ["quant_method"] = "compressed-tensors",
            ["quantization_status"] = "compressed",
        };
    }

    /// <summary>Parses a quantization_config object; anything other than pack-quantized int4 W4A8 / W4A16 is a clear error.</summary>
    public static CompressedTensorsQuantization Parse(JsonElement config, string source = "config.json")
    {
        NibbleException Unsupported(string what) =>
            new($"'{source}' has a quantization_config Nibble cannot load ({what}); Nibble reads compressed-tensors pack-quantized int4 W4A8 (FP8 per-token activations) or W4A16 checkpoints.");

        if (config.ValueKind != JsonValueKind.Object) throw Unsupported("not an object");
        if (Str(config, "quant_method") != "compressed-tensors") throw Unsupported($"quant_method '{Str(config, "quant_method")}'");
        if (!config.TryGetProperty("config_groups", out var groups) || groups.ValueKind != JsonValueKind.Object)
            throw Unsupported("no config_groups");
        var list = groups.EnumerateObject().ToList();
        if (list.Count != 1) throw Unsupported($"{list.Count} config groups, expected 1");
        var group = list[0].Value;
        string? format = Str(group, "format") ?? Str(config, "format");
        if (format != PackQuantized) throw Unsupported($"format '{format}'");

        if (!group.TryGetProperty("weights", out var w) || w.ValueKind != JsonValueKind.Object) throw Unsupported("no weight quantization");
        if (Int(w, "num_bits") != 4 || Str(w, "type") != "int" || !Bool(w, "symmetric") || Bool(w, "dynamic"))
            throw Unsupported("weights are not static symmetric 4-bit int");
        int groupSize = Str(w, "strategy") switch
        {
            "group" => Int(w, "group_size") is int g and > 0 ? g : throw Unsupported("group strategy without a group_size"),
            "channel" => 0,
            var s => throw Unsupported($"weight strategy '{s}'"),
        };
        if (w.TryGetProperty("actorder", out var actorder) && actorder.ValueKind is not JsonValueKind.Null and not JsonValueKind.Undefined)
            throw Unsupported("activation ordering (g_idx)");

        QuantizationScheme scheme;
        if (!group.TryGetProperty("input_activations", out var a) || a.ValueKind == JsonValueKind.Null) scheme = QuantizationScheme.W4A16;
        else if (Int(a, "num_bits") == 8 && Str(a, "type") == "float" && Str(a, "strategy") == "token" && Bool(a, "dynamic") && Bool(a, "symmetric"))
            scheme = QuantizationScheme.W4A8;
        else throw Unsupported("input activations are not dynamic per-token FP8");

        var ignore = config.TryGetProperty("ignore", out var ig) && ig.ValueKind == JsonValueKind.Array
            ? ig.EnumerateArray().Select(e => e.GetString() ?? "").ToList() : new List<string>();
        return new CompressedTensorsQuantization(scheme, groupSize, ignore);
    }

    static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    static int? Int(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : null;
    static bool Bool(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;
}
