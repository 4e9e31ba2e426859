namespace Nibble.Backend;

/// <summary>
/// The ops a decoder-only transformer needs, implemented once per device (CPU reference, CUDA).
/// Activations are F32 tensors shaped [tokens, features]; weights are [out, in] in storage dtype.
/// Every op writes into a caller-provided output so a backend can reuse buffers.
/// </summary>
public interface IBackend
{
    string Name { get; }

    /// <summary>A zero-filled F32 tensor.</summary>
    Tensor Zeros(params int[] shape);

    /// <summary>An F32 tensor holding <paramref name="values"/>. Host backends may alias the array (writes show through).</summary>
    Tensor FromHost(float[] values, params int[] shape);

    /// <summary>A weight from a memory-mapped checkpoint (BF16 or F32), viewed in place where the backend can.</summary>
    Tensor Weight(Formats.SafetensorsCheckpoint checkpoint, string name);

    /// <summary>output[t] = table[ids[t]] as F32.</summary>
    void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor output);

    /// <summary>Row-wise RMSNorm over the last dimension of <paramref name="x"/> viewed as [rows, weight.Length].</summary>
    void RmsNorm(Tensor x, Tensor weight, float eps, Tensor output);

    /// <summary>residual += delta, then output = RMSNorm(residual): the fused pre-norm of the next sub-block.</summary>
    void AddRmsNorm(Tensor residual, Tensor delta, Tensor weight, float eps, Tensor output);

    /// <summary>x += delta (element-wise).</summary>
    void Add(Tensor x, Tensor delta);

    /// <summary>output = input · weightᵀ (+ bias): weight is [N, K], input [T, K], output [T, N].</summary>
    void MatMul(Tensor input, Tensor weight, Tensor? bias, Tensor output);

    /// <summary>Rotary embedding in place on x viewed as [T, heads, headDim], half-split (rotate_half) convention.</summary>
    void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, RopeTable rope);

    /// <summary>
    /// Appends k, v ([T, kvHeads·headDim]) to <paramref name="cache"/> layer <paramref name="layer"/> at
    /// <paramref name="positions"/>, then causal grouped-query attention of q ([T, heads·headDim]) over the
    /// cache, optionally limited to a sliding window, into output ([T, heads·headDim]).
    /// </summary>
    void Attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, ReadOnlySpan<int> positions, int? slidingWindow, Tensor output);

    /// <summary>output = silu(gate) * up.</summary>
    void SiluMul(Tensor gate, Tensor up, Tensor output);

    /// <summary>Router: softmax over experts of each row of <paramref name="routerLogits"/>, top-k, optional renormalisation.</summary>
    MoeRouting Route(Tensor routerLogits, int topK, bool renormalize);

    /// <summary>destination[r] = source[rows[r]] (gathers the tokens routed to one expert).</summary>
    void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination);

    /// <summary>destination[rows[r]] += scales[r] · source[r] (adds one expert's weighted output back).</summary>
    void ScatterAddRows(Tensor source, ReadOnlySpan<int> rows, ReadOnlySpan<float> scales, Tensor destination);

    /// <summary>x[t, :] *= sigmoid(gate[t, 0]) (Qwen2-MoE shared-expert gate).</summary>
    void MulSigmoidGate(Tensor x, Tensor gate);

    /// <summary>A KV cache for one sequence of up to <paramref name="capacity"/> tokens.</summary>
    KvCache CreateKvCache(int layers, int kvHeads, int headDim, int capacity);
}

/// <summary>Top-k routing of every token: expert ids and mixing weights, [tokens, topK] row-major, on the host.</summary>
public sealed record MoeRouting(int Tokens, int TopK, int[] Experts, float[] Weights);
