using Nibble.Backend;

namespace Nibble.Models;

/// <summary>
/// One pre-norm decoder layer: h += attn(norm₁(h)); h += ffn(norm₂(h)). The two sub-blocks are
/// public so calibration can run them separately on cached inputs.
/// </summary>
public sealed class DecoderLayer(IBackend backend, int index, NormWeight inputNorm, AttentionBlock attention, NormWeight postAttentionNorm, IFeedForward mlp)
{
    public int Index { get; } = index;
    public NormWeight InputNorm { get; } = inputNorm;
    public AttentionBlock Attention { get; } = attention;
    public NormWeight PostAttentionNorm { get; } = postAttentionNorm;
    public IFeedForward Mlp { get; set; } = mlp;

    /// <summary>Runs the layer in place on the residual stream <paramref name="hidden"/> [T, hidden].</summary>
    public void Forward(Tensor hidden, ForwardContext ctx)
    {
        int t = hidden.Rows, h = hidden.RowLength;
        var normed = backend.Zeros(t, h);
        var delta = backend.Zeros(t, h);
        backend.RmsNorm(hidden, InputNorm.Tensor, InputNorm.Eps, normed);
        Attention.Forward(normed, ctx, delta);
        backend.AddRmsNorm(hidden, delta, PostAttentionNorm.Tensor, PostAttentionNorm.Eps, normed);
        Mlp.Forward(normed, ctx, delta);
        backend.Add(hidden, delta);
    }
}
