// W4A8 GEMM: Y[M,N] = bf16( c'[n] * ( s_tok[m] * sum_k x8[m,k] * e4m3(q[n,k] * sigma[n,k/128]) ) )
// (docs/w4a8-spec.md §3, §6), on Hopper's FP8 tensor cores through wgmma (QGMMA, sm_90a) with the weights as the
// register A operand ("swap AB" as in CUTLASS example 55: the int4 operand must pass through registers for the
// LUT conversion, and tokens become wgmma's N = 8..128, so decode M = 1..8 wastes little).
// History: v1 used mma.sync m16n8k32 e4m3, which Hopper runs as F2FP (e4m3->f16) + HMMA.16816 (no native FP8
// mma.sync on sm_90), topping out near 200 TFLOP/s; see docs/kernels/w4a8-gemm.md.
//
// Weights (written by W4A8WeightPrep.cu): 16-row x 64-k blocks of 512 bytes, block (nb, kb) at ((nb*K/64)+kb)*512,
// the K-blocks of one 16-row slab contiguous; warp w of a warpgroup streams slab 4*wg+w with one coalesced 512-byte
// load per k-block. Lane L (gid = L/4, tig = L%4) owns bytes [16L, 16L+16): words w = 2s + h, each = 4 codes of row
// gid then 4 codes of row gid+8 at physical k = 64kb + 16tig + 8s + 4h + {0..3}. After the LUT conversion, word 2s+h
// gives exactly the wgmma A registers (a0,a1) (h=0) and (a2,a3) (h=1) of k-step s, provided wgmma's logical k
// 32s + 16h + 4tig + j maps to that physical k. That permutation is applied once to the activations: the
// quantization kernel writes x8 in this "GEMM order" inside every 64-wide block (ActivationQuantFp8.cu), so B tiles
// are plain 16-byte cp.async copies into wgmma's no-swizzle K-major core-matrix layout.
// Codes are CUTLASS's unified sign-magnitude int4 (spec §1.2). The 8-entry FP8 LUT per (row, group) is built in
// registers from the FP8 group scale sigma (1 byte) rather than stored (8 bytes): 11% fewer weight bytes; the dequant
// is 3 PRMT per 4 weights as in CUTLASS's lookup_table_convert (spec §1.5), learned from, not copied.
#include "Common.cuh"
#include "SplitK.cuh"
#include "W4A8Lut.cuh"
#include "W4A8Wgmma.cuh"
#include "W4A8GemmShared.cuh"

// FP32 promotion of the tensor-core accumulators (DeepSeek-V3 / DeepGEMM practice: Hopper's FP8 MMA accumulates
// with reduced precision): 0 = none, 1 = every 128-wide group, 2 = every 64-wide k-block.
#ifndef W4A8_PROMOTE
#define W4A8_PROMOTE 0
#endif

struct W4A8GemmParams {
    const u8* x8;              // [M, K] e4m3 in GEMM order (see above)
    const float* tokenScale;   // [M]
    const u32x4* weight;       // tiled codes
    const u16* sigma;          // [N/16][K/128][8] u16: byte pair (sigma[row gid], sigma[row gid+8]) at u16 index gid
    const float* channelScale; // [N]  c' = 8c
    W4A8_GEMM_TAIL_FIELDS      // y, workspace, counters, M, N, K, kBlocksPerSplit, splits, groupM (W4A8GemmShared.cuh)
};
static_assert(sizeof(W4A8GemmParams) == 88, "W4A8GemmParams must match W4A8Gemm.cs");




