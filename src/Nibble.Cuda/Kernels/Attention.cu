// Causal grouped-query attention over the F32 KV cache (CudaKvCache layout per layer: [kvHead][position][headDim]).
//   kv_append: keys/values of the step's tokens stored at their positions.
//   attention: CTA (head, token, split) of 4 warps; warp w takes keys in groups of KPW = 4 (keys 4w..4w+3, then 16 further, ...) of its split's range
//              with an online (running max) softmax in float32, lanes holding headDim/32 elements of q and of the
//              accumulator; the 4 warps merge in shared memory. With splits > 1 (decode over a long cache, the
//              flash-decoding idea: Dao et al., "Flash-Decoding for long-context inference", 2023) each split
//              writes its unnormalised (max, sum, acc) and attention_combine merges them.
// Numerics match the CPU reference's max-subtracted softmax up to float rounding (~1e-6 relative).
#include "Common.cuh"

#define WARPS 4
#define MAX_PER_LANE 8   // headDim <= 256
#define KPW 4            // keys per warp per step

struct KvAppendParams {
    const float* k;        // [tokens, kvHeads * headDim]
    const float* v;
    float* keys;           // [kvHeads, capacity, headDim]
    float* values;
    const int* positions;  // [tokens] or null (posStart + t)
    int posStart, kvHeads, headDim, capacity;
};
static_assert(sizeof(KvAppendParams) == 56, "KvAppendParams must match AttentionKernel.cs");

extern "C" __global__ void __launch_bounds__(256) kv_append(const KvAppendParams p) {
    const int t = blockIdx.x, g = blockIdx.y;
    const int pos = p.positions ? p.positions[t] : p.posStart + t;
    const size_t src = ((size_t)t * p.kvHeads + g) * p.headDim;
    const size_t dst = ((size_t)g * p.capacity + pos) * p.headDim;
    for (int i = threadIdx.x; i < p.headDim; i += blockDim.x) {
        p.keys[dst + i] = p.k[src + i];
        p.values[dst + i] = p.v[src + i];
    }
}

struct AttentionParams {
    const float* q;          // [tokens, heads * headDim]
    const float* keys;       // [kvHeads, capacity, headDim]
    const float* values;
    float* out;              // [tokens, heads * headDim]
    float* partialAcc;       // [tokens, heads, splits, headDim]   (splits > 1)
    float* partialMl;        // [tokens, heads, splits, 2]
    const int* positions;    // [tokens] or null (posStart + t)
    int posStart, heads, kvHeads, headDim;
    int capacity, window, splits, chunk;   // window <= 0: unlimited; chunk: keys per split
    float scale;
    int pad;
};
static_assert(sizeof(AttentionParams) == 96, "AttentionParams must match AttentionKernel.cs");

__device__ __forceinline__ float neg_inf() { return __uint_as_float(0xff800000u); }
__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }
__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }

