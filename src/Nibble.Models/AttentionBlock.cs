using Nibble.Backend;

namespace Nibble.Models;

/// <summary>
/// Self-attention of one decoder layer: q/k/v projections (Qwen2: with bias), optional per-head
/// q/k RMSNorm (Qwen3), RoPE, causal GQA over the KV cache, o projection.
/// </summary>
public sealed class AttentionBlock
{
    readonly IBackend _backend;

    public AttentionBlock(IBackend backend, string prefix, int layerIndex, int heads, int kvHeads, int headDim,
        RopeTable rope, int? slidingWindow, ILinear q, ILinear k, ILinear v, ILinear o, NormWeight? qNorm, NormWeight? kNorm)
    {
        _backend = backend;
        (Prefix, LayerIndex, Heads, KvHeads, HeadDim, Rope, SlidingWindow) = (prefix, layerIndex, heads, kvHeads, headDim, rope, slidingWindow);
        (QProj, KProj, VProj, OProj, QNorm, KNorm) = (q, k, v, o, qNorm, kNorm);
    }

    /// <summary>Weight-name prefix, e.g. <c>model.layers.3.self_attn</c>; linears are named Prefix + ".q_proj" etc.</summary>
    public string Prefix { get; }
    public int LayerIndex { get; }
    public int Heads { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }
    public RopeTable Rope { get; }
    public int? SlidingWindow { get; }
    public ILinear QProj { get; set; }
    public ILinear KProj { get; set; }
    public ILinear VProj { get; set; }
    public ILinear OProj { get; set; }
    public NormWeight? QNorm { get; }
    public NormWeight? KNorm { get; }

    /// <summary>output = attention(normed input x) for the context's positions; writes keys/values to the context's cache.</summary>
    public void Forward(Tensor x, ForwardContext ctx, Tensor output)
    {
        int t = x.Rows;
        var q = _backend.Zeros(t, Heads * HeadDim);
        var k = _backend.Zeros(t, KvHeads * HeadDim);
        var v = _backend.Zeros(t, KvHeads * HeadDim);
        ctx.Linear(Prefix + ".q_proj", QProj, x, q);
        ctx.Linear(Prefix + ".k_proj", KProj, x, k);
        ctx.Linear(Prefix + ".v_proj", VProj, x, v);
        if (QNorm is not null) _backend.RmsNorm(q, QNorm.Tensor, QNorm.Eps, q);
        if (KNorm is not null) _backend.RmsNorm(k, KNorm.Tensor, KNorm.Eps, k);
        _backend.Rope(q, HeadDim, ctx.Positions, Rope);
        _backend.Rope(k, HeadDim, ctx.Positions, Rope);
        var attn = _backend.Zeros(t, Heads * HeadDim);
        _backend.Attention(q, k, v, ctx.Cache, LayerIndex, ctx.Positions, SlidingWindow, attn);
        ctx.Linear(Prefix + ".o_proj", OProj, attn, output);
    }
}
