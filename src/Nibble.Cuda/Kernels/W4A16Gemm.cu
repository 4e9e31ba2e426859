// W4A16 GEMM (the comparator): Y[M,N] = bf16( sum_g S[n,g] * sum_{k in g} x[m,k] * q[n,k] ), x bf16, q int4,
// S bf16 group scales (group 128). Same structure as W4A8Gemm.cu (weights as the A operand of mma.sync, 16x64
// blocks, one 16-byte load per lane per block, register ring, serial split-K) but with bf16 m16n8k16 MMAs.
// int4 -> bf16 by the magic-number trick (0x4300 | u is the bf16 of 128 + u; one FMA subtracts 136 exactly), as in
// CUTLASS's LayoutAwareConvert / Marlin (learned from, not copied). The group scale is applied in FP32 once per
// group to a per-group partial sum, so weights are never rounded: the result is the exact-product W4A16 up to FP32
// summation order.
//
// Tiled layout: block (nb, kb) = 512 bytes at ((nb*K/64)+kb)*512; lane L owns 16 bytes = words t = 0..3 (k16 tiles);
// with k0 = 64kb + 16tig + 4t, nibble i < 4 holds row gid + 8(i&1) at k0 + 2(i>>1), nibble i+4 the same row at +1.
// Nibbles stay uint4b8 (q + 8). Scales: [N/16][K/128][8] u32 = (S[row gid], S[row gid+8]) bf16 pair.
#include "Common.cuh"
#include "SplitK.cuh"

struct GemmParams {
    const u16* x; const float* unused0; const u32x4* weight; const u32* scales; const float* unused1;
    u16* y; float* workspace; u32* counters;
    int M, N, K, kBlocksPerSplit, splits, groupM;
};
static_assert(sizeof(GemmParams) == 88, "GemmParams must match W4A16Gemm.cs");

__device__ __forceinline__ void mma_bf16(float (&d)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ u32 nib_to_bf16x2(u32 w) { // (nibble 0, nibble 4) -> bf16x2 (q_lo, q_hi)
    u32 v = (w & 0x000F000Fu) | 0x43004300u, r;
    asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(v), "r"(0x3F803F80u), "r"(0xC308C308u));
    return r;
}

