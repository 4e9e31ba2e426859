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

    [StructLayout(LayoutKind.Sequential)]
    struct DecodeParams
    {
        public ulong Q, Keys, Values, Out, PartialAcc, PartialMl, Positions;
        public int PosStart, Heads, KvHeads, HeadDim, Capacity, Window, Splits, Pad;
        public float ScaleLog2;
        public int Pad2;
    }

    /// <summary>Largest query-head group one decode CTA serves; larger groups run in chunks (grid z).</summary>
    public const int DecodeMaxGroup = 8;

    /// <summary>Whether the split-KV decode kernel handles this shape (head_dim a multiple of 4, at most 256).</summary>
    public static bool DecodeSupports(int headDim) => headDim % 4 == 0 && headDim <= MaxHeadDim;

    /// <summary>
    /// Splits of the decode kernel for a range of <paramref name="keys"/> positions: about two CTAs per SM over
    /// (kvHeads × head chunks × splits), each split at least one tile (64 keys for head_dim ≤ 128 and groups ≤ 4,
    /// fewer otherwise), at most 256.
    /// </summary>
    public static int ChooseDecodeSplits(int heads, int kvHeads, int headDim, int keys, int multiprocessors)
    {
        int group = heads / kvHeads;
        int chunks = (group + DecodeMaxGroup - 1) / DecodeMaxGroup;
        var (_, _, kpw) = DecodeVariant(headDim, group);
        int unit = 8 * kpw;
        long ctas = (long)kvHeads * chunks;
        int wanted = (int)Math.Max(1, (2L * multiprocessors + ctas - 1) / ctas);
        int tiles = Math.Max(1, (keys + unit - 1) / unit);
        return Math.Clamp(Math.Min(wanted, tiles), 1, 256);
    }

    static (int C, int Gm, int Kpw) DecodeVariant(int headDim, int group)
    {
        int c = headDim <= 128 ? 1 : 2;
        int gm = group <= 1 ? 1 : group <= 2 ? 2 : group <= 4 ? 4 : 8;
        int kpw = c == 1 ? (gm <= 4 ? 8 : 4) : (gm <= 4 ? 4 : 2);
        return (c, gm, kpw);
    }

    /// <summary>
    /// Split-KV decode of one token (Attention.cu decode_attention_*): the position is <paramref name="positions"/>[0] in
    /// device memory when non-zero (CUDA-graph replay), else <paramref name="posStart"/>; the chunk per split is derived
    /// from it on the device. With <paramref name="splits"/> &gt; 1, partialAcc holds heads·splits·headDim floats and
    /// partialMl heads·splits·2, and decode_combine writes the output.
    /// </summary>
    /// <param name="v3b">the v3b variant (uniform step count, reduce-scatter score sums; measured slower) instead of v3a.</param>
    public static void Decode(KernelCache kernels, CudaStream stream, ulong q, ulong keys, ulong values, ulong output, int heads, int kvHeads, int headDim,
        int capacity, ulong positions, int posStart, int window, int splits, ulong partialAcc, ulong partialMl, bool v3b = false)
    {
        if (!DecodeSupports(headDim)) throw new NibbleException($"The CUDA decode attention kernel needs head_dim a multiple of 4 up to {MaxHeadDim}, the model has {headDim}; use the CPU backend.");
        if (heads % kvHeads != 0) throw new ArgumentException($"{heads} query heads do not group over {kvHeads} kv heads.");
        int group = heads / kvHeads;
        var (c, gm, _) = DecodeVariant(headDim, group);
        int chunks = (group + gm - 1) / gm;
        var p = new DecodeParams
        {
            Q = q, Keys = keys, Values = values, Out = output, PartialAcc = partialAcc, PartialMl = partialMl, Positions = positions,
            PosStart = posStart, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Capacity = capacity, Window = window, Splits = splits,
            ScaleLog2 = (float)(1.4426950408889634 / Math.Sqrt(headDim)),
        };
        var module = kernels.Load("Attention.cu");
        module.Function($"decode_attention_{(v3b ? "v3b_" : "")}c{c}_g{gm}").Launch(stream, ((uint)kvHeads, (uint)splits, (uint)chunks), 256, p);
        if (splits > 1) module.Function("decode_combine").Launch(stream, ((uint)heads, 1, 1), 64, p);
    }
}
