using System.Runtime.CompilerServices;
using Nibble.Backend;
using Nibble.Cuda.Kernels;
using Nibble.Cuda.Native;
using Nibble.Formats;
using Tensor = Nibble.Backend.Tensor;

namespace Nibble.Cuda.Backend;

/// <summary>How <see cref="CudaBackend.MatMul"/> feeds F32 activations to the BF16 tensor-core GEMM.</summary>
public enum DenseMatMulPrecision
{
    /// <summary>x = hi + lo, both BF16, stacked into one GEMM of 2M rows: ~16 mantissa bits of x, matches the float32 CPU backend to ~1e-5 relative.</summary>
    SplitBf16,

    /// <summary>x rounded to BF16 once (the usual bf16 inference numerics): ~3e-3 relative error per product, half the prefill FLOPs.</summary>
    Bf16,
}

/// <summary>
/// The CUDA implementation of <see cref="IBackend"/>: F32 activations and KV cache in device memory, BF16 (or F32)
/// weights uploaded once from the memory-mapped checkpoint, linears through cuBLASLt, every other op an NVRTC kernel
/// from Kernels/. Everything runs in order on one stream; host-side results (<see cref="Tensor.CopyTo"/>,
/// <see cref="Route"/>) wait for it. Device memory comes from a caching pool and is freed when the backend is disposed.
/// </summary>
public sealed unsafe class CudaBackend : IBackend, IDisposable
{
    readonly bool _ownsContext, _ownsKernels, _ownsStream;
    readonly DeviceMemoryPool _pool;
    readonly DenseGemm _gemm;
    readonly ConditionalWeakTable<SafetensorsCheckpoint, Dictionary<string, CudaTensor>> _weights = new();
    readonly ConditionalWeakTable<RopeTable, CudaTensor> _ropeFrequencies = new();
    bool _disposed;

    public CudaBackend(CudaContext context, KernelCache? kernels = null, CudaStream? stream = null)
        : this(context, kernels, stream, ownsContext: false) { }

    CudaBackend(CudaContext context, KernelCache? kernels, CudaStream? stream, bool ownsContext)
    {
        Context = context;
        _ownsContext = ownsContext;
        _ownsKernels = kernels is null;
        _ownsStream = stream is null;
        Kernels = kernels ?? new KernelCache(context);
        Stream = stream ?? CudaStream.Create(context);
        _pool = new DeviceMemoryPool(context, Stream);
        _gemm = new DenseGemm(context, _pool);
    }

    /// <summary>Opens GPU <paramref name="ordinal"/> with its own context, kernel cache and stream (all disposed with the backend).</summary>
    public static CudaBackend Open(int ordinal = 0)
    {
        var context = CudaContext.Open(ordinal);
        try { return new CudaBackend(context, null, null, ownsContext: true); }
        catch { context.Dispose(); throw; }
    }

    public string Name => "cuda";
    public CudaContext Context { get; }
    public KernelCache Kernels { get; }
    public CudaStream Stream { get; }

    /// <summary>Numerics of BF16-weight linears; default <see cref="DenseMatMulPrecision.SplitBf16"/> (parity with the CPU backend).</summary>
    public DenseMatMulPrecision MatMulPrecision { get; set; } = DenseMatMulPrecision.SplitBf16;

    /// <summary>Device bytes held by the backend's pool (weights, caches, activations, cached free blocks).</summary>
    public long AllocatedBytes => _pool.AllocatedBytes;

    /// <summary>Fresh activation bytes after which the pool collects garbage before allocating more (default 256 MiB).</summary>
    public long CollectAfterBytes { get => _pool.CollectAfterBytes; set => _pool.CollectAfterBytes = value; }

    /// <summary>Waits until every queued op has finished (for timing).</summary>
    public void Synchronize() => Stream.Synchronize();

    internal DeviceBlock Rent(long bytes, bool transient = true) => _pool.Rent(bytes, transient);

    internal void Memset(ulong pointer, long bytes)
    {
        Context.Bind();
        CudaException.Check(Driver.cuMemsetD8Async(pointer, 0, (nuint)bytes, Stream.Handle), "cuMemsetD8Async");
    }