// WN 16-row slabs per warp share the activation fragments; weights, group scales and activations are all loaded
// ahead of use (the scales used to be loaded at the group end and waited on from DRAM once per group).
template <int MT, int WN>
__device__ __forceinline__ void w4a16_gemm_impl(const GemmParams& p) {
    constexpr int NT = MT / 8, D = 4, SD = D / 2;
    constexpr bool XPF = MT <= 16; // activation prefetch (registers: larger token tiles would spill)
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int gid = lane >> 2, tig = lane & 3;
    const int kBlocks = p.K >> 6, groups = p.K >> 7;
    const int mTiles = (p.M + MT - 1) / MT, nTiles = p.N / (64 * WN);
    int tile = blockIdx.x;
    int perGroup = p.groupM * nTiles;
    int gFirstM = (tile / perGroup) * p.groupM;
    int gSize = min(mTiles - gFirstM, p.groupM);
    int mt = gFirstM + (tile % perGroup) % gSize;
    int nt = (tile % perGroup) / gSize;
    const int split = blockIdx.y;
    const int m0 = mt * MT, nb0 = (nt * 4 + warp) * WN;
    const int kbBegin = split * p.kBlocksPerSplit, kbEnd = min(kBlocks, kbBegin + p.kBlocksPerSplit);
    const int gBegin = kbBegin >> 1, gEnd = kbEnd >> 1;

    float acc[WN][NT][4], part[WN][NT][4];
#pragma unroll
    for (int w = 0; w < WN; ++w)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[w][j][r] = part[w][j][r] = 0.f;
    const u16* xrow[NT];
#pragma unroll
    for (int j = 0; j < NT; ++j) xrow[j] = p.x + (size_t)min(m0 + j * 8 + gid, p.M - 1) * p.K + tig * 16;
    const u32x4* wbase[WN];
    const u32* sbase[WN];
#pragma unroll
    for (int w = 0; w < WN; ++w) {
        wbase[w] = p.weight + (size_t)(nb0 + w) * kBlocks * 32 + lane;
        sbase[w] = p.scales + (size_t)(nb0 + w) * groups * 8 + gid;
    }

    u32x4 ring[D][WN];
#pragma unroll
    for (int d = 0; d < D; ++d)
        if (kbBegin + d < kbEnd)
#pragma unroll
            for (int w = 0; w < WN; ++w) ring[d][w] = ldg_stream_v4(wbase[w] + (size_t)(kbBegin + d) * 32);
    u32 sring[SD][WN];
#pragma unroll
    for (int s = 0; s < SD; ++s)
#pragma unroll
        for (int w = 0; w < WN; ++w) sring[s][w] = gBegin + s < gEnd ? __ldg(sbase[w] + (gBegin + s) * 8) : 0u;
    u32x4 xra[2][NT], xrc[2][NT]; // activations two k-blocks ahead (a split has at least one group = two blocks)
    if (XPF)
#pragma unroll
    for (int e = 0; e < 2; ++e)
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            xra[e][j] = ldg_nc_v4(xrow[j] + (kbBegin + e) * 64);
            xrc[e][j] = ldg_nc_v4(xrow[j] + (kbBegin + e) * 64 + 8);
        }
    for (int kb0 = kbBegin; kb0 < kbEnd; kb0 += D) {
#pragma unroll
        for (int d = 0; d < D; ++d) {
            const int kb = kb0 + d;
            if (kb < kbEnd) {
                u32x4 cur[WN];
#pragma unroll
                for (int w = 0; w < WN; ++w) {
                    cur[w] = ring[d][w];
                    if (kb + D < kbEnd) ring[d][w] = ldg_stream_v4(wbase[w] + (size_t)(kb + D) * 32);
                }
                u32x4 xa[NT], xc[NT];
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    if (!XPF) { xa[j] = ldg_nc_v4(xrow[j] + kb * 64); xc[j] = ldg_nc_v4(xrow[j] + kb * 64 + 8); continue; }
                    xa[j] = xra[d & 1][j]; xc[j] = xrc[d & 1][j];
                    if (kb + 2 < kbEnd) {
                        xra[d & 1][j] = ldg_nc_v4(xrow[j] + (kb + 2) * 64);
                        xrc[d & 1][j] = ldg_nc_v4(xrow[j] + (kb + 2) * 64 + 8);
                    }
                }
#pragma unroll
                for (int w = 0; w < WN; ++w) {
                    u32 wv[4] = {cur[w].x, cur[w].y, cur[w].z, cur[w].w};
#pragma unroll
                    for (int t = 0; t < 4; ++t) {
                        u32 a0 = nib_to_bf16x2(wv[t]), a1 = nib_to_bf16x2(wv[t] >> 4);
                        u32 a2 = nib_to_bf16x2(wv[t] >> 8), a3 = nib_to_bf16x2(wv[t] >> 12);
#pragma unroll
                        for (int j = 0; j < NT; ++j) {
                            u32 b0, b1;
                            if (t == 0) { b0 = xa[j].x; b1 = xa[j].y; }
                            else if (t == 1) { b0 = xa[j].z; b1 = xa[j].w; }
                            else if (t == 2) { b0 = xc[j].x; b1 = xc[j].y; }
                            else { b0 = xc[j].z; b1 = xc[j].w; }
                            mma_bf16(part[w][j], a0, a1, a2, a3, b0, b1);
                        }
                    }
                }
                if (d & 1) { // group end (groups are two k-blocks, splits are group aligned)
                    const int g = kb >> 1;
#pragma unroll
                    for (int w = 0; w < WN; ++w) {
                        const u32 s2 = sring[d / 2][w];
                        if (g + SD < gEnd) sring[d / 2][w] = __ldg(sbase[w] + (g + SD) * 8);
                        const float sA = bf16_to_f32((u16)s2), sB = bf16_to_f32((u16)(s2 >> 16));
#pragma unroll
                        for (int j = 0; j < NT; ++j) {
                            acc[w][j][0] = fmaf(sA, part[w][j][0], acc[w][j][0]); acc[w][j][1] = fmaf(sA, part[w][j][1], acc[w][j][1]);
                            acc[w][j][2] = fmaf(sB, part[w][j][2], acc[w][j][2]); acc[w][j][3] = fmaf(sB, part[w][j][3], acc[w][j][3]);
                            part[w][j][0] = part[w][j][1] = part[w][j][2] = part[w][j][3] = 0.f;
                        }
                    }
                }
            }
        }
    }
    if (p.splits > 1 && !splitk_reduce_fragments<WN, NT>(acc, p.workspace, p.counters + (size_t)nt * mTiles + mt, split, p.splits, p.M, p.N,
                                                         nb0, m0, gid, tig))
        return;