extern "C" __global__ void __launch_bounds__(WARPS * 32) attention(const AttentionParams p) {
    const int h = blockIdx.x, t = blockIdx.y, split = blockIdx.z;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int d = p.headDim;
    const int g = h / (p.heads / p.kvHeads);
    const int pos = p.positions ? p.positions[t] : p.posStart + t;
    const int start = p.window > 0 ? imax(0, pos - p.window + 1) : 0;
    const int first = start + split * p.chunk;
    const int last = imin(pos, first + p.chunk - 1);

    const float* qh = p.q + ((size_t)t * p.heads + h) * d;
    float qr[MAX_PER_LANE], acc[MAX_PER_LANE];
#pragma unroll
    for (int c = 0; c < MAX_PER_LANE; ++c) {
        const int i = lane + 32 * c;
        qr[c] = i < d ? qh[i] : 0.f;
        acc[c] = 0.f;
    }
    float m = neg_inf(), l = 0.f;
    const float* kh = p.keys + (size_t)g * p.capacity * d;
    const float* vh = p.values + (size_t)g * p.capacity * d;
    // KPW keys per warp per step: their loads are independent, so each warp keeps several in flight (decode is
    // bound by memory latency, not arithmetic); the KPW dot products reduce interleaved across the warp.
    for (int base = first + warp * KPW; base <= last; base += WARPS * KPW) {
        float s[KPW];
#pragma unroll
        for (int u = 0; u < KPW; ++u) {
            s[u] = 0.f;
            if (base + u <= last) {
                const float* kj = kh + (size_t)(base + u) * d;
#pragma unroll
                for (int c = 0; c < MAX_PER_LANE; ++c) {
                    const int i = lane + 32 * c;
                    if (i < d) s[u] += qr[c] * kj[i];
                }
            }
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
#pragma unroll
            for (int u = 0; u < KPW; ++u) s[u] += __shfl_xor_sync(0xFFFFFFFFu, s[u], o);
        }
        float mNew = m;
#pragma unroll
        for (int u = 0; u < KPW; ++u) {
            s[u] *= p.scale;
            if (base + u <= last) mNew = fmaxf(mNew, s[u]);
        }
        const float corr = expf(m - mNew);
        float e[KPW];
        l *= corr;
#pragma unroll
        for (int u = 0; u < KPW; ++u) {
            e[u] = base + u <= last ? expf(s[u] - mNew) : 0.f;
            l += e[u];
        }
#pragma unroll
        for (int c = 0; c < MAX_PER_LANE; ++c) {
            const int i = lane + 32 * c;
            if (i < d) {
                float a = acc[c] * corr;
#pragma unroll
                for (int u = 0; u < KPW; ++u)
                    if (base + u <= last) a += e[u] * vh[(size_t)(base + u) * d + i];
                acc[c] = a;
            }
        }
        m = mNew;
    }

    __shared__ float smAcc[WARPS][MAX_PER_LANE * 32];
    __shared__ float smM[WARPS], smL[WARPS];
#pragma unroll
    for (int c = 0; c < MAX_PER_LANE; ++c) {
        const int i = lane + 32 * c;
        if (i < d) smAcc[warp][i] = acc[c];
    }
    if (lane == 0) { smM[warp] = m; smL[warp] = l; }
    __syncthreads();

    float mAll = smM[0];
#pragma unroll
    for (int w = 1; w < WARPS; ++w) mAll = fmaxf(mAll, smM[w]);
    float wgt[WARPS], lAll = 0.f;
#pragma unroll
    for (int w = 0; w < WARPS; ++w) {
        wgt[w] = smL[w] > 0.f ? expf(smM[w] - mAll) : 0.f;
        lAll += smL[w] * wgt[w];
    }
    const size_t slot = ((size_t)t * p.heads + h) * p.splits + split;
    if (p.splits == 1) {
        float* o = p.out + ((size_t)t * p.heads + h) * d;
        const float inv = 1.f / lAll;
        for (int i = threadIdx.x; i < d; i += blockDim.x) {
            float v = 0.f;
#pragma unroll
            for (int w = 0; w < WARPS; ++w) v += smAcc[w][i] * wgt[w];
            o[i] = v * inv;
        }
    } else {
        float* pa = p.partialAcc + slot * d;
        for (int i = threadIdx.x; i < d; i += blockDim.x) {
            float v = 0.f;
#pragma unroll
            for (int w = 0; w < WARPS; ++w) v += smAcc[w][i] * wgt[w];
            pa[i] = v;
        }
        if (threadIdx.x == 0) { p.partialMl[slot * 2] = lAll > 0.f ? mAll : neg_inf(); p.partialMl[slot * 2 + 1] = lAll; }
    }
}

