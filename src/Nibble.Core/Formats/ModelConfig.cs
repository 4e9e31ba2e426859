using System.Text.Json;

namespace Nibble.Formats;

/// <summary>The model families Nibble runs, each mapped from Hugging Face <c>architectures</c>/<c>model_type</c>.</summary>
public enum ModelFamily { Llama, Mistral, Qwen2, Qwen3, Mixtral, Qwen2Moe, Qwen3Moe }

/// <summary>RoPE settings: <c>default</c> or <c>llama3</c> frequency scaling.</summary>
public sealed record RopeConfig(
    double Theta,
    string Type = "default",
    double Factor = 1.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192);

/// <summary>Mixture-of-experts settings (Mixtral, Qwen2-MoE, Qwen3-MoE).</summary>
public sealed record MoeConfig(
    int NumExperts,
    int TopK,
    bool NormTopKProb,
    int ExpertIntermediateSize,
    int SharedExpertIntermediateSize,
    int DecoderSparseStep,
    IReadOnlyList<int> MlpOnlyLayers)
{
    /// <summary>Whether decoder layer <paramref name="layer"/> uses the sparse MoE block (Qwen-MoE rules; Mixtral: all).</summary>
    public bool IsSparseLayer(int layer) =>
        !MlpOnlyLayers.Contains(layer) && NumExperts > 0 && (layer + 1) % Math.Max(1, DecoderSparseStep) == 0;
}

