using Nibble.Backend;

namespace Nibble.Cpu;

/// <summary>
/// Softmax over the router logits, top-k (ties to the lower expert id, as torch.topk on CPU in
/// practice), then optional renormalisation of the k weights (Mixtral always; Qwen-MoE per norm_topk_prob).
/// </summary>
public static class MoeRouter
{
    public static MoeRouting Route(ReadOnlySpan<float> logits, int tokens, int experts, int topK, bool renormalize)
    {
        if (topK > experts) throw new NibbleException($"The model routes to top-{topK} of only {experts} experts; config.json is inconsistent.");
        var ids = new int[tokens * topK];
        var weights = new float[tokens * topK];
        Span<float> probs = stackalloc float[experts];
        for (int t = 0; t < tokens; t++)
        {
            var row = logits.Slice(t * experts, experts);
            float max = float.NegativeInfinity;
            foreach (var v in row) max = Math.Max(max, v);
            float sum = 0;
            for (int e = 0; e < experts; e++) { probs[e] = MathF.Exp(row[e] - max); sum += probs[e]; }
            for (int e = 0; e < experts; e++) probs[e] /= sum;
            float picked = 0;
            for (int j = 0; j < topK; j++)
            {
                int best = -1;
                for (int e = 0; e < experts; e++)
                    if (probs[e] >= 0 && (best < 0 || probs[e] > probs[best])) best = e;
                ids[t * topK + j] = best;
                weights[t * topK + j] = probs[best];
                picked += probs[best];
                probs[best] = -1; // taken
            }
            if (renormalize)
                for (int j = 0; j < topK; j++) weights[t * topK + j] /= picked;
        }
        return new MoeRouting(tokens, topK, ids, weights);
    }
}
