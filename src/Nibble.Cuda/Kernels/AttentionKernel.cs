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
        public ulong Q, Keys, Values, Out, PartialAcc, PartialMl, Positions, Tickets;
        public int PosStart, Heads, KvHeads, HeadDim, Capacity, Window, Splits, Pad;
        public float ScaleLog2;
        public int Pad2;
    }

    /// <summary>Largest query-head group one decode CTA serves; larger groups run in chunks (grid z).</summary>
    public const int DecodeMaxGroup = 8;

    /// <summary>Whether the split-KV decode kernel handles this shape (head_dim a multiple of 4, at most 256).</summary>
    public static bool DecodeSupports(int headDim) => headDim % 4 == 0 && headDim <= MaxHeadDim;

    /// <summary>
    /// The decode kernel a new <c>CudaBackend</c> uses. v3a until the fused kernel is measured on the H100
    /// (flip to <see cref="DecodeAttentionVariant.Fused"/> here); <c>NIBBLE_DECODE_ATTENTION=fused|v3a|v3b</c> overrides it
    /// per process (<see cref="DecodeFromEnvironment"/>).
    /// </summary>
    public static DecodeAttentionVariant DefaultDecode { get; set; } = DecodeAttentionVariant.V3a;

    /// <summary>Environment variable naming the decode kernel (fused, v3a or v3b).</summary>
    public const string DecodeEnvironmentVariable = "NIBBLE_DECODE_ATTENTION";

    /// <summary>Most splits the fused kernel merges (its last CTA keeps one weight per split and head in shared memory).</summary>
    public const int FusedMaxSplits = 256;

    /// <summary>Ticket counters one fused launch needs: one per (kv head, head chunk), zero before the first launch.</summary>
    public static int FusedTickets(int heads, int kvHeads) => kvHeads * ((heads / kvHeads + DecodeMaxGroup - 1) / DecodeMaxGroup);

    /// <summary>Parses fused, v3a or v3b (case-insensitive); anything else is a <see cref="NibbleException"/> naming the choices.</summary>
    public static DecodeAttentionVariant ParseDecodeVariant(string text, string source) => text.Trim().ToLowerInvariant() switch
    {
        "fused" => DecodeAttentionVariant.Fused,
        "v3a" => DecodeAttentionVariant.V3a,
        "v3b" => DecodeAttentionVariant.V3b,
        _ => throw new NibbleException($"{source} is '{text}', which names no decode-attention kernel; use fused, v3a or v3b."),
    };

    /// <summary><see cref="DefaultDecode"/>, or the kernel <c>NIBBLE_DECODE_ATTENTION</c> names when it is set.</summary>
    public static DecodeAttentionVariant DecodeFromEnvironment()
    {
        string? v = Environment.GetEnvironmentVariable(DecodeEnvironmentVariable);
        return string.IsNullOrWhiteSpace(v) ? DefaultDecode : ParseDecodeVariant(v, DecodeEnvironmentVariable);
    }

    /// <summary>
    /// Splits of the decode kernel for a range of <paramref name="keys"/> positions. v3a/v3b: about two CTAs per SM over
    /// (kvHeads × head chunks × splits), each split at least one tile (64 keys for head_dim ≤ 128 and groups ≤ 4,
    /// fewer otherwise), at most 256. Fused: the same upper bound, but each split gets at least
    /// <see cref="FusedMinTilesPerSplit"/> tiles as long as the CTAs still cover half the SMs, and the tiles are spread
    /// evenly (no trailing stub split): a short cache then runs a few fat splits whose fixed cost (q load, warp merge,
    /// partial write, ticket) is paid fewer times, and the last CTA merges fewer partials.
    /// </summary>
    public static int ChooseDecodeSplits(int heads, int kvHeads, int headDim, int keys, int multiprocessors, DecodeAttentionVariant variant = DecodeAttentionVariant.V3a)
    {
        int group = heads / kvHeads;
        int chunks = (group + DecodeMaxGroup - 1) / DecodeMaxGroup;
        var (_, _, kpw) = DecodeShape(headDim, group);
        int unit = 8 * kpw;
        long ctas = (long)kvHeads * chunks;
        int wanted = (int)Math.Max(1, (2L * multiprocessors + ctas - 1) / ctas);
        int tiles = Math.Max(1, (keys + unit - 1) / unit);
        if (variant != DecodeAttentionVariant.Fused) return Math.Clamp(Math.Min(wanted, tiles), 1, 256);
        int cover = (int)Math.Max(1, (multiprocessors / 2 + ctas - 1) / ctas);
        int fat = (tiles + FusedMinTilesPerSplit - 1) / FusedMinTilesPerSplit;
        int splits = Math.Clamp(Math.Min(wanted, Math.Min(tiles, Math.Max(cover, fat))), 1, FusedMaxSplits);
        int perSplit = (tiles + splits - 1) / splits;
        return (tiles + perSplit - 1) / perSplit;
    }

    /// <summary>Least tiles (8 warp steps of keys) per split the fused kernel's split choice aims for on short caches.</summary>
    public const int FusedMinTilesPerSplit = 4;

    static (int C, int Gm, int Kpw) DecodeShape(int headDim, int group)
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
        int capacity, ulong positions, int posStart, int window, int splits, ulong partialAcc, ulong partialMl, bool v3b = false) =>
        Decode(kernels, stream, q, keys, values, output, heads, kvHeads, headDim, capacity, positions, posStart, window, splits, partialAcc, partialMl,
            v3b ? DecodeAttentionVariant.V3b : DecodeAttentionVariant.V3a, 0);

    /// <summary>
    /// Split-KV decode of one token with the chosen kernel. <see cref="DecodeAttentionVariant.Fused"/> with
    /// <paramref name="splits"/> &gt; 1 needs <paramref name="tickets"/>: <see cref="FusedTickets"/> zeroed uint32
    /// counters that only this stream uses (each launch leaves them zero, so one block serves every layer and every
    /// graph replay), and at most <see cref="FusedMaxSplits"/> splits.
    /// </summary>
    public static void Decode(KernelCache kernels, CudaStream stream, ulong q, ulong keys, ulong values, ulong output, int heads, int kvHeads, int headDim,
        int capacity, ulong positions, int posStart, int window, int splits, ulong partialAcc, ulong partialMl, DecodeAttentionVariant variant, ulong tickets)
    {
        if (!DecodeSupports(headDim)) throw new NibbleException($"The CUDA decode attention kernel needs head_dim a multiple of 4 up to {MaxHeadDim}, the model has {headDim}; use the CPU backend.");
        if (heads % kvHeads != 0) throw new ArgumentException($"{heads} query heads do not group over {kvHeads} kv heads.");
        bool fused = variant == DecodeAttentionVariant.Fused;
        if (fused && splits > 1 && tickets == 0) throw new ArgumentException("The fused decode kernel needs its ticket counters when it splits.", nameof(tickets));
        if (fused && splits > FusedMaxSplits) throw new ArgumentOutOfRangeException(nameof(splits), $"The fused decode kernel merges at most {FusedMaxSplits} splits.");
        if (splits > 1 && (partialAcc == 0 || partialMl == 0)) throw new ArgumentException("A split decode needs its partial buffers.");
        int group = heads / kvHeads;
        var (c, gm, _) = DecodeShape(headDim, group);
        int chunks = (group + gm - 1) / gm;
        var p = new DecodeParams
        {
            Q = q, Keys = keys, Values = values, Out = output, PartialAcc = partialAcc, PartialMl = partialMl, Positions = positions, Tickets = tickets,
            PosStart = posStart, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Capacity = capacity, Window = window, Splits = splits,
            ScaleLog2 = (float)(1.4426950408889634 / Math.Sqrt(headDim)),
        };
        string prefix = variant switch { DecodeAttentionVariant.V3b => "v3b_", DecodeAttentionVariant.Fused => "fused_", _ => "" };
        var module = kernels.Load("Attention.cu");
        module.Function($"decode_attention_{prefix}c{c}_g{gm}").Launch(stream, ((uint)kvHeads, (uint)splits, (uint)chunks), 256, p);
        if (splits > 1 && !fused) module.Function("decode_combine").Launch(stream, ((uint)heads, 1, 1), 64, p);
    }
}