/// <summary>
/// A Hugging Face <c>config.json</c> for the supported decoder-only families. Accepts both the
/// transformers 4.x style (<c>rope_theta</c>, <c>rope_scaling</c> at the top level) and 5.x (<c>rope_parameters</c>).
/// </summary>
public sealed record ModelConfig
{
    public required ModelFamily Family { get; init; }
    public required string Architecture { get; init; }
    public required string ModelType { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int VocabSize { get; init; }
    public required double RmsNormEps { get; init; }
    public required RopeConfig Rope { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }
    public bool MlpBias { get; init; }
    /// <summary>Qwen3: RMSNorm on each query and key head before RoPE.</summary>
    public bool QkNorm { get; init; }
    public int? SlidingWindow { get; init; }
    public MoeConfig? Moe { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    /// <summary>The raw <c>quantization_config</c> object, when the checkpoint is already quantized.</summary>
    public JsonElement? QuantizationConfig { get; init; }

    public bool IsMoe => Moe is not null;

    static readonly Dictionary<string, ModelFamily> Architectures = new(StringComparer.Ordinal)
    {
        ["LlamaForCausalLM"] = ModelFamily.Llama,
        ["MistralForCausalLM"] = ModelFamily.Mistral,
        ["Qwen2ForCausalLM"] = ModelFamily.Qwen2,
        ["Qwen3ForCausalLM"] = ModelFamily.Qwen3,
        ["MixtralForCausalLM"] = ModelFamily.Mixtral,
        ["Qwen2MoeForCausalLM"] = ModelFamily.Qwen2Moe,
        ["Qwen3MoeForCausalLM"] = ModelFamily.Qwen3Moe,
    };

    public static IEnumerable<string> SupportedArchitectures => Architectures.Keys;

    public static ModelConfig Load(string modelDirectory)
    {
        string path = Path.Combine(modelDirectory, "config.json");
        if (!File.Exists(path))
            throw new NibbleException($"'{path}' does not exist; pass a Hugging Face model directory containing config.json.");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return Parse(doc.RootElement, path);
        }
        catch (JsonException e)
        {
            throw new NibbleException($"'{path}' is not valid JSON ({e.Message}); fix or re-download it.", e);
        }
    }

    public static ModelConfig Parse(string json) { using var doc = JsonDocument.Parse(json); return Parse(doc.RootElement, "config.json"); }

    public static ModelConfig Parse(JsonElement root, string source)
    {
        string architecture = root.TryGetProperty("architectures", out var archs) && archs.ValueKind == JsonValueKind.Array && archs.GetArrayLength() > 0
            ? archs[0].GetString() ?? "" : "";
        if (!Architectures.TryGetValue(architecture, out var family))
            throw new NibbleException($"'{source}' describes architecture '{(architecture == "" ? "(none)" : architecture)}', which Nibble does not support; supported: {string.Join(", ", Architectures.Keys)}.");

        int Int(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32()
            : throw new NibbleException($"'{source}' lacks the required integer field '{name}'.");
        int? OptInt(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : null;
        double? OptDouble(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
        bool Bool(string name, bool fallback = false) => root.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

        int hidden = Int("hidden_size");
        int heads = Int("num_attention_heads");
        int kvHeads = OptInt("num_key_value_heads") ?? heads;
        int headDim = OptInt("head_dim") ?? hidden / heads;
        if (heads % kvHeads != 0)
            throw new NibbleException($"'{source}' has {heads} attention heads, not a multiple of its {kvHeads} key/value heads.");

        bool isMoeFamily = family is ModelFamily.Mixtral or ModelFamily.Qwen2Moe or ModelFamily.Qwen3Moe;
        MoeConfig? moe = null;
        if (isMoeFamily)
        {
            int experts = OptInt("num_local_experts") ?? OptInt("num_experts")
                ?? throw new NibbleException($"'{source}' is a MoE model but has neither num_local_experts nor num_experts.");
            var mlpOnly = root.TryGetProperty("mlp_only_layers", out var mol) && mol.ValueKind == JsonValueKind.Array
                ? mol.EnumerateArray().Select(e => e.GetInt32()).ToList() : new List<int>();
            moe = new MoeConfig(
                NumExperts: experts,
                TopK: Int("num_experts_per_tok"),
                // Mixtral always renormalises its top-k; Qwen-MoE reads norm_topk_prob (Qwen2-MoE default false).
                NormTopKProb: family == ModelFamily.Mixtral || Bool("norm_topk_prob"),
                ExpertIntermediateSize: OptInt("moe_intermediate_size") ?? Int("intermediate_size"),
                SharedExpertIntermediateSize: OptInt("shared_expert_intermediate_size") ?? 0,
                DecoderSparseStep: OptInt("decoder_sparse_step") ?? 1,
                MlpOnlyLayers: mlpOnly);
        }

        return new ModelConfig
        {
            Family = family,
            Architecture = architecture,
            ModelType = root.TryGetProperty("model_type", out var mt) ? mt.GetString() ?? "" : "",
            HiddenSize = hidden,
            IntermediateSize = OptInt("intermediate_size") ?? 0,
            NumLayers = Int("num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = Int("vocab_size"),
            RmsNormEps = OptDouble(root, "rms_norm_eps") ?? 1e-6,
            Rope = ParseRope(root, source),
            MaxPositionEmbeddings = OptInt("max_position_embeddings") ?? 4096,
            TieWordEmbeddings = Bool("tie_word_embeddings"),
            // Qwen2 has q/k/v bias (and no o bias) without saying so in config.json.
            AttentionBias = family == ModelFamily.Qwen2 || family == ModelFamily.Qwen2Moe || Bool("attention_bias"),
            MlpBias = Bool("mlp_bias"),
            QkNorm = family is ModelFamily.Qwen3 or ModelFamily.Qwen3Moe,
            SlidingWindow = Bool("use_sliding_window", fallback: family is ModelFamily.Mistral or ModelFamily.Mixtral) ? OptInt("sliding_window") : null,
            Moe = moe,
            BosTokenId = OptInt("bos_token_id"),
            EosTokenIds = root.TryGetProperty("eos_token_id", out var eos) ? eos.ValueKind switch
            {
                JsonValueKind.Number => [eos.GetInt32()],
                JsonValueKind.Array => eos.EnumerateArray().Select(e => e.GetInt32()).ToList(),
                _ => [],
            } : [],
            QuantizationConfig = root.TryGetProperty("quantization_config", out var q) && q.ValueKind == JsonValueKind.Object ? q.Clone() : null,
        };
    }

    static RopeConfig ParseRope(JsonElement root, string source)
    {
        // transformers 5.x: rope_parameters { rope_theta, rope_type, factor, ... }; 4.x: rope_theta + rope_scaling.
        JsonElement? parameters = root.TryGetProperty("rope_parameters", out var rp) && rp.ValueKind == JsonValueKind.Object ? rp
            : root.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object ? rs : null;
        double theta = parameters is { } p0 && p0.TryGetProperty("rope_theta", out var t0) && t0.ValueKind == JsonValueKind.Number ? t0.GetDouble()
            : root.TryGetProperty("rope_theta", out var t1) && t1.ValueKind == JsonValueKind.Number ? t1.GetDouble() : 10000.0;
        if (parameters is not { } p)
            return new RopeConfig(theta);

        string type = (p.TryGetProperty("rope_type", out var rt) ? rt.GetString() : p.TryGetProperty("type", out var ty) ? ty.GetString() : null) ?? "default";
        if (type is not ("default" or "llama3"))
            throw new NibbleException($"'{source}' uses RoPE scaling '{type}'; Nibble supports 'default' and 'llama3'.");
        double D(string n, double fallback) => p.TryGetProperty(n, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : fallback;
        return new RopeConfig(theta, type,
            Factor: D("factor", 1.0),
            LowFreqFactor: D("low_freq_factor", 1.0),
            HighFreqFactor: D("high_freq_factor", 4.0),
            OriginalMaxPositionEmbeddings: (int)D("original_max_position_embeddings", 8192));
    }
}