// wgmma shared-memory descriptor, no swizzle, K-major: core matrices of 8 rows x 16 bytes (rows 16 B apart);
// LBO = 128 B between the two core matrices of a k32 step (K direction), SBO = 256 B between 8-token groups.
__device__ __forceinline__ u64 smem_desc(u32 addr) {
    return (u64)((addr & 0x3FFFFu) >> 4) | ((u64)(128u >> 4) << 16) | ((u64)(256u >> 4) << 32);
}
__device__ __forceinline__ void cp_async16(u32 dst, const void* src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(dst), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" :: "n"(N)); }

// NTOK tokens per CTA (= wgmma N), WG warpgroups per CTA (64 rows each), KS k-blocks per pipeline stage.
// B stage layout: for kb q < KS and k-step s: (q*2+s)*(NTOK/8)*256 + (token/8)*256 + h*128 + (token%8)*16.
template <int NTOK, int WG, int KS>
__device__ __forceinline__ void w4a8_gemm_impl(const W4A8GemmParams& p) {
    // Weight ring depth: 8 k-blocks when the stage has 8 (large-M kernels, which are latency-bound on the weight and
    // sigma loads at 8 warps per SM: ncu showed 45% of stalls on L1TEX scoreboard with a 4-deep ring), else 4.
    constexpr int NACC = NTOK / 2, STAGES = 3, D = KS >= 8 ? 8 : 4;
    constexpr int STAGE_BYTES = NTOK * 64 * KS;
    static_assert(KS % D == 0, "the weight ring is indexed by q % D");
    extern __shared__ __align__(128) u8 smem[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int gid = lane >> 2, tig = lane & 3;
    const int kBlocks = p.K >> 6, groups = p.K >> 7;

    // Grouped raster (Triton's GROUP_M ordering): a wave shares weights and activations in L2.
    const int mTiles = (p.M + NTOK - 1) / NTOK, nTiles = p.N / (64 * WG);
    const int tile = blockIdx.x, perGroup = p.groupM * nTiles;
    const int gFirstM = (tile / perGroup) * p.groupM;
    const int gSize = min(mTiles - gFirstM, p.groupM);
    const int mt = gFirstM + (tile % perGroup) % gSize, nt = (tile % perGroup) / gSize;
    const int split = blockIdx.y;
    const int m0 = mt * NTOK;
    const int nb = nt * 4 * WG + warp;      // this warp's 16-row slab
    const int kbBegin = split * p.kBlocksPerSplit;
    const int kbEnd = min(kBlocks, kbBegin + p.kBlocksPerSplit);
    const int nStages = (kbEnd - kbBegin + KS - 1) / KS;

    const u32 smemBase = (u32)__cvta_generic_to_shared(smem);
    auto fill = [&](int st) {
        const u32 dst0 = smemBase + (st % STAGES) * STAGE_BYTES;
        const int kb0 = kbBegin + st * KS;
        for (int i = threadIdx.x; i < NTOK * KS * 4; i += 128 * WG) {
            const int r = i / (KS * 4), c = i % (KS * 4);   // c = q*4 + s*2 + h: consecutive 16 B of one row
            const int q = c >> 2, s = (c >> 1) & 1, h = c & 1;
            if (kb0 + q < kbEnd) {
                const u8* src = p.x8 + (size_t)min(m0 + r, p.M - 1) * p.K + (size_t)(kb0 + q) * 64 + (c & 3) * 16;
                cp_async16(dst0 + ((q * 2 + s) * (NTOK / 8) + (r >> 3)) * 256 + h * 128 + (r & 7) * 16, src);
            }
        }
    };

    float acc[NACC];
#pragma unroll
    for (int i = 0; i < NACC; ++i) acc[i] = 0.f;
#if W4A8_PROMOTE
    float total[NACC];
#pragma unroll
    for (int i = 0; i < NACC; ++i) total[i] = 0.f;
#endif

    const u32x4* wptr = p.weight + (size_t)nb * kBlocks * 32 + lane;
    const u16* sptr = p.sigma + (size_t)nb * groups * 8 + gid;
    // Register ring: weights D k-blocks ahead, each group's sigma pair with the group's first block.
    u32x4 ring[D];
    u16 sring[D / 2];
#pragma unroll
    for (int d = 0; d < D; ++d)
        if (kbBegin + d < kbEnd) {
            ring[d] = ldg_stream_v4(wptr + (size_t)(kbBegin + d) * 32);
            if ((d & 1) == 0) sring[d >> 1] = __ldg(sptr + ((kbBegin + d) >> 1) * 8);
        }

#pragma unroll
    for (int st = 0; st < STAGES - 1; ++st) { if (st < nStages) fill(st); cp_async_commit(); }

    Lut lut0, lut1;
    for (int st = 0; st < nStages; ++st) {
        cp_async_wait<STAGES - 2>();
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
        __syncthreads();
        if (st + STAGES - 1 < nStages) fill(st + STAGES - 1);
        cp_async_commit();
        const u32 stage = smemBase + (st % STAGES) * STAGE_BYTES;
        u32 areg[2][8];
#pragma unroll
        for (int q = 0; q < KS; ++q) {
            const int kb = kbBegin + st * KS + q;
            if (kb < kbEnd) {
                constexpr int dmask = D - 1;
                u32x4 cur = ring[q & dmask];
                const u16 scur = sring[(q & dmask) >> 1];
                if (kb + D < kbEnd) {
                    ring[q & dmask] = ldg_stream_v4(wptr + (size_t)(kb + D) * 32);
                    if ((q & 1) == 0) sring[(q & dmask) >> 1] = __ldg(sptr + ((kb + D) >> 1) * 8);
                }
                if ((q & 1) == 0) load_luts(scur, lut0, lut1);
                // A double-buffered by k-block parity: the wgmma of block kb may still read a[q&1] while block kb+1
                // is converted into the other half (wait_group 1 keeps one group in flight).
                u32* a = areg[q & 1];
                convert8(cur.x, lut0, lut1, a[0], a[1]);
                convert8(cur.y, lut0, lut1, a[2], a[3]);
                convert8(cur.z, lut0, lut1, a[4], a[5]);
                convert8(cur.w, lut0, lut1, a[6], a[7]);
#if W4A8_PROMOTE == 2
                const int first = 0;
#elif W4A8_PROMOTE == 1
                const int first = ((kb - kbBegin) & 1) ? 1 : 0;
#else
                const int first = 1;
#endif
                asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
                Wgmma<NTOK>::run(acc, a[0], a[1], a[2], a[3], smem_desc(stage + (q * 2 + 0) * (NTOK / 8) * 256), first);
                Wgmma<NTOK>::run(acc, a[4], a[5], a[6], a[7], smem_desc(stage + (q * 2 + 1) * (NTOK / 8) * 256), 1);
                asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
#if W4A8_PROMOTE
                asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#if W4A8_PROMOTE == 1
                if (((kb - kbBegin) & 1) || kb + 1 == kbEnd)
#endif
#pragma unroll
                    for (int i = 0; i < NACC; ++i) total[i] += acc[i];
#else
                asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
#endif
                // Keep the previous buffer's registers alive (and unmoved) until its wgmma has completed.
                u32* prev = areg[(q + 1) & 1];
                asm volatile("" : "+r"(prev[0]), "+r"(prev[1]), "+r"(prev[2]), "+r"(prev[3]), "+r"(prev[4]), "+r"(prev[5]), "+r"(prev[6]), "+r"(prev[7]));
            }
        }
        // The next iteration refills this stage's buffer after its barrier: no wgmma may still read it.
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
    }
    cp_async_wait<0>();
#if W4A8_PROMOTE
#pragma unroll
    for (int i = 0; i < NACC; ++i) acc[i] = total[i];
#endif

    // Epilogue. acc[4j + r]: row n = nb*16 + gid + 8*(r>>1), token m = m0 + 8j + 2*tig + (r&1).
    if (p.splits > 1) {
        // Serial split-K: park the partial sums; the last CTA of this tile (atomic ticket) reduces them in a fixed
        // order, so results do not depend on scheduling.
        float* ws = p.workspace + (size_t)split * p.M * p.N;
#pragma unroll
        for (int i = 0; i < NACC; ++i) {
            int n = nb * 16 + gid + 8 * ((i & 3) >> 1), m = m0 + 8 * (i >> 2) + 2 * tig + (i & 1);
            if (m < p.M) ws[(size_t)m * p.N + n] = acc[i];
        }
        u32* counter = p.counters + (size_t)nt * mTiles + mt;
        if (!splitk_last_of_tile(counter, p.splits)) return;
        // Split loop outermost: each pass issues all NACC loads at once (one memory latency per split, not per
        // element: the per-element loop made mid-M split-K plans latency-bound). Same summation order as before.
#pragma unroll 1
        for (int z = 0; z < p.splits; ++z)
#pragma unroll
            for (int i = 0; i < NACC; ++i) {
                int n = nb * 16 + gid + 8 * ((i & 3) >> 1), m = m0 + 8 * (i >> 2) + 2 * tig + (i & 1);
                const float v = m < p.M ? ldcg_f32(p.workspace + ((size_t)z * p.M + m) * p.N + n) : 0.f;
                acc[i] = z == 0 ? v : acc[i] + v;
            }
        if (threadIdx.x == 0) *counter = 0u;
    }
    const int nA = nb * 16 + gid;
    const float cA = p.channelScale[nA], cB = p.channelScale[nA + 8];
#pragma unroll
    for (int i = 0; i < NACC; ++i) {
        int m = m0 + 8 * (i >> 2) + 2 * tig + (i & 1);
        if (m < p.M) {
            int hi = (i & 3) >> 1;
            float v = (hi ? cB : cA) * (p.tokenScale[m] * acc[i]);
            p.y[(size_t)m * p.N + nA + 8 * hi] = f32_to_bf16(v);
        }
    }
}

#define W4A8_INSTANCE(NTOK, WG, KS) \
    W4A8_GEMM_ENTRY(w4a8_gemm_n##NTOK##_wg##WG##_ks##KS, (128 * WG), const W4A8GemmParams, (w4a8_gemm_impl<NTOK, WG, KS>))
W4A8_INSTANCE(8, 1, 8)
W4A8_INSTANCE(16, 1, 8)
W4A8_INSTANCE(32, 1, 4)
W4A8_INSTANCE(32, 2, 4)
W4A8_INSTANCE(64, 2, 4)
W4A8_INSTANCE(128, 2, 4)
W4A8_INSTANCE(64, 2, 8)
W4A8_INSTANCE(128, 2, 8)

// Test hook: decodes all 16 unified codes of each sigma through the same LUT + PRMT path as the GEMM:
// out[16 i + c] = e4m3 byte for code c.
struct LutProbeParams { const u8* sigma; u8* out; int count; };
static_assert(sizeof(LutProbeParams) == 24, "LutProbeParams must match W4A8Gemm.cs");
extern "C" __global__ void w4a8_lut_probe(const LutProbeParams p) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.count) return;
    u32 f2 = e4m3x2_to_f16x2((u16)(p.sigma[i] | (p.sigma[i] << 8)));
    Lut l;
    build_lut(f2, l.nLo, l.nHi, l.pLo, l.pHi);
    for (int c0 = 0; c0 < 16; c0 += 4) {
        u32 src = (u32)c0 | ((u32)(c0 + 1) << 4) | ((u32)(c0 + 2) << 8) | ((u32)(c0 + 3) << 12);
        src |= src << 16;
        u32 o0, o1;
        convert8(src, l, l, o0, o1);
        for (int b = 0; b < 4; ++b) p.out[16 * i + c0 + b] = (u8)(o0 >> (8 * b));
    }
}