// Merges the splits of one (head, token): out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M).
extern "C" __global__ void __launch_bounds__(256) attention_combine(const AttentionParams p) {
    const int h = blockIdx.x, t = blockIdx.y, d = p.headDim;
    const size_t base = ((size_t)t * p.heads + h) * p.splits;
    float mAll = neg_inf();
    for (int s = 0; s < p.splits; ++s) mAll = fmaxf(mAll, p.partialMl[(base + s) * 2]);
    float lAll = 0.f;
    for (int s = 0; s < p.splits; ++s) {
        const float l = p.partialMl[(base + s) * 2 + 1];
        if (l > 0.f) lAll += l * expf(p.partialMl[(base + s) * 2] - mAll);
    }
    const float inv = 1.f / lAll;
    float* o = p.out + ((size_t)t * p.heads + h) * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float v = 0.f;
        for (int s = 0; s < p.splits; ++s) {
            const float l = p.partialMl[(base + s) * 2 + 1];
            if (l > 0.f) v += p.partialAcc[(base + s) * d + i] * expf(p.partialMl[(base + s) * 2] - mAll);
        }
        o[i] = v * inv;
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// decode_attention_c{C}_g{GM}: one query token (decode) over the cache, split-KV ("flash-decoding", Dao et al. 2023;
// the same plan as FlashInfer's and vLLM's paged decode kernels, written here from the idea, not their code).
//   grid (kvHeads, splits, headChunks), 8 warps. A CTA owns one kv head g, one contiguous chunk of positions and up to
//   GM query heads of g's group: every K/V row it loads serves all of them (GQA: the group shares one read).
//   A warp takes TK consecutive keys per step (keys 8w·TK.. of the CTA's tile), each lane one float4 (C of them for
//   head_dim > 128) of each key and value row: all 2·TK·C 16-byte loads are issued before the first use, so a warp has
//   TK·1 KiB in flight. Scores reduce across the warp with xor shuffles; the softmax is online (running max and sum
//   per head, base-2 exponentials on log2(e)/√d-scaled q), then the 8 warps merge in shared memory in a fixed order
//   (deterministic). splits == 1 writes the normalised output, else the unnormalised (acc, m, l) of the chunk for
//   decode_combine.
//   The position comes from p.positions[0] when set (device memory: a captured CUDA graph replays every step with the
//   current position) and the chunk size is derived from it on the device, so one launch configuration serves any
//   length up to the capacity.
// Requires head_dim % 4 == 0 and <= 128·C.
// ---------------------------------------------------------------------------------------------------------------------
#define DWARPS 8

struct DecodeParams {
    const float* q;          // [heads * headDim] (one token)
    const float* keys;       // [kvHeads, capacity, headDim]
    const float* values;
    float* out;              // [heads * headDim]
    float* partialAcc;       // [heads, splits, headDim]  (splits > 1)
    float* partialMl;        // [heads, splits, 2]: running max (log2 units), sum
    const int* positions;    // [1] or null (posStart)
    unsigned* tickets;       // fused: [kvHeads * headChunks] split counters, zero between launches (each launch leaves them 0)
    int posStart, heads, kvHeads, headDim;
    int capacity, window, splits, pad;
    float scaleLog2;         // log2(e) / sqrt(headDim)
    int pad2;
};
static_assert(sizeof(DecodeParams) == 104, "DecodeParams must match AttentionKernel.cs");

#define FUSED_MAX_SPLITS 256

// L2-coherent loads (ld.global.cg: skip L1) for partials other CTAs of the same launch wrote.
__device__ __forceinline__ float2 ldcg_f2(const float* p) {
    float2 r;
    asm volatile("ld.global.cg.v2.f32 {%0,%1}, [%2];" : "=f"(r.x), "=f"(r.y) : "l"(p));
    return r;
}
__device__ __forceinline__ float4 ldcg_f4(const float* p) {
    float4 r;
    asm volatile("ld.global.cg.v4.f32 {%0,%1,%2,%3}, [%4];" : "=f"(r.x), "=f"(r.y), "=f"(r.z), "=f"(r.w) : "l"(p));
    return r;
}

__device__ __forceinline__ float4 f4(float x, float y, float z, float w) { float4 r; r.x = x; r.y = y; r.z = z; r.w = w; return r; }
__device__ __forceinline__ float2 f2(float x, float y) { float2 r; r.x = x; r.y = y; return r; }

__device__ __forceinline__ float4 ld_stream_f4(const float* p) {
    const u32x4 r = ldg_stream_v4(p);
    return f4(__uint_as_float(r.x), __uint_as_float(r.y), __uint_as_float(r.z), __uint_as_float(r.w));
}

// Sums each of the V = GM·TK per-lane partial scores over the warp and gives every lane all V totals. RS (v3b): a
// reduce-scatter (V-1 shuffles: at each xor step a lane keeps half of the values, adding its partner's copy of that
// half), a plain reduction for the remaining steps, then V broadcasts from the owning lanes: 2V-1+(5-log2 V)
// shuffles instead of 5V (v3a: xor-butterfly on every value), 63 instead of 160 for 4 heads x 8 keys.
template <int GM, int TK, bool RS>
__device__ __forceinline__ void warp_scores(float (&s)[GM][TK], int lane) {
    if (!RS) {
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
#pragma unroll
            for (int h = 0; h < GM; ++h)
#pragma unroll
                for (int j = 0; j < TK; ++j) s[h][j] += __shfl_xor_sync(0xFFFFFFFFu, s[h][j], o);
        return;
    }
    constexpr int V = GM * TK;   // a power of two <= 32
    constexpr int L = V >= 32 ? 5 : V >= 16 ? 4 : V >= 8 ? 3 : V >= 4 ? 2 : V >= 2 ? 1 : 0;
    float v[32];
#pragma unroll
    for (int h = 0; h < GM; ++h)
#pragma unroll
        for (int j = 0; j < TK; ++j) v[h * TK + j] = s[h][j];
#pragma unroll
    for (int step = 0; step < 5; ++step) {
        const int o = 16 >> step;
        if (step < L) {
            const int half = V >> (step + 1);
            const bool upper = (lane & o) != 0;
#pragma unroll
            for (int i = 0; i < 16; ++i) {
                if (i < half) {
                    const float send = upper ? v[i] : v[i + half];
                    const float recv = __shfl_xor_sync(0xFFFFFFFFu, send, o);
                    v[i] = (upper ? v[i + half] : v[i]) + recv;
                }
            }
        } else {
            v[0] += __shfl_xor_sync(0xFFFFFFFFu, v[0], o);
        }
    }
    // Lane l now holds the total of value index l >> (5 - L); broadcast each total from its owner.
#pragma unroll
    for (int h = 0; h < GM; ++h)
#pragma unroll
        for (int j = 0; j < TK; ++j) s[h][j] = __shfl_sync(0xFFFFFFFFu, v[0], (h * TK + j) << (5 - L));
}

// Fused variant, after a CTA has written its split's partial (acc, m, l): it takes a ticket of its (kv head, head
// chunk), and the CTA that draws the last one merges all splits and writes the output, so the combine needs no second
// launch. The pattern is the "last block" reduction of the CUDA C++ Programming Guide (memory fence functions): every
// thread fences its partial stores device-wide before the CTA takes its ticket, and the last CTA fences again before
// reading the others' partials through L2 (ld.global.cg). atomicInc wraps the counter to 0 on the last ticket, so each
// launch leaves the counters as it found them: graph replays and the next layer reuse them without a reset.
// Merge order is fixed (split 0, 1, ...), as in decode_combine, so the result does not depend on which CTA is last.
template <int GM>
__device__ __forceinline__ void fused_merge(const DecodeParams& p, int g, int hc, int h0, int nh, int warp, int lane) {
    __shared__ float smW[GM][FUSED_MAX_SPLITS];   // per head and split: 2^(m_s - M), 0 for an empty split
    __shared__ float smInv[GM];                   // per head: 1 / sum_s l_s 2^(m_s - M)
    __shared__ unsigned smLast;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        const unsigned splits = (unsigned)p.splits;
        const unsigned ticket = atomicInc(p.tickets + (size_t)g * gridDim.z + hc, splits - 1);
        smLast = ticket == splits - 1;
        __threadfence();
    }
    __syncthreads();
    if (!smLast) return;
    const int S = p.splits;
    // Weights: warp h merges head h's (m, l) over the splits, 8 splits per lane held in registers.
    if (warp < nh) {
        const size_t base = (size_t)(h0 + warp) * S;
        float ms[FUSED_MAX_SPLITS / 32], ls[FUSED_MAX_SPLITS / 32];
        float mx = neg_inf();
#pragma unroll
        for (int k = 0; k < FUSED_MAX_SPLITS / 32; ++k) {
            const int s = lane + 32 * k;
            float2 v = f2(neg_inf(), 0.f);
            if (s < S) v = ldcg_f2(p.partialMl + (base + s) * 2);
            ms[k] = v.x; ls[k] = v.y;
            if (v.y > 0.f) mx = fmaxf(mx, v.x);
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, o));
        float sum = 0.f;
#pragma unroll
        for (int k = 0; k < FUSED_MAX_SPLITS / 32; ++k) {
            const int s = lane + 32 * k;
            const float f = ls[k] > 0.f ? exp2f(ms[k] - mx) : 0.f;
            if (s < S) smW[warp][s] = f;
            sum += ls[k] * f;
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);
        if (lane == 0) smInv[warp] = 1.f / sum;
    }
    __syncthreads();
    // Output: thread i handles float4 i of the CTA's nh heads; every split's partial was written this launch
    // (empty splits as zeros with weight 0), so the loads need no guard and can all be in flight.
    const int d = p.headDim, per = d >> 2;
    for (int i = threadIdx.x; i < nh * per; i += blockDim.x) {
        const int h = i / per, e4 = i - h * per;
        const float* pa = p.partialAcc + (size_t)(h0 + h) * S * d + 4 * e4;
        float4 v = f4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 8
        for (int s = 0; s < S; ++s) {
            const float f = smW[h][s];
            const float4 a = ldcg_f4(pa + (size_t)s * d);
            v.x += f * a.x; v.y += f * a.y; v.z += f * a.z; v.w += f * a.w;
        }
        const float inv = smInv[h];
        v.x *= inv; v.y *= inv; v.z *= inv; v.w *= inv;
        *reinterpret_cast<float4*>(p.out + (size_t)(h0 + h) * d + 4 * e4) = v;
    }
}

