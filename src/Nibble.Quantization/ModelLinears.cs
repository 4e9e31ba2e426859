using Nibble.Models;

namespace Nibble.Quantization;

/// <summary>One linear layer of a loaded model: its Hugging Face name, the layer, a way to replace it, and whether it gets quantized.</summary>
public sealed record LinearSlot(string Name, Func<ILinear> Get, Action<ILinear> Set, bool Quantize);

/// <summary>
/// Every linear layer of a <see cref="CausalLM"/> by name. Quantized: all except lm_head (and the tied embedding),
/// MoE routers and Qwen2-MoE's shared-expert gate, which stay bf16 (architecture guide, "Models to cover").
/// </summary>
public static class ModelLinears
{
    public static IReadOnlyList<LinearSlot> Enumerate(CausalLM model)
    {
        var slots = new List<LinearSlot>();
        foreach (var layer in model.Layers)
        {
            var a = layer.Attention;
            slots.Add(new(a.Prefix + ".q_proj", () => a.QProj, l => a.QProj = l, true));
            slots.Add(new(a.Prefix + ".k_proj", () => a.KProj, l => a.KProj = l, true));
            slots.Add(new(a.Prefix + ".v_proj", () => a.VProj, l => a.VProj = l, true));
            slots.Add(new(a.Prefix + ".o_proj", () => a.OProj, l => a.OProj = l, true));
            switch (layer.Mlp)
            {
                case GatedMlp mlp: AddMlp(slots, mlp); break;
                case MoeBlock moe:
                    slots.Add(new(moe.RouterName, () => moe.Router, l => moe.Router = l, false));
                    foreach (var e in moe.Experts) AddMlp(slots, e);
                    if (moe.SharedExpert is { } shared) AddMlp(slots, shared);
                    if (moe.SharedExpertGate is not null)
                        slots.Add(new(moe.SharedExpertGateName!, () => moe.SharedExpertGate!, l => moe.SharedExpertGate = l, false));
                    break;
                default: throw new NibbleException($"Layer {layer.Index} has an MLP of type {layer.Mlp.GetType().Name}, which quantization does not know; use a supported architecture.");
            }
        }
        slots.Add(new("lm_head", () => model.LmHead, l => model.LmHead = l, false));
        return slots;
    }

    static void AddMlp(List<LinearSlot> slots, GatedMlp mlp)
    {
        slots.Add(new(mlp.GateName, () => mlp.GateProj, l => mlp.GateProj = l, true));
        slots.Add(new(mlp.UpName, () => mlp.UpProj, l => mlp.UpProj = l, true));
        slots.Add(new(mlp.DownName, () => mlp.DownProj, l => mlp.DownProj = l, true));
    }

    /// <summary>The float32 weight [out, in] and bias of a dense (unquantized) layer.</summary>
    public static (float[] Weight, float[]? Bias) Dense(ILinear linear, string name) => linear is DenseLinear d
        ? (d.WeightToFloat(), d.BiasToFloat())
        : throw new NibbleException($"'{name}' is already quantized ({linear.GetType().Name}); quantize a bf16 checkpoint.");
}
