// W4A8 GEMM, warp-specialized wgmma kernel for M > 32: same contract and operands as W4A8Gemm.cu,
// Y[M,N] = bf16( c'[n] * ( s_tok[m] * sum_k x8[m,k] * e4m3(q[n,k] * sigma[n,k/128]) ) ).
// Structure learned from CUTLASS's sm90 warp-specialized mixed-input collective
// (sm90_mma_tma_gmma_rs_warpspecialized_mixed_input) and DeepGEMM's FP8 GEMM (producer warpgroup with setmaxnreg
// down, two math warpgroups with setmaxnreg up, mbarrier full/empty ring); no code copied:
// * warpgroup 0 = producer: one warp issues, per 128-wide k group, a TMA load of the activation tile
//   (NTOK tokens x 128 bytes, 128-byte swizzle, rows past M zero-filled) and 1-D bulk copies of the pre-tiled weight
//   blocks and sigma pairs of the CTA's 16-row slabs (W4A8WeightPrep.cu layout: the two 512-byte k-blocks of one
//   slab and group are contiguous, so one 1 KB copy per slab) into a STAGES-deep ring (mbarrier full[s], expect_tx);
// * warpgroups 1 and 2 = consumers: each owns MS m64 slices of weight rows ("swap AB", spec §1.1: weights are the
//   register A operand because the int4 codes must pass through registers for the LUT conversion; tokens are wgmma's
//   N). Per k-block they ld.shared the codes, LUT-convert to e4m3 registers (W4A8Lut.cuh, 3 PRMT per 4 weights) and
//   issue async wgmma with B from the swizzled tile; wgmma.wait_group 1 lets the conversion of k-block q+1 overlap
//   the tensor-core work of k-block q; a stage is released (empty[s]) once its last wgmma group has completed.
// Activations are in the GEMM order of ActivationQuantFp8.cu (inside each 64-block, physical k 16t+8s+4h+j sits at
// position 32s+16h+4t+j), so k32 step s of k-block q is bytes [64q+32s, 64q+32s+32) of a token row, matching the
// weight registers (a0..a3) of word pair s, exactly as in W4A8Gemm.cu.
#include "Common.cuh"
#include "W4A8Lut.cuh"
#include "W4A8Wgmma.cuh"
#include "W4A8GemmShared.cuh"

// Build variants (NVRTC defines, W4A8Gemm.cs WsSplitLayout / WsPairedStores; helper gemm-large2):
// W4A8_WS_SPLIT 1: split-K partial sums in a thread-private layout (float4 [tile][NTOK*ROWS/1024][256 threads]):
//   each thread writes and re-reads its own accumulators as 16-byte vectors, warps touch 512 contiguous bytes, no bounds
//   checks, and the reduce reads each split in chunks of <= 64 floats (the 0 layout, [split][M][N] scalar, hoists all 128
//   loads of a split next to the 128 accumulators: ptxas spills 400-500 bytes in the n256 / 256-row instances).
// W4A8_WS_EPI 1: bf16 output written as pairs of adjacent rows (one shuffle with lane ^ 4 per pair), u32 stores:
//   half the store instructions of the 0 epilogue, same values bit for bit.
#ifndef W4A8_WS_SPLIT
#define W4A8_WS_SPLIT 0
#endif
#ifndef W4A8_WS_EPI
#define W4A8_WS_EPI 0
#endif
// W4A8_WS_PREFETCH 1: a consumer reads stage s+1's codes and sigma (and builds its LUTs) right after issuing stage s's
//   last wgmma group instead of after waiting for it (see w4a8_ws_stage).
#ifndef W4A8_WS_PREFETCH
#define W4A8_WS_PREFETCH 0
#endif
// W4A8_WS_REGS: the consumers' setmaxnreg; above 232 the producer warpgroup drops to 24 (128*24 + 256*240 <= 64K).
//   240/24 is what CUTLASS switched to for tiles that spill at 232/40 (cutlass PR 2219).
#ifndef W4A8_WS_REGS
#define W4A8_WS_REGS 232
#endif
// W4A8_WS_STORE 1: the bf16 tile leaves through shared memory and TMA stores (stmatrix.trans into 32-token x 64-row
//   boxes with the 128-byte swizzle, double-buffered per consumer warpgroup, one bulk store per box issued by one
//   thread) instead of scalar global stores: the consumers go on to the next tile while the copy engine drains the
//   output, and rows past M are clipped by the tensor map. Same values, same bits.
#ifndef W4A8_WS_STORE
#define W4A8_WS_STORE 1
#endif
// W4A8_WS_OCC 2: two CTAs per SM (__launch_bounds__(384, 2), setmaxnreg 24 / 104, at most 112 KB of shared memory each),
//   for the small tiles at mid M, where one CTA's two consumer chains (decode -> wgmma -> wait, ~0.46 us per stage
//   against ~0.14 us of tensor work) leave the tensor cores idle: four chains per SM instead of two. setmaxnreg moves
//   registers only inside a CTA's own pool (384 x 80 at entry), so consumers get 104; only the 32-accumulator tile is built.
#ifndef W4A8_WS_OCC
#define W4A8_WS_OCC 1
#endif
#define W4A8_WS_STR2(x) #x
#define W4A8_WS_STR(x) W4A8_WS_STR2(x)