template <int C, int GM, int TK, bool RS, bool FUSED>
__device__ __forceinline__ void decode_attention_impl(const DecodeParams& p) {
    const int g = blockIdx.x, split = blockIdx.y, hc = blockIdx.z;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int d = p.headDim;
    const int group = p.heads / p.kvHeads;
    const int h0 = g * group + hc * GM;            // first query head of this CTA
    const int nh = imin(GM, group - hc * GM);      // heads it serves
    const int pos = p.positions ? p.positions[0] : p.posStart;
    const int start = p.window > 0 ? imax(0, pos - p.window + 1) : 0;
    const int len = pos + 1 - start;
    const int unit = DWARPS * TK;
    const int chunk = ((len + p.splits - 1) / p.splits + unit - 1) / unit * unit;
    const int first = start + split * chunk;
    const int last = imin(pos, first + chunk - 1);

    float4 qr[GM][C], acc[GM][C];
    float m[GM], l[GM];
#pragma unroll
    for (int h = 0; h < GM; ++h) {
        m[h] = neg_inf(); l[h] = 0.f;
#pragma unroll
        for (int c = 0; c < C; ++c) {
            const int e = 4 * lane + 128 * c;
            float4 v = f4(0.f, 0.f, 0.f, 0.f);
            if (h < nh && e < d) {
                v = *reinterpret_cast<const float4*>(p.q + (size_t)(h0 + h) * d + e);
                v.x *= p.scaleLog2; v.y *= p.scaleLog2; v.z *= p.scaleLog2; v.w *= p.scaleLog2;
            }
            qr[h][c] = v;
            acc[h][c] = f4(0.f, 0.f, 0.f, 0.f);
        }
    }
    const float* kb = p.keys + (size_t)g * p.capacity * d;
    const float* vb = p.values + (size_t)g * p.capacity * d;

    // v3b (RS): every warp runs the same number of steps (chunk / unit, uniform over the CTA), keys past `last`
    // masked, so the compiler sees converged warps at the shuffles (v3a's data-dependent loop compiled every
    // shuffle into WARPSYNC.COLLECTIVE sections).
    const int steps = RS ? chunk / unit : 0;
    for (int it = 0, base = first + warp * TK; RS ? it < steps : base <= last; ++it, base += unit) {
        float4 kr[TK][C], vr[TK][C];
#pragma unroll
        for (int j = 0; j < TK; ++j)
#pragma unroll
            for (int c = 0; c < C; ++c) {
                const int e = 4 * lane + 128 * c;
                const bool ok = base + j <= last && e < d;
                kr[j][c] = ok ? ld_stream_f4(kb + (size_t)(base + j) * d + e) : f4(0.f, 0.f, 0.f, 0.f);
                vr[j][c] = ok ? ld_stream_f4(vb + (size_t)(base + j) * d + e) : f4(0.f, 0.f, 0.f, 0.f);
            }
        float s[GM][TK];
#pragma unroll
        for (int h = 0; h < GM; ++h)
#pragma unroll
            for (int j = 0; j < TK; ++j) {
                float a = 0.f;
#pragma unroll
                for (int c = 0; c < C; ++c)
                    a += qr[h][c].x * kr[j][c].x + qr[h][c].y * kr[j][c].y + qr[h][c].z * kr[j][c].z + qr[h][c].w * kr[j][c].w;
                s[h][j] = a;
            }
        warp_scores<GM, TK, RS>(s, lane);
#pragma unroll
        for (int h = 0; h < GM; ++h) {
            float mNew = m[h];
#pragma unroll
            for (int j = 0; j < TK; ++j)
                if (base + j <= last) mNew = fmaxf(mNew, s[h][j]);
            // m = -inf on the first step: 0; a fully masked step (RS) keeps m = mNew: 1, not exp2(-inf + inf).
            const float corr = mNew == m[h] ? 1.f : exp2f(m[h] - mNew);
            float lh = l[h] * corr;
#pragma unroll
            for (int c = 0; c < C; ++c) {
                acc[h][c].x *= corr; acc[h][c].y *= corr; acc[h][c].z *= corr; acc[h][c].w *= corr;
            }
#pragma unroll
            for (int j = 0; j < TK; ++j) {
                const float e = base + j <= last ? exp2f(s[h][j] - mNew) : 0.f;
                lh += e;
#pragma unroll
                for (int c = 0; c < C; ++c) {
                    acc[h][c].x += e * vr[j][c].x; acc[h][c].y += e * vr[j][c].y;
                    acc[h][c].z += e * vr[j][c].z; acc[h][c].w += e * vr[j][c].w;
                }
            }
            l[h] = lh;
            m[h] = mNew;
        }
    }

    // Merge the warps: global max per head, then each warp adds its rescaled accumulator in warp order.
    __shared__ float smM[DWARPS][GM], smL[DWARPS][GM];
    __shared__ float4 smAcc[GM][C * 32];
    if (lane == 0) {
#pragma unroll
        for (int h = 0; h < GM; ++h) { smM[warp][h] = m[h]; smL[warp][h] = l[h]; }
    }
    for (int i = threadIdx.x; i < GM * C * 32; i += blockDim.x) (&smAcc[0][0])[i] = f4(0.f, 0.f, 0.f, 0.f);
    __syncthreads();
    float mAll[GM], lAll[GM];
#pragma unroll
    for (int h = 0; h < GM; ++h) {
        float mx = smM[0][h];
#pragma unroll
        for (int w = 1; w < DWARPS; ++w) mx = fmaxf(mx, smM[w][h]);
        float sum = 0.f;
#pragma unroll
        for (int w = 0; w < DWARPS; ++w) sum += smL[w][h] > 0.f ? smL[w][h] * exp2f(smM[w][h] - mx) : 0.f;
        mAll[h] = mx; lAll[h] = sum;
    }
#pragma unroll
    for (int w = 0; w < DWARPS; ++w) {
        if (warp == w) {
#pragma unroll
            for (int h = 0; h < GM; ++h) {
                const float f = l[h] > 0.f ? exp2f(m[h] - mAll[h]) : 0.f;
#pragma unroll
                for (int c = 0; c < C; ++c) {
                    float4& a = smAcc[h][c * 32 + lane];
                    a.x += f * acc[h][c].x; a.y += f * acc[h][c].y; a.z += f * acc[h][c].z; a.w += f * acc[h][c].w;
                }
            }
        }
        __syncthreads();
    }
    // Write: thread i handles float4 i of the CTA's nh heads.
    const int per = d >> 2;
    for (int i = threadIdx.x; i < nh * per; i += blockDim.x) {
        const int h = i / per, e4 = i - h * per;
        const int c = e4 >> 5, ln = e4 & 31;
        float4 a = smAcc[0][0];
        float lh = 0.f, mh = 0.f;
#pragma unroll
        for (int hh = 0; hh < GM; ++hh)
            if (hh == h) { a = smAcc[hh][c * 32 + ln]; lh = lAll[hh]; mh = mAll[hh]; }
        if (p.splits == 1) {
            const float inv = 1.f / lh;
            a.x *= inv; a.y *= inv; a.z *= inv; a.w *= inv;
            *reinterpret_cast<float4*>(p.out + (size_t)(h0 + h) * d + 4 * e4) = a;
        } else {
            const size_t slot = (size_t)(h0 + h) * p.splits + split;
            *reinterpret_cast<float4*>(p.partialAcc + slot * d + 4 * e4) = a;
            if (e4 == 0) { p.partialMl[slot * 2] = lh > 0.f ? mh : neg_inf(); p.partialMl[slot * 2 + 1] = lh; }
        }
    }
    if constexpr (FUSED) {
        if (p.splits > 1) fused_merge<GM>(p, g, hc, h0, nh, warp, lane);
    }
}

