using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>KV-cache append and causal GQA attention with optional split-K decode (Attention.cu).</summary>
public static class AttentionKernel
{
    public const int MaxHeadDim = 256;

    [StructLayout(LayoutKind.Sequential)]
    struct AppendParams { public ulong K, V, Keys, Values, Positions; public int PosStart, KvHeads, HeadDim, Capacity; }

    [StructLayout(LayoutKind.Sequential)]
    struct Params
    {
        public ulong Q, Keys, Values, Out, PartialAcc, PartialMl, Positions;
        public int PosStart, Heads, KvHeads, HeadDim, Capacity, Window, Splits, Chunk;
        public float Scale;
        public int Pad;
    }

    /// <summary>Stores the step's k, v ([tokens, kvHeads·headDim]) at their positions of one layer's cache.</summary>
    public static void Append(KernelCache kernels, CudaStream stream, ulong k, ulong v, ulong keys, ulong values, int tokens, int kvHeads, int headDim, int capacity, ulong positions, int posStart)
    {
        if (tokens == 0) return;
        kernels.Load("Attention.cu").Function("kv_append").Launch(stream, ((uint)tokens, (uint)kvHeads, 1), (uint)Math.Min(256, (headDim + 31) / 32 * 32),
            new AppendParams { K = k, V = v, Keys = keys, Values = values, Positions = positions, PosStart = posStart, KvHeads = kvHeads, HeadDim = headDim, Capacity = capacity });
    }

    /// <summary>
    /// Splits of the key range per (head, token): 1 when heads × tokens CTAs already fill the GPU twice or the range is
    /// short; otherwise enough for ~4 CTAs per SM (decode reads the cache at memory latency, so it needs many loads in
    /// flight), each split at least 32 keys.
    /// </summary>
    public static int ChooseSplits(int tokens, int heads, int keys, int multiprocessors)
    {
        long ctas = (long)tokens * heads;
        if (ctas >= 2L * multiprocessors || keys < 128) return 1;
        int wanted = (int)Math.Max(1, (4L * multiprocessors + ctas - 1) / ctas);
        return Math.Clamp(Math.Min(wanted, keys / 32), 1, 128);
    }

    /// <summary>
    /// Attention of q over the cache; <paramref name="maxKeys"/> bounds the keys any token sees (sizes the splits);
    /// with <paramref name="splits"/> &gt; 1, partialAcc holds tokens·heads·splits·headDim floats and partialMl tokens·heads·splits·2.
    /// </summary>
    public static void Run(KernelCache kernels, CudaStream stream, ulong q, ulong keys, ulong values, ulong output, int tokens, int heads, int kvHeads, int headDim,
        int capacity, ulong positions, int posStart, int window, int maxKeys, int splits, ulong partialAcc, ulong partialMl)
    {
        if (tokens == 0) return;
        if (headDim > MaxHeadDim) throw new NibbleException($"The CUDA attention kernel supports head_dim up to {MaxHeadDim}, the model has {headDim}; use the CPU backend.");
        int chunk = (maxKeys + splits - 1) / splits;
        var p = new Params
        {
            Q = q, Keys = keys, Values = values, Out = output, PartialAcc = partialAcc, PartialMl = partialMl, Positions = positions,
            PosStart = posStart, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Capacity = capacity, Window = window,
            Splits = splits, Chunk = Math.Max(1, chunk), Scale = 1f / MathF.Sqrt(headDim),
        };
        var module = kernels.Load("Attention.cu");
        module.Function("attention").Launch(stream, ((uint)heads, (uint)tokens, (uint)splits), 128, p);
        if (splits > 1)
            module.Function("attention_combine").Launch(stream, ((uint)heads, (uint)tokens, 1), (uint)Math.Min(256, (headDim + 31) / 32 * 32), p);
    }
}