// The TMA descriptor (CUtensorMap, 128 bytes, 64-byte aligned) travels inside the by-value parameter struct; the
// kernel parameter is __grid_constant__ so its address is a valid generic address for cp.async.bulk.tensor.
struct alignas(64) TmaDesc { u64 v[16]; };
struct alignas(64) W4A8WsParams {
    TmaDesc act;               // x8 [M][K] u8, GEMM order; box {128 k, NTOK tokens}, SWIZZLE_128B, zero OOB fill
    TmaDesc wmap;              // tiled codes as u64 [N/16][K]: box {128 (= 2 k-blocks, 1 KB), CTA slabs}, no swizzle
    TmaDesc smap;              // sigma pairs as u64 [N/16][K/64]: box {2 (= one group, 16 B), CTA slabs}
    const float* tokenScale;   // [M]
    const u8* weight;          // tiled codes (W4A8WeightPrep.cu)
    const u8* sigma;           // [N/16][K/128][8] u16 byte pairs
    const float* channelScale; // [N]  c' = 8c
    W4A8_GEMM_TAIL_FIELDS      // y, workspace, counters, M, N, K, kBlocksPerSplit, splits, groupM (W4A8GemmShared.cuh)
    int flags;                 // bit 0: weights and sigma through wmap/smap (3 TMA ops per stage) instead of 1-D bulk copies;
                               // bit 1: rotate each n-tile's k order (spreads concurrent activation reads over L2);
                               // bit 2: benchmark diagnostic, no epilogue at all (output not written: times the main loop)
    TmaDesc ymap;              // y [M][N] bf16 as u16: box {64 rows of N, 32 tokens}, SWIZZLE_128B (W4A8_WS_STORE 1 only)
};
static_assert(sizeof(W4A8WsParams) == 640, "W4A8WsParams must match W4A8Gemm.cs");

__device__ __forceinline__ void mbar_init(u32 bar, u32 count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(u32 bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(bar) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(u32 bar, u32 parity) {
    u32 ok;
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(ok) : "r"(bar), "r"(parity) : "memory");
    return ok != 0;
}
__device__ __forceinline__ void mbar_wait(u32 bar, u32 parity) { while (!mbar_try_wait(bar, parity)) { } }

// 1-D bulk copy global -> shared, completing `bytes` transactions on the mbarrier (16-byte aligned, multiple of 16).
__device__ __forceinline__ void bulk_g2s(u32 dst, const void* src, u32 bytes, u32 bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 :: "r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}
// 2-D TMA tile load (c0 = innermost coordinate in elements, c1 = row).
__device__ __forceinline__ void tma_load_2d(u32 dst, const TmaDesc* map, int c0, int c1, u32 bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
                 :: "r"(dst), "l"((u64)map), "r"(c0), "r"(c1), "r"(bar) : "memory");
}
// 2-D TMA tile store shared -> global (c0 = innermost coordinate, c1 = row), tracked by this thread's bulk groups.
__device__ __forceinline__ void tma_store_2d(const TmaDesc* map, u32 src, int c0, int c1) {
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];"
                 :: "l"((u64)map), "r"(c0), "r"(c1), "r"(src) : "memory");
}
// Four 8x8 b16 matrices, each stored transposed: register i of lane L holds (row L/4, columns 2(L%4), +1) of matrix i;
// lanes 8i..8i+7 give the addresses of matrix i's memory rows (= its columns).
__device__ __forceinline__ void stmatrix_x4_trans(u32 addr, u32 r0, u32 r1, u32 r2, u32 r3) {
    asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};"
                 :: "r"(addr), "r"(r0), "r"(r1), "r"(r2), "r"(r3) : "memory");
}
__device__ __forceinline__ u32 pack_bf16(float lo, float hi) { return (u32)f32_to_bf16(lo) | ((u32)f32_to_bf16(hi) << 16); }
struct alignas(16) f32x4 { float x, y, z, w; };
__device__ __forceinline__ void stg_f32x4(float* p, float a, float b, float c, float d) {
    asm volatile("st.global.v4.f32 [%0], {%1, %2, %3, %4};" :: "l"(p), "f"(a), "f"(b), "f"(c), "f"(d) : "memory");
}
__device__ __forceinline__ f32x4 ldcg_f32x4(const float* p) {
    f32x4 r;
    asm volatile("ld.global.cg.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(r.x), "=f"(r.y), "=f"(r.z), "=f"(r.w) : "l"(p) : "memory");
    return r;
}
__device__ __forceinline__ u16 lds_u16(u32 addr) {
    u16 v;
    asm volatile("ld.shared.u16 %0, [%1];" : "=h"(v) : "r"(addr));
    return v;
}
__device__ __forceinline__ u32x4 lds_v4(u32 addr) {
    u32x4 v;
    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(addr));
    return v;
}
// wgmma descriptor of a K-major tile with 128-byte swizzle: rows of 128 bytes, 8-row groups 1024 bytes apart (SBO);
// LBO is unused for swizzled K-major layouts; layout type 1 = SWIZZLE_128B (bits 62-63). The tile base is 1024-byte
// aligned, so a k offset inside the 128-byte row is added to the start address (as DeepGEMM advances its descriptors).
__device__ __forceinline__ u64 sw128_desc(u32 addr) {
    return (u64)((addr & 0x3FFFFu) >> 4) | ((u64)1 << 16) | ((u64)(1024u >> 4) << 32) | ((u64)1 << 62);
}
__device__ __forceinline__ void consumer_sync() { asm volatile("bar.sync 1, 256;" ::: "memory"); }
// One consumer warpgroup (named barriers 2 and 3).
__device__ __forceinline__ void wg_sync(int cw) { asm volatile("bar.sync %0, 128;" :: "r"(2 + cw) : "memory"); }