// decode_attention_c*_g*: v3a (xor-butterfly on every score), the default; decode_attention_v3b_*: uniform step count
// and reduce-scatter scores. v3b issues fewer shuffles and no WARPSYNC.COLLECTIVE sections but measured slower on the
// H100 (132.7 vs 110.3 us at L = 32768, h = 32/8, d = 128: bench/results/ops-h100-v3.md), so it is kept only for the
// benchmark and the cross-check tests.
#define DECODE_KERNEL(C, GM, KEYS) \
    extern "C" __global__ void __launch_bounds__(DWARPS * 32) decode_attention_c##C##_g##GM(const DecodeParams p) { \
        decode_attention_impl<C, GM, KEYS, false, false>(p); } \
    extern "C" __global__ void __launch_bounds__(DWARPS * 32) decode_attention_v3b_c##C##_g##GM(const DecodeParams p) { \
        decode_attention_impl<C, GM, KEYS, true, false>(p); } \
    extern "C" __global__ void __launch_bounds__(DWARPS * 32) decode_attention_fused_c##C##_g##GM(const DecodeParams p) { \
        decode_attention_impl<C, GM, KEYS, false, true>(p); }
DECODE_KERNEL(1, 1, 8)
DECODE_KERNEL(1, 2, 8)
DECODE_KERNEL(1, 4, 8)
DECODE_KERNEL(1, 8, 4)
DECODE_KERNEL(2, 1, 4)
DECODE_KERNEL(2, 2, 4)
DECODE_KERNEL(2, 4, 4)
DECODE_KERNEL(2, 8, 2)

