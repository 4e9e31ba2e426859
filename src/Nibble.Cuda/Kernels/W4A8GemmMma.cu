// W4A8 GEMM, decode variant (M <= 32): same operands and result as W4A8Gemm.cu, through f16 mma.sync m16n8k16 with
// FP32 accumulation. Every e4m3 value (weights e4m3(q*sigma), activations x8) is exact in f16 and every product of two
// is exact in FP32, so this computes the same exact products with FP32 sums as the FP8 path. sm_90 has no native FP8
// mma.sync: the e4m3 form of the instruction is F2FP (e4m3 -> f16, a conversion at 16 lanes/clk/SM) + HMMA, and those
// conversions bounded the previous version at ~1.85 TB/s. Here the weights never pass through e4m3 at all:
//
//   e4m3(q*sigma) = n * unit, unit = 2^(E-3) for sigma = 1.xxx * 2^E (2^-9 for subnormal sigma), integer |n| <= 120.
//
// So an 8-entry byte LUT per (row, group) holds u = n + 128, two PRMT lookups + a sign-select PRMT pick the bytes of
// 4 codes (CUTLASS's lookup_table_convert idea, spec §1.5, learned from, not copied), one PRMT places a byte under the
// f16 exponent 0x64 (the f16 of 1024 + u), and one HFMA2 (1024 + u) * unit - 1152 * unit = n * unit gives the exact
// f16 weight (exact product, no rounding). All integer/FMA-pipe work, no conversion instruction per weight. The LUT
// (u bytes + unit/bias f16 pairs) depends only on the sigma byte: W4A8DecodeTable.cs builds it once on the host
// (256 entries, 6 KB, L1-resident); its exactness for every sigma and code is a CPU test.
//
// Activations: x8 in natural k order, one 16-byte load per token, k-block and lane, converted to f16 once per warp and
// shared by the warp's WN 16-row slabs (8 conversions per k-block and token tile).
//
// Weight layout (W4A8WeightPrep.cu, docs/kernels/w4a8-gemm.md): 16-row x 64-k blocks of 512 bytes, block (nb, kb) at
// ((nb * K/64) + kb) * 512. Lane L (gid = L/4, tig = L%4) owns bytes [16L, 16L+16): words w = 0..3, word = 4 codes of
// row gid then 4 of row gid+8 at physical k = 64kb + 16tig + 4w + {0..3}. Word w is one m16n8k16 A fragment: codes
// {0,1} -> mma columns {2tig, 2tig+1}, codes {2,3} -> {2tig+8, 2tig+9}; the B fragment of the same lane takes the
// activations at the same physical k, so bytes {0,1} and {2,3} of the lane's activation word w (reduction order is
// free as long as A and B agree).
#include "Common.cuh"
#include "SplitK.cuh"

#ifndef W4A8_MMA_RING
#define W4A8_MMA_RING 4
#endif

struct alignas(8) u32x2 { u32 x, y; };

struct W4A8DecodeParams {
    const u8* x8;              // [M, K] e4m3 activations, natural k order
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
    const u32x4* table;        // [256] per sigma byte: u bytes of codes 8..15 (nLo, nHi) and 0..7 (pLo, pHi)
    const u32x2* tableScale;   // [256] per sigma byte: (unit, unit) and (-1152 unit, -1152 unit) as f16x2
    const float* bias;         // [N] FP32, added before the one bf16 rounding (W4A8Reference), or null
    const u8* x16;             // v8 only: [M, K] f16 copy of x8 (exact), natural k order (w4a8_x8_to_f16)
};
static_assert(sizeof(W4A8DecodeParams) == 120, "W4A8DecodeParams must match W4A8GemmDecode.cs");

__device__ __forceinline__ u32x2 ldg_nc_v2(const void* p) {
    u32x2 r;
    asm volatile("ld.global.nc.v2.u32 {%0,%1}, [%2];" : "=r"(r.x), "=r"(r.y) : "l"(p));
    return r;
}
__device__ __forceinline__ u32 hfma2(u32 a, u32 b, u32 c) {
    u32 d;
    asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}