// MS m64 slices per consumer warpgroup (CTA rows = 128*MS), NTOK tokens per CTA (= wgmma N), one 128-k group per stage.
template <int MS, int NTOK>
struct WsShape {
    static constexpr int ROWS = 128 * MS;
    static constexpr int SLABS = ROWS / 16;
    static constexpr int ACT_BYTES = NTOK * 128;
    static constexpr int W_BYTES = SLABS * 1024;
    static constexpr int S_BYTES = SLABS * 16;
    static constexpr int TX_BYTES = ACT_BYTES + W_BYTES + S_BYTES;
    static constexpr int STAGE = (TX_BYTES + 1023) / 1024 * 1024;
    // W4A8_WS_STORE: per consumer warpgroup two buffers of MS boxes (32 tokens x 128 bytes), after the tail.
    static constexpr int EPI = W4A8_WS_STORE ? 2 * 2 * MS * 4096 : 0;
    // As deep as 216 KB allows (224 KB less the output buffers with W4A8_WS_STORE; up to 16): at mid M the ring is what
    // keeps the weight stream in flight.
    static constexpr int RING = W4A8_WS_OCC == 2 ? 112 * 1024 - 3072 - EPI : W4A8_WS_STORE ? 224 * 1024 - 3072 - EPI : 216 * 1024;
    static constexpr int STAGES = RING / STAGE < 16 ? RING / STAGE : 16;
    // Tail: 2*STAGES mbarriers (<= 256 B), the split-K ticket at +256, the tile's token scales at +512 (NTOK floats);
    // then the output buffers (1024-aligned); plus 1 KB to align the ring to 1024 (the 128-byte swizzle atom).
    static constexpr int SMEM = STAGES * STAGE + 2048 + EPI + 1024;
};

// Work unit w (persistent loop): split = w / tiles, tile = w % tiles, tiles in Triton's GROUP_M raster so that CTAs
// running at the same time share weights and activations in L2.
struct WsTile { int mt, nt, split, gBegin, nSteps; };
template <int NTOK, int ROWS>
__device__ __forceinline__ WsTile ws_tile(const W4A8WsParams& p, int w) {
    const int mTiles = (p.M + NTOK - 1) / NTOK, nTiles = p.N / ROWS, tiles = mTiles * nTiles;
    const int split = w / tiles, tile = w % tiles, perGroup = p.groupM * nTiles;
    const int gFirstM = (tile / perGroup) * p.groupM;
    const int gSize = min(mTiles - gFirstM, p.groupM);
    WsTile t;
    t.mt = gFirstM + (tile % perGroup) % gSize;
    t.nt = (tile % perGroup) / gSize;
    t.split = split;
    t.gBegin = split * (p.kBlocksPerSplit >> 1);
    t.nSteps = min(p.K >> 7, t.gBegin + (p.kBlocksPerSplit >> 1)) - t.gBegin;
    return t;
}

template <int MS, int NTOK, int WAIT>
__device__ __forceinline__ void w4a8_ws_consume(const W4A8WsParams& p, u32 base, u32 barBase, u8* tail);

