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