__device__ __forceinline__ void mma_f16(float (&d)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// One row's decode state for one group: the u bytes of the 16 codes and the f16x2 unit / offset pair.
struct DecLut { u32 nLo, nHi, pLo, pHi, unit2, bias2; };

// From the CTA's shared-memory copy of the table (32-bit addresses, no L1 round trip at each group start).
__device__ __forceinline__ void load_dec_lut(const u32x4* tab, const u32x2* scale, u32 sigmaByte, DecLut& l) {
    const u32x4 t = tab[sigmaByte];
    const u32x2 s = scale[sigmaByte];
    l.nLo = t.x; l.nHi = t.y; l.pLo = t.z; l.pHi = t.w; l.unit2 = s.x; l.bias2 = s.y;
}

// 8 codes (4 of row gid in the low half, 4 of row gid+8 in the high half) -> the 4 f16x2 registers of one m16n8k16
// A fragment, each element the exact f16 of e4m3(q * sigma).
__device__ __forceinline__ void decode8(u32 w, const DecLut& r0, const DecLut& r1, u32& a0, u32& a1, u32& a2, u32& a3) {
    // per nibble j: j + 4*s_j (prmt: pos or neg byte). One LOP3 with the constant in a register (two immediates
    // would be two instructions), then the shift.
    u32 sign;
    asm("lop3.b32 %0, %1, 0x88888888, %2, 0xEA;" : "=r"(sign) : "r"(w), "r"(0x64206420u));
    sign >>= 1;
    const u32 idx = w & 0x77777777u;                          // magnitude index, sign bit cleared
    const u32 b0 = prmt(prmt(r0.pLo, r0.pHi, idx), prmt(r0.nLo, r0.nHi, idx), sign);
    const u32 idx1 = idx >> 16, sign1 = sign >> 16;
    const u32 b1 = prmt(prmt(r1.pLo, r1.pHi, idx1), prmt(r1.nLo, r1.nHi, idx1), sign1);
    // [0x64, u_hi, 0x64, u_lo] is the f16x2 (1024 + u_lo, 1024 + u_hi).
    a0 = hfma2(prmt(b0, 0x64646464u, 0x4140u), r0.unit2, r0.bias2); // row gid,   codes 0,1 -> cols 2tig, 2tig+1
    a2 = hfma2(prmt(b0, 0x64646464u, 0x4342u), r0.unit2, r0.bias2); // row gid,   codes 2,3 -> cols 2tig+8, 2tig+9
    a1 = hfma2(prmt(b1, 0x64646464u, 0x4140u), r1.unit2, r1.bias2); // row gid+8, codes 0,1
    a3 = hfma2(prmt(b1, 0x64646464u, 0x4342u), r1.unit2, r1.bias2); // row gid+8, codes 2,3
}

// MT tokens per CTA (multiple of 8), WN 16-row slabs per warp, 4 warps per CTA: CTA tile = (64*WN) rows x MT tokens.
// FAST (v6): ring steps wholly inside the split run without bounds guards, each load at running pointer + constant;
// the last steps run guarded as in v3. (v4/v5, a "fold" decode without HFMA2, were measured and removed: see
// docs/kernels/w4a8-gemm.md.)
// LATE (the v7 loop, built only under XH): in the unguarded steps each ring slot is refilled after its k-block's MMAs
// instead of before them. The loads and MMAs are asm volatile, so their written order is the issued order: a refill issued before the
// decode must land in other registers than the values still being decoded, which costs one register copy per ring
// word at every k-block (4 weight words, 4 activation words per token tile, the sigma pair). Refilled after, the slot
// is dead and the load reuses it; the weights are still D-1 k-blocks ahead (thousands of cycles at this kernel's issue
// rate, above DRAM latency), the activations one (L2). Same arithmetic and order of sums as v3/v6: exact. Alone (v7) it
// was 2-5 % slower than v6 in a same-run H100 comparison, so its own entry points were removed (cold compile time).
// XH (v8, with FAST and LATE): the activations come as f16 (w4a8_x8_to_f16, one pass per GEMM) instead of being
// converted from e4m3 by every warp of every CTA at every k-block: two 16-byte loads per token tile and k-block replace
// one load, 8 F2FP and their half-word extractions; the f16 values are the same exact ones, so are the sums.
template <int MT, int WN, bool FAST, bool LATE = false, bool XH = false>
__device__ __forceinline__ void w4a8_decode_impl(const W4A8DecodeParams& p) {
    constexpr int NT = MT / 8;       // n8 tiles (tokens) per warp
    constexpr int D = W4A8_MMA_RING; // k-blocks of weights in flight per thread (register ring), even
    constexpr int SD = D / 2;        // groups of sigma in flight (one group = two k-blocks)
    constexpr int XV = XH ? 2 : 1;   // 16-byte activation loads per token tile and k-block
    constexpr int XS = 64 * XV;      // activation bytes per row and k-block
    static_assert(D % 2 == 0 && D >= 2, "W4A8_MMA_RING must be even");
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int gid = lane >> 2, tig = lane & 3;
    const int kBlocks = p.K >> 6, groups = p.K >> 7;

    // Grouped raster: consecutive CTAs walk groupM m-tiles of one n-tile column before moving on, so a wave
    // shares weights and activations in L2 (Triton's GROUP_M ordering).
    const int mTiles = (p.M + MT - 1) / MT, nTiles = p.N / (64 * WN);
    const int tile = blockIdx.x;
    const int perGroup = p.groupM * nTiles;
    const int gFirstM = (tile / perGroup) * p.groupM;
    const int gSize = min(mTiles - gFirstM, p.groupM);
    const int mt = gFirstM + (tile % perGroup) % gSize;
    const int nt = (tile % perGroup) / gSize;
    const int split = blockIdx.y;
    const int m0 = mt * MT;
    const int nb0 = (nt * 4 + warp) * WN;
    const int kbBegin = split * p.kBlocksPerSplit;
    const int kbEnd = min(kBlocks, kbBegin + p.kBlocksPerSplit);
    const int gBegin = kbBegin >> 1, gEnd = kbEnd >> 1;

    float acc[WN][NT][4];
#pragma unroll
    for (int w = 0; w < WN; ++w)
#pragma unroll
        for (int j = 0; j < NT; ++j) acc[w][j][0] = acc[w][j][1] = acc[w][j][2] = acc[w][j][3] = 0.f;

    // Activation rows this thread reads for its B fragments (rows past M read row M-1; their results are dropped).
    const u8* xrow[NT];
#pragma unroll
    for (int j = 0; j < NT; ++j) xrow[j] = (XH ? p.x16 : p.x8) + ((size_t)min(m0 + j * 8 + gid, p.M - 1) * p.K + tig * 16) * XV;

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
    // Sigma pairs as far ahead as the weights (they come from DRAM too).
    u32 sring[SD][WN];
#pragma unroll
    for (int s = 0; s < SD; ++s)
#pragma unroll
        for (int w = 0; w < WN; ++w) sring[s][w] = gBegin + s < gEnd ? (u32)__ldg(sbase[w] + (gBegin + s) * 8) : 0u;
    // Activations two k-blocks ahead (a split has at least one group = two k-blocks).
    u32x4 xring[2][NT][XV];
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int h = 0; h < XV; ++h) {
            xring[0][j][h] = ldg_nc_v4(xrow[j] + kbBegin * XS + h * 16);
            xring[1][j][h] = ldg_nc_v4(xrow[j] + (kbBegin + 1) * XS + h * 16);
        }
    // The decode table (6 KB) into shared memory while the first weights are on their way.
    __shared__ u32x4 sTab[256];
    __shared__ u32x2 sScale[256];
    for (int i = threadIdx.x; i < 256; i += blockDim.x) { sTab[i] = ldg_nc_v4(p.table + i); sScale[i] = ldg_nc_v2(p.tableScale + i); }
    __syncthreads();

    DecLut lut[WN][2];
    // Running pointers at the current ring step (FAST: the unguarded steps address every load as pointer + constant).
    const u32x4* wcur[WN];
    const u16* scur[WN];
    const u8* xcur[NT];
#pragma unroll
    for (int w = 0; w < WN; ++w) { wcur[w] = wbase[w] + (size_t)kbBegin * 32; scur[w] = sbase[w] + (kbBegin >> 1) * 8; }
#pragma unroll
    for (int j = 0; j < NT; ++j) xcur[j] = xrow[j] + kbBegin * XS;

    // One ring step: D k-blocks from kb0. full: kb0 + 2D <= kbEnd, so every k-block and every prefetch (weights D
    // ahead, activations 2 ahead, sigma SD groups ahead; kbEnd is even) is in range and no guard is evaluated.
    auto ringStep = [&](const int kb0, const bool full) {
#pragma unroll
        for (int d = 0; d < D; ++d) {
            const int kb = kb0 + d;
            if (full || kb < kbEnd) {
                u32x4 cur[WN];
#pragma unroll
                for (int w = 0; w < WN; ++w) {
                    cur[w] = ring[d][w];
                    if (full && LATE) continue;
                    if (full) ring[d][w] = ldg_stream_v4(wcur[w] + (d + D) * 32);
                    else if (kb + D < kbEnd) ring[d][w] = ldg_stream_v4(wbase[w] + (size_t)(kb + D) * 32);
                }
                u32x4 xb[NT][XV];
#pragma unroll
                for (int j = 0; j < NT; ++j)
#pragma unroll
                    for (int h = 0; h < XV; ++h) {
                        xb[j][h] = xring[d & 1][j][h];
                        if (full && LATE) continue;
                        if (full) xring[d & 1][j][h] = ldg_nc_v4(xcur[j] + (d + 2) * XS + h * 16);
                        else if (kb + 2 < kbEnd) xring[d & 1][j][h] = ldg_nc_v4(xrow[j] + (kb + 2) * XS + h * 16);
                    }
                if ((d & 1) == 0) { // group start: kbBegin is even and D is even, so kb is even exactly when d is
                    const int g = kb >> 1;
#pragma unroll
                    for (int w = 0; w < WN; ++w) {
                        const u32 s2 = sring[d / 2][w];
                        if (full && LATE) {
                            load_dec_lut(sTab, sScale, s2 & 0xFFu, lut[w][0]);
                            load_dec_lut(sTab, sScale, (s2 >> 8) & 0xFFu, lut[w][1]);
                            sring[d / 2][w] = __ldg(scur[w] + (d / 2 + SD) * 8);
                            continue;
                        }
                        if (full) sring[d / 2][w] = __ldg(scur[w] + (d / 2 + SD) * 8);
                        else if (g + SD < gEnd) sring[d / 2][w] = __ldg(sbase[w] + (g + SD) * 8);
                        load_dec_lut(sTab, sScale, s2 & 0xFFu, lut[w][0]);
                        load_dec_lut(sTab, sScale, (s2 >> 8) & 0xFFu, lut[w][1]);
                    }
                }
                // B fragments in f16 (exact), shared by the WN slabs: word q of the 16-byte load -> (bytes 0,1), (2,3).
                u32 bf[NT][8];
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    if (XH) { // f16 element 2i | 2i+1 << 16 in word i: already the B fragments, in the same order
                        const u32x4 lo = xb[j][0], hi = xb[j][XV - 1];
                        bf[j][0] = lo.x; bf[j][1] = lo.y; bf[j][2] = lo.z; bf[j][3] = lo.w;
                        bf[j][4] = hi.x; bf[j][5] = hi.y; bf[j][6] = hi.z; bf[j][7] = hi.w;
                        continue;
                    }
                    const u32 xw[4] = {xb[j][0].x, xb[j][0].y, xb[j][0].z, xb[j][0].w};
#pragma unroll
                    for (int q = 0; q < 4; ++q) {
                        bf[j][2 * q] = e4m3x2_to_f16x2((u16)xw[q]);
                        bf[j][2 * q + 1] = e4m3x2_to_f16x2((u16)(xw[q] >> 16));
                    }
                }
#pragma unroll
                for (int w = 0; w < WN; ++w) {
                    const u32 cw[4] = {cur[w].x, cur[w].y, cur[w].z, cur[w].w};
#pragma unroll
                    for (int q = 0; q < 4; ++q) {
                        u32 a0, a1, a2, a3;
                        decode8(cw[q], lut[w][0], lut[w][1], a0, a1, a2, a3);
#pragma unroll
                        for (int j = 0; j < NT; ++j) mma_f16(acc[w][j], a0, a1, a2, a3, bf[j][2 * q], bf[j][2 * q + 1]);
                    }
                }
                if (full && LATE) { // v7: refill the slots this k-block has just consumed
#pragma unroll
                    for (int w = 0; w < WN; ++w) ring[d][w] = ldg_stream_v4(wcur[w] + (d + D) * 32);
#pragma unroll
                    for (int j = 0; j < NT; ++j)
#pragma unroll
                        for (int h = 0; h < XV; ++h) xring[d & 1][j][h] = ldg_nc_v4(xcur[j] + (d + 2) * XS + h * 16);
                }
            }
        }
    };
    int kb0 = kbBegin;
    if (FAST)
        for (; kb0 + 2 * D <= kbEnd; kb0 += D) {
            ringStep(kb0, true);
#pragma unroll
            for (int w = 0; w < WN; ++w) { wcur[w] += D * 32; scur[w] += SD * 8; }
#pragma unroll
            for (int j = 0; j < NT; ++j) xcur[j] += D * XS;
        }
    for (; kb0 < kbEnd; kb0 += D) ringStep(kb0, false);

    // Epilogue. Accumulator (w, j, r): row n = (nb0+w)*16 + gid + 8*(r>>1), token m = m0 + 8j + 2*tig + (r&1).
    // Serial split-K (SplitK.cuh): the tile's last CTA reduces the partials in a fixed order.
    if (p.splits > 1 && !splitk_reduce_fragments<WN, NT>(acc, p.workspace, p.counters + (size_t)nt * mTiles + mt, split, p.splits, p.M, p.N,
                                                         nb0, m0, gid, tig))
        return;
