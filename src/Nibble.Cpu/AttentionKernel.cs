using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Nibble.Cpu;

/// <summary>
/// Causal grouped-query attention over a <see cref="CpuKvCache"/>: store the step's keys and values at
/// their positions, then for every query head softmax(q·Kᵀ/√d) over positions [start, pos] and the
/// weighted sum of V. Heads run in parallel; scores use a max-subtracted float32 softmax like the reference.
/// </summary>
public static unsafe class AttentionKernel
{
    public static void Run(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, CpuKvCache cache, int layer,
        ReadOnlySpan<int> positions, int? slidingWindow, Span<float> output, int heads)
    {
        int d = cache.HeadDim, kvHeads = cache.KvHeads, tokens = positions.Length, cap = cache.Capacity;
        if (heads % kvHeads != 0) throw new ArgumentException($"{heads} query heads do not group over {kvHeads} kv heads.");
        float[] keys = cache.Keys(layer), values = cache.Values(layer);
        int maxPos = 0;
        for (int t = 0; t < tokens; t++)
        {
            int pos = positions[t];
            if ((uint)pos >= (uint)cap)
                throw new NibbleException($"Position {pos} does not fit the KV cache of {cap} tokens; shorten the prompt or raise the context length.");
            maxPos = Math.Max(maxPos, pos);
            for (int g = 0; g < kvHeads; g++)
            {
                k.Slice((t * kvHeads + g) * d, d).CopyTo(keys.AsSpan((int)(((long)g * cap + pos) * d), d));
                v.Slice((t * kvHeads + g) * d, d).CopyTo(values.AsSpan((int)(((long)g * cap + pos) * d), d));
            }
        }

        int group = heads / kvHeads;
        float scale = 1f / MathF.Sqrt(d);
        int window = slidingWindow ?? int.MaxValue;
        if (tokens >= BlockedMinTokens)
        {
            Blocked(q, keys, values, cap, d, heads, group, positions, maxPos, window, scale, output);
            return;
        }
        fixed (float* qp = q) fixed (float* op = output) fixed (int* pp = positions) fixed (float* kp = keys) fixed (float* vp = values)
        {
            float* qPtr = qp, oPtr = op, kPtr = kp, vPtr = vp; int* pPtr = pp;
            int work = heads * tokens;
            int threads = work * (maxPos + 1) < 4096 ? 1 : Environment.ProcessorCount;
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, worker =>
            {
                var scores = new float[maxPos + 1];
                fixed (float* s = scores)
                    for (int item = worker; item < work; item += threads)
                    {
                        int h = item % heads, t = item / heads;
                        int g = h / group, pos = pPtr[t];
                        int start = window == int.MaxValue ? 0 : Math.Max(0, pos - window + 1);
                        float* qh = qPtr + ((long)t * heads + h) * d;
                        float* kh = kPtr + (long)g * cap * d;
                        float* vh = vPtr + (long)g * cap * d;
                        float* oh = oPtr + ((long)t * heads + h) * d;
                        float max = float.NegativeInfinity;
                        for (int j = start; j <= pos; j++)
                        {
                            float sc = Dot(qh, kh + (long)j * d, d) * scale;
                            s[j] = sc;
                            if (sc > max) max = sc;
                        }
                        float sum = 0;
                        for (int j = start; j <= pos; j++) { float e = MathF.Exp(s[j] - max); s[j] = e; sum += e; }
                        float inv = 1f / sum;
                        new Span<float>(oh, d).Clear();
                        for (int j = start; j <= pos; j++) Axpy(s[j] * inv, vh + (long)j * d, oh, d);
                    }
            });
        }
    }

    /// <summary>Query counts from which prefill uses GEMMs (scores = Q·Kᵀ, out = P·V) instead of one query at a time.</summary>
    internal static int BlockedMinTokens { get; set; } = 16;

    /// <summary>
    /// Prefill: per head, scores[T, L] = Q_h·K_gᵀ with the blocked GEMM, masked (causal and window) softmax
    /// per row, then out_h = P·V_g with V_g transposed once per kv head. The full T×L product does
    /// the masked half needlessly, but at GEMM speed that is far faster than per-query dot products.
    /// </summary>
    static void Blocked(ReadOnlySpan<float> q, float[] keys, float[] values, int cap, int d, int heads, int group,
        ReadOnlySpan<int> positions, int maxPos, int window, float scale, Span<float> output)
    {
        int tokens = positions.Length, length = maxPos + 1, ld = heads * d;
        var scores = new float[(long)tokens * length];
        var vT = new float[(long)d * length];
        fixed (float* qp = q) fixed (float* op = output) fixed (float* kp = keys) fixed (float* vp = values)
        fixed (float* sp = scores) fixed (float* vtp = vT)
        {
            for (int g = 0; g < heads / group; g++)
            {
                float* kg = kp + (long)g * cap * d, vg = vp + (long)g * cap * d;
                for (int j = 0; j < length; j++)
                    for (int i = 0; i < d; i++) vtp[(long)i * length + j] = vg[(long)j * d + i];
                for (int h = g * group; h < (g + 1) * group; h++)
                {
                    Gemm.MatMulTransB(qp + (long)h * d, ld, kg, d, sp, length, tokens, length, d);
                    for (int t = 0; t < tokens; t++)
                    {
                        int pos = positions[t];
                        int start = window == int.MaxValue ? 0 : Math.Max(0, pos - window + 1);
                        var row = new Span<float>(sp + (long)t * length, length);
                        row[..start].Clear();
                        var live = row[start..(pos + 1)];
                        System.Numerics.Tensors.TensorPrimitives.Multiply(live, scale, live);
                        System.Numerics.Tensors.TensorPrimitives.SoftMax(live, live);
                        row[(pos + 1)..].Clear();
                    }
                    Gemm.MatMulTransB(sp, length, vtp, length, op + (long)h * d, ld, tokens, d, length);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8) acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc);
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Axpy(float alpha, float* x, float* y, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var a = Vector256.Create(alpha);
            for (; i + 8 <= n; i += 8) Vector256.FusedMultiplyAdd(a, Vector256.Load(x + i), Vector256.Load(y + i)).Store(y + i);
        }
        for (; i < n; i++) y[i] += alpha * x[i];
    }
}
