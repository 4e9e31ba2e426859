using Nibble.Backend;

namespace Nibble.Models;

/// <summary>
/// Sparse mixture of experts: a router (kept unquantized) picks the top-k experts per token from a
/// softmax; the chosen experts' outputs are mixed with the (optionally renormalised) router weights.
/// Qwen2-MoE adds a shared expert scaled by sigmoid(shared_expert_gate(x)).
/// Tokens are grouped per expert so each expert runs one GEMM over its tokens.
/// </summary>
public sealed class MoeBlock : IFeedForward
{
    readonly IBackend _backend;

    public MoeBlock(IBackend backend, string routerName, ILinear router, IReadOnlyList<GatedMlp> experts, int topK, bool normalizeTopK,
        GatedMlp? sharedExpert = null, string? sharedGateName = null, ILinear? sharedExpertGate = null)
    {
        _backend = backend;
        (RouterName, Router, Experts, TopK, NormalizeTopK) = (routerName, router, experts, topK, normalizeTopK);
        (SharedExpert, SharedExpertGateName, SharedExpertGate) = (sharedExpert, sharedGateName, sharedExpertGate);
    }

    public string RouterName { get; }
    public ILinear Router { get; set; }
    public IReadOnlyList<GatedMlp> Experts { get; }
    public int TopK { get; }
    public bool NormalizeTopK { get; }
    public GatedMlp? SharedExpert { get; }
    public string? SharedExpertGateName { get; }
    public ILinear? SharedExpertGate { get; set; }

    /// <summary>The routing of the last forward call (for statistics, e.g. expert load in calibration).</summary>
    public MoeRouting? LastRouting { get; private set; }

    public void Forward(Tensor x, ForwardContext ctx, Tensor output, ReadOnlySpan<int> rows = default)
    {
        int t = x.Rows, hidden = x.RowLength;
        int[] tokenOf = rows.IsEmpty ? ctx.Identity[..t] : rows.ToArray();
        var logits = _backend.Zeros(t, Experts.Count);
        ctx.Linear(RouterName, Router, x, logits, tokenOf);
        var routing = _backend.Route(logits, TopK, NormalizeTopK);
        LastRouting = routing;

        // output starts at zero and accumulates weighted expert outputs.
        output.CopyFrom(new float[output.ElementCount]);
        var byExpert = new List<(int Row, float Weight)>[Experts.Count];
        for (int r = 0; r < t; r++)
            for (int j = 0; j < TopK; j++)
                (byExpert[routing.Experts[r * TopK + j]] ??= []).Add((r, routing.Weights[r * TopK + j]));

        for (int e = 0; e < Experts.Count; e++)
        {
            var list = byExpert[e];
            if (list is null) continue;
            var selected = list.Select(p => p.Row).ToArray();
            var weights = list.Select(p => p.Weight).ToArray();
            var tokens = selected.Select(r => tokenOf[r]).ToArray();
            var xe = _backend.Zeros(selected.Length, hidden);
            _backend.GatherRows(x, selected, xe);
            var ye = _backend.Zeros(selected.Length, hidden);
            Experts[e].Forward(xe, ctx, ye, tokens);
            _backend.ScatterAddRows(ye, selected, weights, output);
        }

        if (SharedExpert is not null)
        {
            var shared = _backend.Zeros(t, hidden);
            SharedExpert.Forward(x, ctx, shared, tokenOf);
            if (SharedExpertGate is not null)
            {
                var gate = _backend.Zeros(t, 1);
                ctx.Linear(SharedExpertGateName!, SharedExpertGate, x, gate, tokenOf);
                _backend.MulSigmoidGate(shared, gate);
            }
            _backend.Add(output, shared);
        }
    }
}