template <int MS, int NTOK, int WAIT>
__device__ __forceinline__ void w4a8_ws_impl(const W4A8WsParams& p) {
    using S = WsShape<MS, NTOK>;
    constexpr int STAGES = S::STAGES;
    extern __shared__ __align__(1024) u8 smem[];
    const u32 raw = (u32)__cvta_generic_to_shared(smem);
    const u32 base = (raw + 1023u) & ~1023u;
    const u32 barBase = base + STAGES * S::STAGE;
    u8* tail = smem + (barBase - raw);

    if (threadIdx.x == 0) {
        u32 dyn;
        asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(dyn));
        if (dyn < (u32)S::SMEM) __trap(); // the launcher's shared-memory size must match WsShape
#pragma unroll 1
        for (int s = 0; s < STAGES; ++s) {
            mbar_init(barBase + 8u * s, 1);                 // full: the producer's arrive + the copies' bytes
            mbar_init(barBase + 8u * (STAGES + s), 8);      // empty: one arrive per consumer warp
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    }
    __syncthreads();

    if (threadIdx.x < 128) {
        // Producer warpgroup: gives registers to the consumers; one thread issues all copies, running ahead across
        // tile boundaries (the next tile's first stages load while the consumers run the epilogue).
#if W4A8_WS_REGS > 232 || W4A8_WS_OCC == 2
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;");
#else
        asm volatile("setmaxnreg.dec.sync.aligned.u32 40;");
#endif
        if (threadIdx.x == 0) {
            const int work = ((p.M + NTOK - 1) / NTOK) * (p.N / S::ROWS) * p.splits;
            const int kBlocks = p.K >> 6, groups = p.K >> 7;
            int it = 0;
#pragma unroll 1
            for (int w = blockIdx.x; w < work; w += gridDim.x) {
                const WsTile t = ws_tile<NTOK, S::ROWS>(p, w);
                // flags bit 1: start each n-tile's k walk at a different group, so that CTAs sharing one activation
                // tile (all of them at M <= 256) do not read the same 32 KB at once. Measured: no effect (off by
                // default); M = 256 stays at ~2 us per stage against 0.8 at M = 2048 for another reason.
                const int rot = (p.flags & 2) ? t.nt % t.nSteps : 0;
#pragma unroll 1
                for (int st = 0; st < t.nSteps; ++st, ++it) {
                    const int s = it % STAGES;
                    if (it >= STAGES) mbar_wait(barBase + 8u * (STAGES + s), ((it / STAGES) - 1) & 1);
                    const u32 stage = base + s * S::STAGE, full = barBase + 8u * s;
                    const int g = t.gBegin + (st + rot < t.nSteps ? st + rot : st + rot - t.nSteps);
                    mbar_expect_tx(full, S::TX_BYTES);
                    tma_load_2d(stage, &p.act, g * 128, t.mt * NTOK, full);
                    if (p.flags & 1) {
                        tma_load_2d(stage + S::ACT_BYTES, &p.wmap, g * 128, t.nt * S::SLABS, full);
                        tma_load_2d(stage + S::ACT_BYTES + S::W_BYTES, &p.smap, g * 2, t.nt * S::SLABS, full);
                    } else {
#pragma unroll 1
                        for (int j = 0; j < S::SLABS; ++j) {
                            const int slab = t.nt * S::SLABS + j;
                            bulk_g2s(stage + S::ACT_BYTES + j * 1024, p.weight + ((size_t)slab * kBlocks + 2 * g) * 512, 1024, full);
                            bulk_g2s(stage + S::ACT_BYTES + S::W_BYTES + j * 16, p.sigma + ((size_t)slab * groups + g) * 16, 16, full);
                        }
                    }
                }
            }
        }
    } else {
        // setmaxnreg acts only when each role is one branch of a single if/else (HOPPER.md; ptxas warning C7508).
#if W4A8_WS_OCC == 2
        asm volatile("setmaxnreg.inc.sync.aligned.u32 104;"); // the pool is per CTA: 128 x 24 + 256 x 104 <= 384 x 80 (112 hung)
#else
        asm volatile("setmaxnreg.inc.sync.aligned.u32 " W4A8_WS_STR(W4A8_WS_REGS) ";");
#endif
        w4a8_ws_consume<MS, NTOK, WAIT>(p, base, barBase, tail);
    }
}

// One stage (128-wide k group, ring slot it % STAGES) of a consumer warpgroup. A registers: WAIT = 1 keeps one wgmma
// group in flight while the next k-block is converted (2 buffers, index q). WAIT = 2 (4 buffers, index 2*PAR + q) was
// measured slower: ptxas serializes it (C7513, the A buffers share physical registers), so only WAIT = 1 is built.
// Releases the previous ring slot once all its groups have completed (first = the tile's first stage: its
// predecessor was released at the end of the previous tile).
// Waits for ring slot `it` to be full and reads this warp's codes and sigma pairs of it (LUTs built in registers).
template <int MS, int NTOK>
__device__ __forceinline__ void w4a8_ws_load(Lut (&lut)[MS][2], u32x4 (&wv)[MS][2], u32 base, u32 barBase, int it, int cw, int warp, int lane, int gid) {
    using S = WsShape<MS, NTOK>;
    constexpr int STAGES = S::STAGES;
    const int s = it % STAGES;
    mbar_wait(barBase + 8u * s, (it / STAGES) & 1);
    const u32 stage = base + s * S::STAGE;
#pragma unroll
    for (int ms = 0; ms < MS; ++ms) {
        const int j = (cw * MS + ms) * 4 + warp; // this warp's 16-row slab in the CTA
        load_luts(lds_u16(stage + S::ACT_BYTES + S::W_BYTES + j * 16 + gid * 2), lut[ms][0], lut[ms][1]);
        wv[ms][0] = lds_v4(stage + S::ACT_BYTES + j * 1024 + lane * 16);
        wv[ms][1] = lds_v4(stage + S::ACT_BYTES + j * 1024 + 512 + lane * 16);
    }
}

