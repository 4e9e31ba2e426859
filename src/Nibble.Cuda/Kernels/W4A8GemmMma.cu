// W4A8 GEMM, decode variant (small M): same operands and result as W4A8Gemm.cu, through mma.sync m16n8k32 e4m3.
// On sm_90 that instruction is not native: SASS shows F2FP (e4m3 -> f16, exact) + HMMA.16816.F32, so products are
// exact and sums FP32 (exact-product to 2e-8 in the tests). It needs no shared memory or warpgroup synchronisation,
// which wins while the GEMM is a pure weight stream (M <= 16; docs/kernels/w4a8-gemm.md). Weights as the A operand
// ("swap AB", as CUTLASS example 55 does for the narrow type), tokens in the n8 dimension.
// Activations x8 are in natural k order here (one 16-byte load per token and k-block); the wgmma kernel reads them in
// its GEMM order instead (GemmPlan.GemmOrderActivations says which).
//
// Weight layout (written by W4A8WeightPrep.cu, documented in docs/kernels/w4a8-gemm.md): 16-row x 64-k blocks of
// 512 bytes, block (nb, kb) at ((nb * K/64) + kb) * 512, K-blocks of one 16-row slab contiguous so a warp streams its
// slab with one coalesced 512-byte load per k-block. Lane L (gid = L/4, tig = L%4) owns bytes [16L, 16L+16): four
// words w = 2t + h (t = mma k-tile, h = half), word = 4 codes of row gid then 4 codes of row gid+8 at physical
// k = 64kb + 16tig + 8t + 4h + {0..3}. The k order inside a block is a permutation chosen so that each thread's B
// fragment (activations) is one contiguous 16-byte load: reduction order does not matter, A and B agree.
// Codes are CUTLASS's "unified" sign-magnitude int4 (spec §1.2). The 8-entry FP8 LUT per (row, group) is built in
// registers from the FP8 group scale sigma (1 byte) rather than stored (8 bytes), saving 11% of weight bytes; the
// dequant is then 3 PRMT per 4 weights as in CUTLASS's lookup_table_convert (spec §1.5), learned from, not copied.
#include "Common.cuh"
#include "W4A8Lut.cuh"

#ifndef W4A8_MMA_RING
#define W4A8_MMA_RING 4
#endif

struct W4A8GemmParams {
    const u8* x8;              // [M, K] e4m3 activations
    const float* tokenScale;   // [M]
    const u32x4* weight;       // tiled codes, see above
    const u16* sigma;          // [N/16][K/128][8] u16: byte pair (sigma[row gid], sigma[row gid+8]) at u16 index gid
    const float* channelScale; // [N]  c' = 8c
    u16* y;                    // [M, N] bf16
    float* workspace;          // [splits][M][N] fp32 partial sums (split-K only)
    u32* counters;             // one per output tile, zero at rest (the last split resets it)
    int M, N, K;
    int kBlocksPerSplit;       // 64-wide k-blocks per split (even: splits are group aligned)
    int splits;
    int groupM;                // raster: this many m-tiles share one n-tile column group
};
static_assert(sizeof(W4A8GemmParams) == 88, "W4A8GemmParams must match W4A8Gemm.cs (same struct as W4A8Gemm.cu)");