    /// <summary>Host → device on the stream. From pageable memory the driver stages the source before returning, so it may be reused at once.</summary>
    internal void Upload(ulong pointer, void* host, long bytes)
    {
        if (bytes == 0) return;
        ThrowIfCapturing("a host-to-device copy");
        Context.Bind();
        CudaException.Check(Driver.cuMemcpyHtoDAsync(pointer, host, (nuint)bytes, Stream.Handle), "cuMemcpyHtoDAsync");
    }

    /// <summary>A small rented block holding <paramref name="values"/> (ids, positions, rows, scales); dispose after queuing its user.</summary>
    DeviceBlock UploadBlock<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        var block = Rent((long)values.Length * sizeof(T));
        fixed (T* p = values) Upload(block.Pointer, p, (long)values.Length * sizeof(T));
        return block;
    }

    CudaTensor Owned(TensorDType dtype, int[] shape, bool transient = true)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        return new CudaTensor(this, dtype, shape, Rent(count * (dtype == TensorDType.BF16 ? 2 : 4), transient));
    }

    CudaTensor D(Tensor t)
    {
        if (t is not CudaTensor c) throw new ArgumentException($"The CUDA backend got a {t.GetType().Name}; create tensors with this backend (Zeros/FromHost/Weight).");
        if (c.Backend != this) throw new ArgumentException("The tensor belongs to another CUDA backend.");
        return c;
    }

    CudaTensor F32(Tensor t, string what)
    {
        var c = D(t);
        if (c.DType != TensorDType.F32) throw new ArgumentException($"{what} must be F32, got {c.DType}.");
        return c;
    }

    static void SameCount(Tensor a, Tensor b, string op)
    {
        if (a.ElementCount != b.ElementCount) throw new ArgumentException($"{op}: {a.ShapeText} and {b.ShapeText} differ in size.");
    }

    public Tensor Zeros(params int[] shape)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var t = Owned(TensorDType.F32, shape);
        Memset(t.Pointer, t.Bytes);
        return t;
    }

    public Tensor FromHost(float[] values, params int[] shape)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var t = Owned(TensorDType.F32, shape);
        if (t.ElementCount != values.Length) throw new ArgumentException($"{values.Length} values do not fill shape {t.ShapeText}.", nameof(values));
        fixed (float* p = values) Upload(t.Pointer, p, t.Bytes);
        return t;
    }

    /// <summary>A BF16 tensor from bit patterns (tests and converted weights).</summary>
    public Tensor FromHostBf16(ushort[] bits, params int[] shape)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var t = Owned(TensorDType.BF16, shape, transient: false);
        if (t.ElementCount != bits.Length) throw new ArgumentException($"{bits.Length} values do not fill shape {t.ShapeText}.", nameof(bits));
        fixed (ushort* p = bits) Upload(t.Pointer, p, t.Bytes);
        return t;
    }

    /// <summary>Uploads a checkpoint tensor once per (checkpoint, name); a tied lm_head shares the embedding's copy.</summary>
    public Tensor Weight(SafetensorsCheckpoint checkpoint, string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var cache = _weights.GetOrCreateValue(checkpoint);
        lock (cache)
        {
            if (cache.TryGetValue(name, out var cached)) return cached;
            var info = checkpoint.GetInfo(name);
            var dtype = info.DType switch
            {
                SafetensorsDType.BF16 => TensorDType.BF16,
                SafetensorsDType.F32 => TensorDType.F32,
                _ => throw new NibbleException($"Tensor '{name}' is {info.DType}; the CUDA backend reads BF16 or F32 weights (convert the checkpoint, e.g. F16 to BF16)."),
            };
            var t = Owned(dtype, info.Shape.Select(d => checked((int)d)).ToArray(), transient: false);
            Upload(t.Pointer, (void*)checkpoint.GetPointer(name), t.Bytes);
            cache[name] = t;
            return t;
        }
    }

    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor output)
    {
        var t = D(table); var o = F32(output, "Embedding output");
        if (t.DType == TensorDType.I32) throw new ArgumentException("An embedding table is BF16 or F32.");
        foreach (int id in ids)
            if ((uint)id >= (uint)t.Rows)
                throw new NibbleException($"Token id {id} is outside the vocabulary of {t.Rows}; the tokenizer does not match the model.");
        if (o.ElementCount != (long)ids.Length * t.RowLength) throw new ArgumentException($"Embedding output {o.ShapeText} is not [{ids.Length}, {t.RowLength}].");
        if (IsCapturing && ids.Length == 1)
        {
            // Graph capture: the token id is read from the step inputs in device memory at replay.
            EmbeddingKernel.Run(Kernels, Stream, t.Pointer, t.DType == TensorDType.BF16, StepInputs.Pointer, o.Pointer, 1, t.RowLength);
            GC.KeepAlive(t); GC.KeepAlive(o);
            return;
        }
        using var idBlock = UploadBlock(ids);
        EmbeddingKernel.Run(Kernels, Stream, t.Pointer, t.DType == TensorDType.BF16, idBlock.Pointer, o.Pointer, ids.Length, t.RowLength);
        GC.KeepAlive(t); GC.KeepAlive(o);
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor output) => Norm(x, null, weight, eps, output);

    public void AddRmsNorm(Tensor residual, Tensor delta, Tensor weight, float eps, Tensor output) => Norm(residual, delta, weight, eps, output);

    void Norm(Tensor x, Tensor? delta, Tensor weight, float eps, Tensor output)
    {
        var xs = F32(x, "RMSNorm input"); var w = D(weight); var o = F32(output, "RMSNorm output");
        var d = delta is null ? null : F32(delta, "residual delta");
        int dim = checked((int)w.ElementCount);
        if (xs.ElementCount % dim != 0) throw new ArgumentException($"RMSNorm: {xs.ShapeText} does not split into rows of {dim}.");
        SameCount(xs, o, "RMSNorm");
        if (d is not null) SameCount(xs, d, "AddRmsNorm");
        RmsNormKernel.Run(Kernels, Stream, xs.Pointer, d?.Pointer ?? 0, w.Pointer, w.DType == TensorDType.BF16, eps, o.Pointer, checked((int)(xs.ElementCount / dim)), dim);
        GC.KeepAlive(xs); GC.KeepAlive(w); GC.KeepAlive(o); GC.KeepAlive(d);
    }

    public void Add(Tensor x, Tensor delta)
    {
        var a = F32(x, "Add target"); var b = F32(delta, "Add delta");
        SameCount(a, b, "Add");
        ElementwiseKernel.Add(Kernels, Stream, a.Pointer, b.Pointer, a.ElementCount);
        GC.KeepAlive(a); GC.KeepAlive(b);
    }

    public void MatMul(Tensor input, Tensor weight, Tensor? bias, Tensor output)
    {
        var a = F32(input, "MatMul input"); var w = D(weight); var c = F32(output, "MatMul output");
        var b = bias is null ? null : D(bias);
        int k = w.RowLength, n = w.Rows, m = a.Rows;
        if (w.Rank != 2 || a.RowLength != k || c.RowLength != n || c.Rows != m)
            throw new ArgumentException($"MatMul shapes do not agree: input {a.ShapeText}, weight {w.ShapeText}, output {c.ShapeText}.");
        if (b is not null && b.ElementCount != n) throw new ArgumentException($"MatMul bias {b.ShapeText} does not match {n} outputs.");
        if (m == 0) return;
        if (w.DType == TensorDType.I32) throw new ArgumentException("MatMul weights are BF16 or F32.");

        bool bf16 = w.DType == TensorDType.BF16;
        bool split = bf16 && MatMulPrecision == DenseMatMulPrecision.SplitBf16;
        int rows = split ? 2 * m : m;
        DeviceBlock? xBf16 = null, y = null;
        try
        {
            ulong x = a.Pointer;
            if (bf16)
            {
                xBf16 = Rent((long)rows * k * 2);
                DenseMatMulKernel.Split(Kernels, Stream, a.Pointer, xBf16.Pointer, (long)m * k, split);
                x = xBf16.Pointer;
            }
            bool direct = !split && b is null;
            if (!direct) y = Rent((long)rows * n * 4);
            _gemm.Run(Stream, bf16, x, w.Pointer, direct ? c.Pointer : y!.Pointer, rows, n, k);
            if (!direct)
                DenseMatMulKernel.Combine(Kernels, Stream, y!.Pointer, b?.Pointer ?? 0, b?.DType == TensorDType.BF16, c.Pointer, (long)m * n, n, split);
        }
        finally
        {
            xBf16?.Dispose();
            y?.Dispose();
        }
        GC.KeepAlive(a); GC.KeepAlive(w); GC.KeepAlive(b); GC.KeepAlive(c);
    }

    /// <summary>Positions on the device: none when consecutive (the kernel adds the start), else an uploaded block.</summary>
    (DeviceBlock? Block, int Start) Positions(ReadOnlySpan<int> positions)
    {
        if (IsCapturing && positions.Length == 1) return (null, 0);
        bool consecutive = true;
        for (int i = 1; i < positions.Length && consecutive; i++) consecutive = positions[i] == positions[0] + i;
        return consecutive ? (null, positions.IsEmpty ? 0 : positions[0]) : (UploadBlock(positions), 0);
    }

    CudaTensor InverseFrequencies(RopeTable rope) =>
        _ropeFrequencies.GetValue(rope, r => (CudaTensor)FromHostPersistent(r.InverseFrequencies));

    Tensor FromHostPersistent(float[] values)
    {
        var t = Owned(TensorDType.F32, [values.Length], transient: false);
        fixed (float* p = values) Upload(t.Pointer, p, t.Bytes);
        return t;
    }

    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, RopeTable rope)
    {
        var xs = F32(x, "RoPE input");
        if (positions.Length == 0) return;
        if (xs.ElementCount % positions.Length != 0 || xs.ElementCount / positions.Length % headDim != 0 || headDim % 2 != 0 || rope.HeadDim != headDim)
            throw new ArgumentException($"RoPE: {xs.ShapeText} is not [{positions.Length}, heads·{headDim}] (table for head_dim {rope.HeadDim}).");
        var freq = InverseFrequencies(rope);
        var (block, start) = Positions(positions);
        using (block)
            RopeKernel.Run(Kernels, Stream, xs.Pointer, positions.Length, checked((int)(xs.ElementCount / positions.Length)), headDim, PositionPointer(block), start, freq.Pointer);
        GC.KeepAlive(xs); GC.KeepAlive(freq);
    }

    public void Attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, ReadOnlySpan<int> positions, int? slidingWindow, Tensor output)
    {
        var c = cache as CudaKvCache ?? throw new ArgumentException("The CUDA backend needs a CudaKvCache (create it with this backend).", nameof(cache));
        var qs = F32(q, "q"); var ks = F32(k, "k"); var vs = F32(v, "v"); var o = F32(output, "attention output");
        int d = c.HeadDim, kvHeads = c.KvHeads, tokens = positions.Length, cap = c.Capacity;
        if (tokens == 0) return;
        int heads = qs.RowLength / d;
        if (heads % kvHeads != 0) throw new ArgumentException($"{heads} query heads do not group over {kvHeads} kv heads.");
        if (qs.Rows != tokens || ks.RowLength != kvHeads * d || vs.RowLength != kvHeads * d || o.ElementCount != qs.ElementCount)
            throw new ArgumentException($"Attention shapes do not agree: q {qs.ShapeText}, k {ks.ShapeText}, v {vs.ShapeText}, output {o.ShapeText} for {tokens} tokens.");
        int window = slidingWindow is int sw && sw > 0 ? sw : 0;
        int maxKeys = 0;
        foreach (int pos in positions)
        {
            if ((uint)pos >= (uint)cap)
                throw new NibbleException($"Position {pos} does not fit the KV cache of {cap} tokens; shorten the prompt or raise the context length.");
            maxKeys = Math.Max(maxKeys, window > 0 ? Math.Min(pos + 1, window) : pos + 1);
        }
        var (block, start) = Positions(positions);
        bool decode = tokens == 1 && AttentionKernel.DecodeSupports(d);
        if (IsCapturing && (!decode || UseLegacyDecodeAttention)) ThrowIfCapturing("the v2 attention kernel (its key splits are fixed at launch)");
        // Decode: split-KV kernel; its splits follow the keys seen now, or the capacity while capturing a graph (the
        // graph replays at every later length, and the kernel sizes its chunks from the device-side position).
        int splitKeys = IsCapturing ? (window > 0 ? Math.Min(window, cap) : cap) : maxKeys;
        var variant = DecodeAttention;
        if (variant == DecodeAttentionVariant.Fused && AttentionKernel.FusedTickets(heads, kvHeads) > FusedTicketCount) variant = DecodeAttentionVariant.V3a;
        int splits = decode
            ? AttentionKernel.ChooseDecodeSplits(heads, kvHeads, d, splitKeys, Context.MultiprocessorCount, variant)
            : AttentionKernel.ChooseSplits(tokens, heads, maxKeys, Context.MultiprocessorCount);
        DeviceBlock? partialAcc = null, partialMl = null;
        try
        {
            ulong pp = PositionPointer(block);
            AttentionKernel.Append(Kernels, Stream, ks.Pointer, vs.Pointer, c.Keys(layer), c.Values(layer), tokens, kvHeads, d, cap, pp, start);
            if (splits > 1)
            {
                partialAcc = Rent((long)tokens * heads * splits * d * 4);
                partialMl = Rent((long)tokens * heads * splits * 2 * 4);
            }
            if (decode && !UseLegacyDecodeAttention)
                AttentionKernel.Decode(Kernels, Stream, qs.Pointer, c.Keys(layer), c.Values(layer), o.Pointer, heads, kvHeads, d, cap, pp, start, window,
                    splits, partialAcc?.Pointer ?? 0, partialMl?.Pointer ?? 0, variant, variant == DecodeAttentionVariant.Fused && splits > 1 ? FusedTickets.Pointer : 0);
            else
            {
                if (decode) splits = Math.Min(splits, AttentionKernel.ChooseSplits(tokens, heads, maxKeys, Context.MultiprocessorCount));
                AttentionKernel.Run(Kernels, Stream, qs.Pointer, c.Keys(layer), c.Values(layer), o.Pointer, tokens, heads, kvHeads, d, cap, pp, start, window, maxKeys,
                    splits, partialAcc?.Pointer ?? 0, partialMl?.Pointer ?? 0);
            }
        }
        finally
        {
            block?.Dispose();
            partialAcc?.Dispose();
            partialMl?.Dispose();
        }
        GC.KeepAlive(qs); GC.KeepAlive(ks); GC.KeepAlive(vs); GC.KeepAlive(o); GC.KeepAlive(c);
    }

    public void SiluMul(Tensor gate, Tensor up, Tensor output)
    {
        var g = F32(gate, "gate"); var u = F32(up, "up"); var o = F32(output, "SiluMul output");
        SameCount(g, u, "SiluMul"); SameCount(g, o, "SiluMul");
        ElementwiseKernel.SiluMul(Kernels, Stream, g.Pointer, u.Pointer, o.Pointer, g.ElementCount);
        GC.KeepAlive(g); GC.KeepAlive(u); GC.KeepAlive(o);
    }

    /// <summary>Copies the router logits to the host (waiting for the stream) and routes there with the CPU reference's exact rules.</summary>
    public MoeRouting Route(Tensor routerLogits, int topK, bool renormalize)
    {
        var logits = F32(routerLogits, "router logits");
        ThrowIfCapturing("MoE routing on the host");
        return Nibble.Cpu.MoeRouter.Route(logits.ToArray(), logits.Rows, logits.RowLength, topK, renormalize);
    }

    public void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination)
    {
        var s = F32(source, "gather source"); var d = F32(destination, "gather destination");
        CheckRows(s, d, rows);
        if (rows.IsEmpty) return;
        using var rowBlock = UploadBlock(rows);
        MoeRowsKernel.Gather(Kernels, Stream, s.Pointer, rowBlock.Pointer, d.Pointer, rows.Length, s.RowLength);
        GC.KeepAlive(s); GC.KeepAlive(d);
    }

    public void ScatterAddRows(Tensor source, ReadOnlySpan<int> rows, ReadOnlySpan<float> scales, Tensor destination)
    {
        var s = F32(source, "scatter source"); var d = F32(destination, "scatter destination");
        CheckRows(d, s, rows);
        if (scales.Length != rows.Length) throw new ArgumentException($"{scales.Length} scales for {rows.Length} rows.");
        if (rows.IsEmpty) return;
        using var rowBlock = UploadBlock(rows);
        using var scaleBlock = UploadBlock(scales);
        MoeRowsKernel.ScatterAdd(Kernels, Stream, s.Pointer, rowBlock.Pointer, scaleBlock.Pointer, d.Pointer, rows.Length, s.RowLength);
        GC.KeepAlive(s); GC.KeepAlive(d);
    }

    /// <summary>rows index <paramref name="indexed"/>; <paramref name="packed"/> has one row per index.</summary>
    static void CheckRows(CudaTensor indexed, CudaTensor packed, ReadOnlySpan<int> rows)
    {
        if (indexed.RowLength != packed.RowLength || packed.Rows < rows.Length)
            throw new ArgumentException($"Row copy shapes do not agree: {indexed.ShapeText} and {packed.ShapeText} for {rows.Length} rows.");
        foreach (int r in rows)
            if ((uint)r >= (uint)indexed.Rows) throw new ArgumentOutOfRangeException(nameof(rows), $"row {r} outside {indexed.ShapeText}");
    }

    public void MulSigmoidGate(Tensor x, Tensor gate)
    {
        var s = F32(x, "gated tensor"); var g = F32(gate, "gate");
        if (g.ElementCount != s.Rows) throw new ArgumentException($"MulSigmoidGate: gate {g.ShapeText} is not one value per row of {s.ShapeText}.");
        ElementwiseKernel.SigmoidGate(Kernels, Stream, s.Pointer, g.Pointer, s.ElementCount, s.RowLength);
        GC.KeepAlive(s); GC.KeepAlive(g);
    }

    /// <summary>Decode through the v2 warp-per-key attention kernel instead of the split-KV decode kernel (benchmarks and cross-checks).</summary>
    public bool UseLegacyDecodeAttention { get; set; }

    /// <summary>
    /// The split-KV decode kernel: <see cref="AttentionKernel.DefaultDecode"/> or what NIBBLE_DECODE_ATTENTION names
    /// (fused, v3a, v3b) when the backend is created. Fused falls back to v3a for more than
    /// <see cref="FusedTicketCount"/> (kv head, head chunk) pairs.
    /// </summary>
    public DecodeAttentionVariant DecodeAttention { get; set; } = AttentionKernel.DecodeFromEnvironment();

    /// <summary>Ticket counters the backend keeps for the fused decode kernel (4 KiB; every layer and graph replay shares them).</summary>
    public const int FusedTicketCount = 1024;

    DeviceBlock? _fusedTickets;

    // Persistent and zeroed once: each fused launch leaves its counters at zero, and launches are ordered on the one
    // stream, so no reset is needed between layers or graph replays. Rented on the first split fused decode (the eager
    // step before a capture, normally); if that happens while capturing, the memset is recorded into the graph and
    // re-zeroes counters that are already zero at each replay.
    DeviceBlock FusedTickets
    {
        get
        {
            if (_fusedTickets is null)
            {
                _fusedTickets = Rent(FusedTicketCount * 4, transient: false);
                Memset(_fusedTickets.Pointer, FusedTicketCount * 4);
            }
            return _fusedTickets;
        }
    }

    // ---- CUDA graphs: capture one decode step, replay it with the step's inputs in device memory ----

    DeviceBlock? _stepInputs;
    int _captureDepth;

    /// <summary>True while <see cref="CaptureGraph"/> records: ops then take a one-token step's id and position from <see cref="StepInputs"/>.</summary>
    public bool IsCapturing => _captureDepth > 0;

    /// <summary>[token id, position] of the next replayed decode step, in device memory (persistent).</summary>
    internal DeviceBlock StepInputs => _stepInputs ??= Rent(16, transient: false);

    ulong PositionPointer(DeviceBlock? uploaded) => uploaded?.Pointer ?? (IsCapturing ? StepInputs.Pointer + 4 : 0);

    void ThrowIfCapturing(string what)
    {
        if (IsCapturing)
            throw new NibbleException($"The decode step needs {what}, which a CUDA graph cannot capture; run this model without CUDA graphs.");
    }

    /// <summary>Writes the token id and position the next graph replay reads (ordered on the stream before the replay).</summary>
    public void SetStepInputs(int token, int position)
    {
        ThrowIfCapturing("new step inputs");
        ReadOnlySpan<int> v = [token, position];
        fixed (int* p = v) Upload(StepInputs.Pointer, p, 8);
    }

    /// <summary>
    /// Records everything <paramref name="step"/> queues on the stream (nothing runs) into a CUDA graph
    /// (cuStreamBeginCapture in relaxed mode … cuStreamEndCapture, cuGraphInstantiateWithFlags). Every block the step
    /// rents stays reserved for the graph until it is disposed; one-token Embedding/Rope/Attention read their id and
    /// position from <see cref="StepInputs"/>. Throws <see cref="NibbleException"/> (and leaves no capture behind)
    /// when the step cannot be captured, e.g. MoE routing on the host.
    /// </summary>
    public CudaGraph CaptureGraph(Func<Tensor> step)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (IsCapturing) throw new InvalidOperationException("A CUDA graph capture is already running on this backend.");
        _ = StepInputs;
        Context.Bind();
        _pool.BeginCapture();
        CudaException.Check(Driver.cuStreamBeginCapture(Stream.Handle, Driver.StreamCaptureModeRelaxed), "cuStreamBeginCapture");
        _captureDepth++;
        Tensor? output = null;
        Exception? failure = null;
        try { output = step(); }
        catch (Exception e) { failure = e; }
        finally { _captureDepth--; }
        Context.Bind();
        int r = Driver.cuStreamEndCapture(Stream.Handle, out var graph);
        var reserved = _pool.EndCapture();
        IntPtr exec = IntPtr.Zero;
        if (failure is null && r == 0)
        {
            r = Driver.cuGraphInstantiateWithFlags(out exec, graph, 0);
            if (r != 0) exec = IntPtr.Zero;
        }
        if (graph != IntPtr.Zero) Driver.cuGraphDestroy(graph);
        if (exec == IntPtr.Zero)
        {
            _pool.ReleaseCapture(reserved);
            if (failure is NibbleException) throw failure;
            string why = failure?.Message ?? $"CUresult {r}";
            throw failure is null
                ? new NibbleException($"Capturing the decode step as a CUDA graph failed ({why}); run without CUDA graphs.")
                : new NibbleException($"Capturing the decode step as a CUDA graph failed ({why}); run without CUDA graphs.", failure);
        }
        return new CudaGraph(this, exec, reserved, output!);
    }

    internal void ReleaseGraph(IntPtr exec, HashSet<ulong> reserved)
    {
        if (_disposed) return;
        Context.Bind();
        try { Stream.Synchronize(); } catch (CudaException) { }
        Driver.cuGraphExecDestroy(exec);
        _pool.ReleaseCapture(reserved);
    }

    public KvCache CreateKvCache(int layers, int kvHeads, int headDim, int capacity)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (headDim > AttentionKernel.MaxHeadDim)
            throw new NibbleException($"The CUDA attention kernel supports head_dim up to {AttentionKernel.MaxHeadDim}, the model has {headDim}; use the CPU backend.");
        return new CudaKvCache(this, layers, kvHeads, headDim, capacity);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try { Stream.Synchronize(); } catch (CudaException) { } // a failed kernel must not keep the memory
        _gemm.Dispose();
        _pool.Dispose();
        if (_ownsKernels) Kernels.Dispose();
        if (_ownsStream) Stream.Dispose();
        if (_ownsContext) Context.Dispose();
    }
}
