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
