using Nibble.Backend;

namespace Nibble.Models;

/// <summary>The MLP sub-block of a decoder layer: a gated MLP or a mixture of experts.</summary>
public interface IFeedForward
{
    /// <summary>output = ffn(x) for x [T, hidden]; <paramref name="rows"/> maps rows to tokens (empty: identity).</summary>
    void Forward(Tensor x, ForwardContext ctx, Tensor output, ReadOnlySpan<int> rows = default);
}

/// <summary>down(silu(gate(x)) · up(x)), the SwiGLU MLP of Llama-family models (and each MoE expert).</summary>
public sealed class GatedMlp : IFeedForward
{
    readonly IBackend _backend;

    public GatedMlp(IBackend backend, string gateName, string upName, string downName, ILinear gate, ILinear up, ILinear down)
    {
        _backend = backend;
        (GateName, UpName, DownName, GateProj, UpProj, DownProj) = (gateName, upName, downName, gate, up, down);
    }

    public string GateName { get; }
    public string UpName { get; }
    public string DownName { get; }
    public ILinear GateProj { get; set; }
    public ILinear UpProj { get; set; }
    public ILinear DownProj { get; set; }
    public int IntermediateSize => GateProj.OutFeatures;

    public void Forward(Tensor x, ForwardContext ctx, Tensor output, ReadOnlySpan<int> rows = default)
    {
        int t = x.Rows;
        var gate = _backend.Zeros(t, IntermediateSize);
        var up = _backend.Zeros(t, IntermediateSize);
        ctx.Linear(GateName, GateProj, x, gate, rows);
        ctx.Linear(UpName, UpProj, x, up, rows);
        _backend.SiluMul(gate, up, gate);
        ctx.Linear(DownName, DownProj, gate, output, rows);
    }
}