__device__ __forceinline__ void mma_e4m3(float (&d)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// MT tokens per CTA (multiple of 8), WN 16-row slabs per warp, 4 warps per CTA: CTA tile = (64*WN) rows x MT tokens.
template <int MT, int WN>
__device__ __forceinline__ void w4a8_gemm_impl(const W4A8GemmParams& p) {
    constexpr int NT = MT / 8;      // n8 tiles (tokens) per warp
    constexpr int D = W4A8_MMA_RING; // k-blocks of weights in flight per thread (register ring)
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int gid = lane >> 2, tig = lane & 3;
    const int kBlocks = p.K >> 6, groups = p.K >> 7;

    // Grouped raster: consecutive CTAs walk groupM m-tiles of one n-tile column before moving on, so a wave
    // shares weights and activations in L2 (Triton's GROUP_M ordering).
    const int mTiles = (p.M + MT - 1) / MT, nTiles = p.N / (64 * WN);
    int tile = blockIdx.x;
    int perGroup = p.groupM * nTiles;
    int gFirstM = (tile / perGroup) * p.groupM;
    int gSize = min(mTiles - gFirstM, p.groupM);
    int mt = gFirstM + (tile % perGroup) % gSize;
    int nt = (tile % perGroup) / gSize;
    const int split = blockIdx.y;
    const int m0 = mt * MT;
    const int nb0 = (nt * 4 + warp) * WN;
    const int kbBegin = split * p.kBlocksPerSplit;
    const int kbEnd = min(kBlocks, kbBegin + p.kBlocksPerSplit);

    float acc[WN][NT][4];
#pragma unroll
    for (int w = 0; w < WN; ++w)
#pragma unroll
        for (int j = 0; j < NT; ++j) acc[w][j][0] = acc[w][j][1] = acc[w][j][2] = acc[w][j][3] = 0.f;

    // Activation rows this thread reads for its B fragments (rows past M read row M-1; their results are dropped).
    const u8* xrow[NT];
#pragma unroll
    for (int j = 0; j < NT; ++j) xrow[j] = p.x8 + (size_t)min(m0 + j * 8 + gid, p.M - 1) * p.K + tig * 16;

    const u32x4* wbase[WN];
    const u16* sbase[WN];
#pragma unroll
    for (int w = 0; w < WN; ++w) {
        wbase[w] = p.weight + (size_t)(nb0 + w) * kBlocks * 32 + lane;
        sbase[w] = p.sigma + (size_t)(nb0 + w) * groups * 8 + gid;
    }

    u32x4 ring[D][WN];
#pragma unroll
    for (int d = 0; d < D; ++d)
        if (kbBegin + d < kbEnd)
#pragma unroll
            for (int w = 0; w < WN; ++w) ring[d][w] = ldg_stream_v4(wbase[w] + (size_t)(kbBegin + d) * 32);

    Lut lut[WN][2];
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
                u32x4 xb[NT];
#pragma unroll
                for (int j = 0; j < NT; ++j) xb[j] = ldg_nc_v4(xrow[j] + kb * 64);
                if ((d & 1) == 0) { // group start: kbBegin is even and D is even, so kb is even exactly when d is
#pragma unroll
                    for (int w = 0; w < WN; ++w) {
                        u16 s2 = __ldg(sbase[w] + (kb >> 1) * 8);
                        u32 f2 = e4m3x2_to_f16x2(s2);
                        build_lut(prmt(f2, 0, 0x1010), lut[w][0].nLo, lut[w][0].nHi, lut[w][0].pLo, lut[w][0].pHi);
                        build_lut(prmt(f2, 0, 0x3232), lut[w][1].nLo, lut[w][1].nHi, lut[w][1].pLo, lut[w][1].pHi);
                    }
                }
#pragma unroll
                for (int w = 0; w < WN; ++w) {
                    u32 a[8];
                    convert8(cur[w].x, lut[w][0], lut[w][1], a[0], a[1]);
                    convert8(cur[w].y, lut[w][0], lut[w][1], a[2], a[3]);
                    convert8(cur[w].z, lut[w][0], lut[w][1], a[4], a[5]);
                    convert8(cur[w].w, lut[w][0], lut[w][1], a[6], a[7]);
#pragma unroll
                    for (int j = 0; j < NT; ++j) {
                        mma_e4m3(acc[w][j], a[0], a[1], a[2], a[3], xb[j].x, xb[j].y);
                        mma_e4m3(acc[w][j], a[4], a[5], a[6], a[7], xb[j].z, xb[j].w);
                    }
                }
            }
        }
    }

    // Epilogue. Accumulator (w, j, r): row n = (nb0+w)*16 + gid + 8*(r>>1), token m = m0 + 8j + 2*tig + (r&1).
    if (p.splits > 1) {
        // Serial split-K: park the partial sums, and let the last CTA of this tile (atomic ticket) reduce them in a
        // fixed order, so results do not depend on scheduling.
        float* ws = p.workspace + (size_t)split * p.M * p.N;
#pragma unroll
        for (int w = 0; w < WN; ++w)
#pragma unroll
            for (int j = 0; j < NT; ++j)
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    int n = (nb0 + w) * 16 + gid + 8 * (r >> 1), m = m0 + 8 * j + 2 * tig + (r & 1);
                    if (m < p.M) ws[(size_t)m * p.N + n] = acc[w][j][r];
                }
        __threadfence();
        __syncthreads();
        __shared__ u32 ticket;
        u32* counter = p.counters + (size_t)nt * mTiles + mt;
        if (threadIdx.x == 0) ticket = atomicAdd(counter, 1u);
        __syncthreads();
        if (ticket != (u32)(p.splits - 1)) return;
        __threadfence();
#pragma unroll
        for (int w = 0; w < WN; ++w)
#pragma unroll
            for (int j = 0; j < NT; ++j)
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    int n = (nb0 + w) * 16 + gid + 8 * (r >> 1), m = m0 + 8 * j + 2 * tig + (r & 1);
                    if (m < p.M) {
                        float s = 0.f;
                        for (int z = 0; z < p.splits; ++z) s += ldcg_f32(p.workspace + ((size_t)z * p.M + m) * p.N + n);
                        acc[w][j][r] = s;
                    }
                }
        if (threadIdx.x == 0) *counter = 0u;
    }
#pragma unroll
    for (int w = 0; w < WN; ++w) {
        const int nA = (nb0 + w) * 16 + gid;
        const float cA = p.channelScale[nA], cB = p.channelScale[nA + 8];
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                int m = m0 + 8 * j + 2 * tig + (r & 1);
                if (m < p.M) {
                    int n = nA + 8 * (r >> 1);
                    float v = ((r >> 1) ? cB : cA) * (p.tokenScale[m] * acc[w][j][r]);
                    p.y[(size_t)m * p.N + n] = f32_to_bf16(v);
                }
            }
    }
}

#define W4A8_INSTANCE(MT, WN)                                                                        \
    extern "C" __global__ void __launch_bounds__(128) w4a8_mma_m##MT##_w##WN(const W4A8GemmParams p) { \
        w4a8_gemm_impl<MT, WN>(p);                                                                    \
    }
W4A8_INSTANCE(8, 1)
W4A8_INSTANCE(8, 2)
W4A8_INSTANCE(16, 1)
W4A8_INSTANCE(16, 2)
W4A8_INSTANCE(32, 1)