// Merges the splits of one head: out = sum_s acc_s 2^(m_s - M) / sum_s l_s 2^(m_s - M). grid (heads), one float4 per thread.
extern "C" __global__ void __launch_bounds__(64) decode_combine(const DecodeParams p) {
    const int h = blockIdx.x, d = p.headDim;
    const int e4 = threadIdx.x;
    const size_t base = (size_t)h * p.splits;
    float mAll = neg_inf();
    for (int s = 0; s < p.splits; ++s) mAll = fmaxf(mAll, p.partialMl[(base + s) * 2]);
    float lAll = 0.f;
    float4 v = f4(0.f, 0.f, 0.f, 0.f);
    const bool mine = 4 * e4 < d;
    for (int s = 0; s < p.splits; ++s) {
        const float l = p.partialMl[(base + s) * 2 + 1];
        if (l > 0.f) {
            const float f = exp2f(p.partialMl[(base + s) * 2] - mAll);
            lAll += l * f;
            if (mine) {
                const float4 a = *reinterpret_cast<const float4*>(p.partialAcc + (base + s) * d + 4 * e4);
                v.x += f * a.x; v.y += f * a.y; v.z += f * a.z; v.w += f * a.w;
            }
        }
    }
    if (mine) {
        const float inv = 1.f / lAll;
        v.x *= inv; v.y *= inv; v.z *= inv; v.w *= inv;
        *reinterpret_cast<float4*>(p.out + (size_t)h * d + 4 * e4) = v;
    }
}