// `loaded`: lut/wv already hold this stage (prefetched by the previous stage). `next` (W4A8_WS_PREFETCH = 1): after
// issuing the last wgmma group, and before waiting on the previous one, read the next stage of the same tile into
// lut/wv, so that its smem loads and LUT build are off the decode -> wgmma chain (same arithmetic, same bits).
template <int MS, int NTOK, int WAIT, int PAR, int NB>
__device__ __forceinline__ void w4a8_ws_stage(float (&acc)[MS][NTOK / 2], u32 (&areg)[NB][MS][8], Lut (&lut)[MS][2], u32x4 (&wv)[MS][2],
                                              u32 base, u32 barBase, int it, bool first, bool loaded, bool next,
                                              int cw, int warp, int lane, int gid) {
    using S = WsShape<MS, NTOK>;
    constexpr int STAGES = S::STAGES;
    const int s = it % STAGES;
    const u32 stage = base + s * S::STAGE;
    if (!loaded) w4a8_ws_load<MS, NTOK>(lut, wv, base, barBase, it, cw, warp, lane, gid);
#pragma unroll
    for (int q = 0; q < 2; ++q) {
        const int buf = WAIT == 1 ? q : 2 * PAR + q;
#pragma unroll
        for (int ms = 0; ms < MS; ++ms) {
            u32* a = areg[buf][ms];
            convert8(wv[ms][q].x, lut[ms][0], lut[ms][1], a[0], a[1]);
            convert8(wv[ms][q].y, lut[ms][0], lut[ms][1], a[2], a[3]);
            convert8(wv[ms][q].z, lut[ms][0], lut[ms][1], a[4], a[5]);
            convert8(wv[ms][q].w, lut[ms][0], lut[ms][1], a[6], a[7]);
        }
        asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
        for (int ks = 0; ks < 2; ++ks) {
            const u64 desc = sw128_desc(stage + q * 64 + ks * 32);
#pragma unroll
            for (int ms = 0; ms < MS; ++ms) {
                const u32* a = areg[buf][ms];
                Wgmma<NTOK>::run(acc[ms], a[4 * ks], a[4 * ks + 1], a[4 * ks + 2], a[4 * ks + 3], desc, 1);
            }
        }
        asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
        if (q == 1 && next) w4a8_ws_load<MS, NTOK>(lut, wv, base, barBase, it + 1, cw, warp, lane, gid);
        asm volatile("wgmma.wait_group.sync.aligned %0;" :: "n"(WAIT) : "memory");
        // The group that just completed read buffer `done`: keep its registers alive (unmoved) until here.
        const int done = WAIT == 1 ? (q ^ 1) : (2 * (PAR ^ 1) + q);
#pragma unroll
        for (int ms = 0; ms < MS; ++ms) {
            u32* prev = areg[done][ms];
            asm volatile("" : "+r"(prev[0]), "+r"(prev[1]), "+r"(prev[2]), "+r"(prev[3]), "+r"(prev[4]), "+r"(prev[5]), "+r"(prev[6]), "+r"(prev[7]));
        }
        if (q == WAIT - 1 && !first) {
            __syncwarp();
            if (lane == 0) mbar_arrive(barBase + 8u * (STAGES + (it - 1) % STAGES));
        }
    }
}