#pragma unroll
    for (int w = 0; w < WN; ++w) {
        const int nA = (nb0 + w) * 16 + gid;
        const float cA = p.channelScale[nA], cB = p.channelScale[nA + 8];
        const float bA = p.bias ? p.bias[nA] : 0.f, bB = p.bias ? p.bias[nA + 8] : 0.f;
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                int m = m0 + 8 * j + 2 * tig + (r & 1);
                if (m < p.M) {
                    int n = nA + 8 * (r >> 1);
                    // As W4A8Reference: (c' * (s_tok * acc)) + bias in FP32, one bf16 rounding; no FMA contraction.
                    float v = __fmul_rn((r >> 1) ? cB : cA, __fmul_rn(p.tokenScale[m], acc[w][j][r]));
                    if (p.bias) v = __fadd_rn(v, (r >> 1) ? bB : bA);
                    p.y[(size_t)m * p.N + n] = f32_to_bf16(v);
                }
            }
    }
}

// v8's activation pass: n16 runs of 16 e4m3 bytes -> 16 f16 (exact), natural order. One parameter struct, as
// CudaFunction.Launch passes exactly one (the first v8 GPU run launched this with three scalar parameters and crashed).
struct W4A8X16Params {
    const u32x4* x8;
    u32x4* x16;
    int n16;
};
static_assert(sizeof(W4A8X16Params) == 24, "W4A8X16Params must match W4A8GemmDecode.cs");
extern "C" __global__ void __launch_bounds__(256) w4a8_x8_to_f16(const W4A8X16Params p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n16) return;
    u32x4* x16 = p.x16;
    const u32x4 v = ldg_nc_v4(p.x8 + i);
    const u32 w[4] = {v.x, v.y, v.z, v.w};
    u32 h[8];