#pragma unroll
    for (int w = 0; w < WN; ++w)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                int n = (nb0 + w) * 16 + gid + 8 * (r >> 1), m = m0 + 8 * j + 2 * tig + (r & 1);
                if (m < p.M) p.y[(size_t)m * p.N + n] = f32_to_bf16(acc[w][j][r]);
            }
}

// w4a16_gemm_m{MT}: one slab per warp (every M); w4a16_gemm_m{MT}_w2: two slabs per warp (small M, W4A16Gemm.Plan).
#define W4A16_INSTANCE(MT) \
    extern "C" __global__ void __launch_bounds__(128) w4a16_gemm_m##MT(const GemmParams p) { w4a16_gemm_impl<MT, 1>(p); }
#define W4A16_INSTANCE_W2(MT) \
    extern "C" __global__ void __launch_bounds__(128) w4a16_gemm_m##MT##_w2(const GemmParams p) { w4a16_gemm_impl<MT, 2>(p); }
W4A16_INSTANCE(8)
W4A16_INSTANCE(16)
W4A16_INSTANCE(32)
W4A16_INSTANCE(64)
W4A16_INSTANCE_W2(8)
W4A16_INSTANCE_W2(16)

struct W4A16PrepParams {
    const u32* weightPacked; const u16* scales; u32x4* weightTiled; u32* scalesTiled; int N, K;
};
static_assert(sizeof(W4A16PrepParams) == 40, "W4A16PrepParams must match W4A16Gemm.cs");

extern "C" __global__ void w4a16_prep(const W4A16PrepParams p) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int kBlocks = p.K >> 6, words = p.K >> 3, G = p.K >> 7;
    const size_t total = (size_t)(p.N >> 4) * kBlocks * 32;
    if (t < (size_t)p.N * G) { // scales: one per thread
        int n = (int)(t / G), g = (int)(t % G);
        reinterpret_cast<u16*>(p.scalesTiled)[((((size_t)(n >> 4) * G + g) * 8) + (n & 7)) * 2 + ((n >> 3) & 1)] = p.scales[t];
    }
    if (t >= total) return;
    const int lane = (int)(t & 31);
    const size_t blk = t >> 5;
    const int kb = (int)(blk % kBlocks), nb = (int)(blk / kBlocks);
    const int gid = lane >> 2, tig = lane & 3;
    const u32* r0 = p.weightPacked + (size_t)(nb * 16 + gid) * words + kb * 8 + tig * 2;
    const uint2 a = *reinterpret_cast<const uint2*>(r0);
    const uint2 b = *reinterpret_cast<const uint2*>(r0 + (size_t)8 * words);
    u32 ra[4] = {a.x, a.x >> 16, a.y, a.y >> 16}, rb[4] = {b.x, b.x >> 16, b.y, b.y >> 16};
    u32 o[4];
#pragma unroll
    for (int w = 0; w < 4; ++w) {
        u32 v = 0;
#pragma unroll
        for (int i = 0; i < 4; ++i) { // nibble i: row (i&1 ? b : a), k offset 2(i>>1); nibble i+4: k offset +1
            u32 src = (i & 1) ? rb[w] : ra[w];
            int kk = 2 * (i >> 1);
            v |= ((src >> (4 * kk)) & 0xFu) << (4 * i);
            v |= ((src >> (4 * (kk + 1))) & 0xFu) << (4 * (i + 4));
        }
        o[w] = v;
    }
    p.weightTiled[t] = u32x4{o[0], o[1], o[2], o[3]};
}