template <int MS, int NTOK, int WAIT>
__device__ __forceinline__ void w4a8_ws_consume(const W4A8WsParams& p, u32 base, u32 barBase, u8* tail) {
    using S = WsShape<MS, NTOK>;
    constexpr int STAGES = S::STAGES;
    const int ct = threadIdx.x - 128;
    const int cw = ct >> 7, warp = (ct >> 5) & 3, lane = ct & 31, gid = lane >> 2, tig = lane & 3;
    constexpr int NACC = NTOK / 2, NB = 2 * WAIT;
    volatile u32* ticket = (volatile u32*)(tail + 256);
    float* tsm = (float*)(tail + 512);
    const int mTiles = (p.M + NTOK - 1) / NTOK;
    const int work = mTiles * (p.N / S::ROWS) * p.splits;
    float acc[MS][NACC];
    u32 areg[NB][MS][8];
    Lut lut[MS][2];
    u32x4 wv[MS][2];
    int it = 0;
#if W4A8_WS_STORE == 1
    int epiIt = 0;                              // output chunks written so far (buffer = epiIt & 1)
    const bool storeLeader = (ct & 127) == 0;   // the thread of each consumer warpgroup that issues its bulk stores
#endif
#pragma unroll 1
    for (int w = blockIdx.x; w < work; w += gridDim.x) {
        const WsTile t = ws_tile<NTOK, S::ROWS>(p, w);
        const int m0 = t.mt * NTOK;
        // Stage this tile's token scales in shared memory (per-element global loads in the epilogue were a third of
        // all stall samples in ncu). The barrier keeps the previous tile's epilogue readers first.
        consumer_sync();
        for (int i = ct; i < NTOK; i += 256) tsm[i] = m0 + i < p.M ? p.tokenScale[m0 + i] : 0.f;
#pragma unroll
        for (int ms = 0; ms < MS; ++ms)
#pragma unroll
            for (int i = 0; i < NACC; ++i) acc[ms][i] = 0.f;
#pragma unroll 1
        for (int st = 0; st < t.nSteps; st += 2) {
            const bool pf = W4A8_WS_PREFETCH == 1;
            w4a8_ws_stage<MS, NTOK, WAIT, 0, NB>(acc, areg, lut, wv, base, barBase, it + st, st == 0, pf && st > 0, pf && st + 1 < t.nSteps,
                                                 cw, warp, lane, gid);
            if (st + 1 < t.nSteps)
                w4a8_ws_stage<MS, NTOK, WAIT, 1, NB>(acc, areg, lut, wv, base, barBase, it + st + 1, false, pf, pf && st + 2 < t.nSteps,
                                                     cw, warp, lane, gid);
        }
        it += t.nSteps;
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
        // The tile's last ring slot is free now: the producer refills it during this epilogue.
        __syncwarp();
        if (lane == 0) mbar_arrive(barBase + 8u * (STAGES + (it - 1) % STAGES));

        if (p.flags & 4) continue; // diagnostic: main loop only

        // Epilogue. acc[ms][4j + r]: row n = n0 + slab*16 + gid + 8*(r>>1), token m = m0 + 8j + 2*tig + (r&1).
        const int rowBase = t.nt * S::ROWS + gid;
#if W4A8_WS_SPLIT == 1
        if (p.splits > 1) {
            // Thread-private partials: tile region of ROWS*NTOK floats, float4 v of thread ct at [v][ct].
            constexpr int NV = MS * NACC / 4;
            const size_t tileFloats = (size_t)S::ROWS * NTOK;
            const int tileIdx = t.nt * mTiles + t.mt, tiles = mTiles * (p.N / S::ROWS);
            float* mine = p.workspace + ((size_t)t.split * tiles + tileIdx) * tileFloats + 4 * ct;
#pragma unroll
            for (int v = 0; v < NV; ++v) {
                const int ms = v / (NACC / 4), i = 4 * (v % (NACC / 4));
                stg_f32x4(mine + (size_t)v * 1024, acc[ms][i], acc[ms][i + 1], acc[ms][i + 2], acc[ms][i + 3]);
            }
            __threadfence();
            consumer_sync();
            u32* counter = p.counters + (size_t)tileIdx;
            if (ct == 0) *ticket = atomicAdd(counter, 1u);
            consumer_sync();
            if (*ticket != (u32)(p.splits - 1)) continue;
            __threadfence();
            // Same summation order as layout 0 (split 0, 1, ...), so both layouts give identical bits.
            constexpr int CHUNK = NV < 16 ? NV : 16; // float4s in flight per round: 64 registers next to the accumulators
#pragma unroll 1
            for (int z = 0; z < p.splits; ++z) {
                const float* wz = p.workspace + ((size_t)z * tiles + tileIdx) * tileFloats + 4 * ct;
#pragma unroll
                for (int c0 = 0; c0 < NV; c0 += CHUNK) {
                    f32x4 part[CHUNK];
#pragma unroll
                    for (int c = 0; c < CHUNK; ++c) part[c] = ldcg_f32x4(wz + (size_t)(c0 + c) * 1024);
#pragma unroll
                    for (int c = 0; c < CHUNK; ++c) {
                        const int v = c0 + c, ms = v / (NACC / 4), i = 4 * (v % (NACC / 4));
                        acc[ms][i] = z == 0 ? part[c].x : acc[ms][i] + part[c].x;
                        acc[ms][i + 1] = z == 0 ? part[c].y : acc[ms][i + 1] + part[c].y;
                        acc[ms][i + 2] = z == 0 ? part[c].z : acc[ms][i + 2] + part[c].z;
                        acc[ms][i + 3] = z == 0 ? part[c].w : acc[ms][i + 3] + part[c].w;
                    }
                }
            }
            if (ct == 0) *counter = 0u;
        } else {
            consumer_sync(); // the token scales staged above are visible
        }
#else
        if (p.splits > 1) {
            // Serial split-K as in W4A8Gemm.cu: park partial sums; the last CTA of the tile (atomic ticket) reduces
            // them in split order (its own partial re-read), so results do not depend on scheduling. The split loop
            // is outermost so each pass issues all loads at once (one latency per split, not per element).
            float* ws = p.workspace + (size_t)t.split * p.M * p.N;
#pragma unroll
            for (int ms = 0; ms < MS; ++ms)
#pragma unroll
                for (int i = 0; i < NACC; ++i) {
                    const int n = rowBase + ((cw * MS + ms) * 4 + warp) * 16 + 8 * ((i & 3) >> 1);
                    const int m = m0 + 8 * (i >> 2) + 2 * tig + (i & 1);
                    if (m < p.M) ws[(size_t)m * p.N + n] = acc[ms][i];
                }
            __threadfence();
            consumer_sync();
            u32* counter = p.counters + (size_t)t.nt * mTiles + t.mt;
            if (ct == 0) *ticket = atomicAdd(counter, 1u);
            consumer_sync();
            if (*ticket != (u32)(p.splits - 1)) continue;
            __threadfence();
#pragma unroll 1
            for (int z = 0; z < p.splits; ++z) {
                const float* wz = p.workspace + (size_t)z * p.M * p.N;
#pragma unroll
                for (int ms = 0; ms < MS; ++ms)
#pragma unroll
                    for (int i = 0; i < NACC; ++i) {
                        const int n = rowBase + ((cw * MS + ms) * 4 + warp) * 16 + 8 * ((i & 3) >> 1);
                        const int m = m0 + 8 * (i >> 2) + 2 * tig + (i & 1);
                        const float v = m < p.M ? ldcg_f32(wz + (size_t)m * p.N + n) : 0.f;
                        acc[ms][i] = z == 0 ? v : acc[ms][i] + v;
                    }
            }
            if (ct == 0) *counter = 0u;
        } else {
            consumer_sync(); // the token scales staged above are visible
        }
#endif
#if W4A8_WS_STORE == 1
        // acc[4j + r] -> row nA + 8*(r>>1), token 8j + 2*tig + (r&1) is exactly stmatrix's fragment of the 8x8 matrix
        // (rows n, columns tokens); stored transposed, each memory row is one token's 8 consecutive n (16 bytes).
        // Per 32-token chunk: wait until the bulk store that last read this buffer is done, write the MS boxes, fence the
        // generic -> async proxy, and one thread issues the stores. Lane L addresses row L%8 of matrix L/8 (token group
        // (L/8)/2 of the j pair, row half (L/8)%2); the 16-byte column chunk is XOR-swizzled with the row (SWIZZLE_128B).
        {
            const u32 epi = barBase + 2048u + (u32)cw * (2u * MS * 4096u);
            const int mi = lane >> 3, mr = lane & 7;
            const u32 laneOff = (u32)(8 * (mi >> 1) + mr) * 128u + ((u32)((warp * 2 + (mi & 1)) ^ mr) << 4);
            float cA[MS], cB[MS];
#pragma unroll
            for (int ms = 0; ms < MS; ++ms) {
                const int nA = rowBase + ((cw * MS + ms) * 4 + warp) * 16;
                cA[ms] = p.channelScale[nA];
                cB[ms] = p.channelScale[nA + 8];
            }
#pragma unroll
            for (int c = 0; c < NTOK / 32; ++c, ++epiIt) {
                const u32 buf = epi + (u32)(epiIt & 1) * (MS * 4096u);
                if (storeLeader) asm volatile("cp.async.bulk.wait_group.read 1;" ::: "memory");
                wg_sync(cw);
#pragma unroll
                for (int ms = 0; ms < MS; ++ms)
#pragma unroll
                    for (int jj = 0; jj < 2; ++jj) {
                        const int j0 = 4 * c + 2 * jj, mA = 8 * j0 + 2 * tig, mB = mA + 8;
                        const float t00 = tsm[mA], t01 = tsm[mA + 1], t10 = tsm[mB], t11 = tsm[mB + 1];
                        const float* a = acc[ms];
                        stmatrix_x4_trans(buf + ms * 4096u + 2u * 8u * 128u * (u32)jj + laneOff,
                                          pack_bf16(cA[ms] * (t00 * a[4 * j0]), cA[ms] * (t01 * a[4 * j0 + 1])),
                                          pack_bf16(cB[ms] * (t00 * a[4 * j0 + 2]), cB[ms] * (t01 * a[4 * j0 + 3])),
                                          pack_bf16(cA[ms] * (t10 * a[4 * j0 + 4]), cA[ms] * (t11 * a[4 * j0 + 5])),
                                          pack_bf16(cB[ms] * (t10 * a[4 * j0 + 6]), cB[ms] * (t11 * a[4 * j0 + 7])));
                    }
                asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
                wg_sync(cw);
                if (storeLeader) {
#pragma unroll
                    for (int ms = 0; ms < MS; ++ms)
                        tma_store_2d(&p.ymap, buf + ms * 4096u, t.nt * S::ROWS + (cw * MS + ms) * 64, m0 + 32 * c);
                    asm volatile("cp.async.bulk.commit_group;" ::: "memory");
                }
            }
        }
#else
        // acc[4j + r] -> row nA + 8*(r>>1), token 8j + 2*tig + (r&1): one row pointer per thread, 8j*N steps, and no
        // bounds checks for tiles wholly inside M (ncu: per-element address math and checks were ~20% of samples).
        const bool whole = m0 + NTOK <= p.M;
        const size_t N = (size_t)p.N;
#pragma unroll
        for (int ms = 0; ms < MS; ++ms) {
            const int nA = rowBase + ((cw * MS + ms) * 4 + warp) * 16;
            const float cA = p.channelScale[nA], cB = p.channelScale[nA + 8];
            u16* yb = p.y + (size_t)(m0 + 2 * tig) * N + nA;
#if W4A8_WS_EPI == 1
            // Rows gid and gid^1 (lanes L and L^4) swap halves: the even row's lane stores token mi of rows (gid, gid+1),
            // the odd row's lane token mi+1 of rows (gid-1, gid), each as one u32 (two bf16) per row block.
            const bool odd = gid & 1;
            u32* yp = (u32*)(yb - (odd ? 1 : 0) + (odd ? N : 0));
#pragma unroll
            for (int j = 0; j < NTOK / 8; ++j) {
                const int mi = 8 * j + 2 * tig;
                const float t0 = tsm[mi], t1 = tsm[mi + 1];
                const u32 a0 = f32_to_bf16(cA * (t0 * acc[ms][4 * j])), a1 = f32_to_bf16(cA * (t1 * acc[ms][4 * j + 1]));
                const u32 b0 = f32_to_bf16(cB * (t0 * acc[ms][4 * j + 2])), b1 = f32_to_bf16(cB * (t1 * acc[ms][4 * j + 3]));
                // even lane sends its token mi+1 values, odd lane its token mi values
                const u32 sent = odd ? (a0 | (b0 << 16)) : (a1 | (b1 << 16));
                const u32 got = __shfl_xor_sync(0xffffffffu, sent, 4);
                const u32 pa = odd ? ((got & 0xFFFFu) | (a1 << 16)) : (a0 | (got << 16));
                const u32 pb = odd ? ((got >> 16) | (b1 << 16)) : (b0 | (got & 0xFFFF0000u));
                if (whole || m0 + mi + (odd ? 1 : 0) < p.M) {
                    u32* r = yp + (size_t)(8 * j) * (N / 2);
                    r[0] = pa;
                    r[4] = pb;
                }
            }
#else
#pragma unroll
            for (int j = 0; j < NTOK / 8; ++j) {
                const int mi = 8 * j + 2 * tig;
                const float t0 = tsm[mi], t1 = tsm[mi + 1];
                u16* r = yb + (size_t)(8 * j) * N;
                if (whole || m0 + mi < p.M) {
                    r[0] = f32_to_bf16(cA * (t0 * acc[ms][4 * j]));
                    r[8] = f32_to_bf16(cB * (t0 * acc[ms][4 * j + 2]));
                }
                if (whole || m0 + mi + 1 < p.M) {
                    r[N] = f32_to_bf16(cA * (t1 * acc[ms][4 * j + 1]));
                    r[N + 8] = f32_to_bf16(cB * (t1 * acc[ms][4 * j + 3]));
                }
            }
#endif
        }
#endif
    }
#if W4A8_WS_STORE == 1
    if (storeLeader) asm volatile("cp.async.bulk.wait_group 0;" ::: "memory"); // the output is written before the CTA ends
#endif
}

// 384 threads, one persistent CTA per SM (grid = min(work units, SMs); the register cap at entry is what setmaxnreg redistributes: 128*40 + 256*232 <= 64K).
#define W4A8_WS_INSTANCE(MS, NTOK, WAIT) \
    W4A8_GEMM_ENTRY(w4a8_ws_n##NTOK##_r##MS##_w##WAIT, (384, W4A8_WS_OCC), const __grid_constant__ W4A8WsParams, (w4a8_ws_impl<MS, NTOK, WAIT>))
W4A8_WS_INSTANCE(1, 64, 1)
#if W4A8_WS_OCC != 2 // the two-CTA build holds only the 32-accumulator tile (W4A8Gemm.WsCtasPerSm): ptxas found no 80-register
                     // allocation for the 64-accumulator tiles (C7602, needs 94, H100 run of 2026-11-27)
W4A8_WS_INSTANCE(2, 64, 1)
W4A8_WS_INSTANCE(1, 128, 1)
W4A8_WS_INSTANCE(2, 128, 1)
W4A8_WS_INSTANCE(1, 256, 1)
#endif
