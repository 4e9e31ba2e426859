// What the W4A8 wgmma GEMMs (W4A8Gemm.cu, W4A8GemmWs.cu) share outside the math: the tail of their by-value
// parameter structs and the macro that turns an implementation template into a named extern "C" entry point (the
// launchers in W4A8Gemm.cs look kernels up by name). Included after Common.cuh (KernelCache splices it in: NVRTC
// gets no include paths).
#pragma once

// The fields every W4A8 GEMM parameter struct ends with, in this order (W4A8Gemm.cs mirrors each struct). A macro
// rather than a nested struct so the kernels keep reading p.y, p.M, ... and each struct's layout stays as it was.
#define W4A8_GEMM_TAIL_FIELDS                                                                                        \
    u16* y;                    /* [M, N] bf16 */                                                                     \
    float* workspace;          /* [splits][M][N] fp32 partial sums (split-K only) */                                 \
    u32* counters;             /* one per output tile, zero at rest (the last split resets it) */                    \
    int M, N, K;                                                                                                     \
    int kBlocksPerSplit;       /* 64-wide k-blocks per split (even: splits are group aligned) */                     \
    int splits;                                                                                                      \
    int groupM;                /* raster: this many m-tiles share one n-tile column group */

// extern "C" kernel NAME(PARAMS p) with __launch_bounds__ BOUNDS that runs IMPL(p). BOUNDS and an IMPL with template
// arguments go in parentheses: W4A8_GEMM_ENTRY(w4a8_gemm_n8_wg1_ks8, (128), const W4A8GemmParams, (w4a8_gemm_impl<8, 1, 8>)).
#define W4A8_GEMM_ENTRY(NAME, BOUNDS, PARAMS, IMPL) \
    extern "C" __global__ void __launch_bounds__ BOUNDS NAME(PARAMS p) { IMPL(p); }