#pragma unroll
    for (int q = 0; q < 4; ++q) { h[2 * q] = e4m3x2_to_f16x2((u16)w[q]); h[2 * q + 1] = e4m3x2_to_f16x2((u16)(w[q] >> 16)); }
    x16[2 * i] = u32x4{h[0], h[1], h[2], h[3]};
    x16[2 * i + 1] = u32x4{h[4], h[5], h[6], h[7]};
}

// v3: w4a8_mma_m{MT}_w{WN}; v6: ...u (unguarded ring steps); v8: ...h (v6 with the late refill + f16 activations).
#define W4A8_INSTANCE(MT, WN)                                                                           \
    extern "C" __global__ void __launch_bounds__(128) w4a8_mma_m##MT##_w##WN(const W4A8DecodeParams p) { \
        w4a8_decode_impl<MT, WN, false>(p);                                                              \
    }                                                                                                    \
    extern "C" __global__ void __launch_bounds__(128) w4a8_mma_m##MT##_w##WN##u(const W4A8DecodeParams p) { \
        w4a8_decode_impl<MT, WN, true>(p);                                                               \
    }                                                                                                    \
    extern "C" __global__ void __launch_bounds__(128) w4a8_mma_m##MT##_w##WN##h(const W4A8DecodeParams p) { \
        w4a8_decode_impl<MT, WN, true, true, true>(p);                                                   \
    }
W4A8_INSTANCE(8, 1)
W4A8_INSTANCE(8, 2)
W4A8_INSTANCE(8, 4)
W4A8_INSTANCE(16, 1)
W4A8_INSTANCE(16, 2)
W4A8_INSTANCE(32, 1)
W4A8_INSTANCE(32, 2)
