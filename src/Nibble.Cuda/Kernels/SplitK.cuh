// Serial split-K, shared by the GEMM kernels (W4A8Gemm.cu, W4A8GemmMma.cu, W4A16Gemm.cu): each CTA parks its partial
// sums in the fp32 workspace ([splits][M][N]) and takes a ticket of its tile; the last of the tile's CTAs reduces the
// partials in split order (results do not depend on scheduling) and resets the counter for the next launch.
#pragma once
#include "Common.cuh"

// After this CTA's partials are stored: true in the tile's last CTA, which may then read the others' partials (ld.cg).
__device__ __forceinline__ bool splitk_last_of_tile(u32* counter, int splits) {
    __shared__ u32 ticket;
    __threadfence(); // this CTA's partials are visible device-wide before it takes its ticket
    __syncthreads();
    if (threadIdx.x == 0) ticket = atomicAdd(counter, 1u);
    __syncthreads();
    if (ticket != (u32)(splits - 1)) return false;
    __threadfence();
    return true;
}

// mma.sync accumulators acc[w][j][r] of WN 16-row slabs × NT 8-token tiles (row n = (nb0+w)*16 + gid + 8*(r>>1), token
// m = m0 + 8j + 2*tig + (r&1)): park them in split `split`'s slice; false in all but the tile's last CTA, where acc then
// holds the sum over the splits, added in order 0, 1, ...
template <int WN, int NT>
__device__ __forceinline__ bool splitk_reduce_fragments(float (&acc)[WN][NT][4], float* workspace, u32* counter, int split, int splits,
                                                       int M, int N, int nb0, int m0, int gid, int tig) {
    float* ws = workspace + (size_t)split * M * N;
#pragma unroll
    for (int w = 0; w < WN; ++w)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int n = (nb0 + w) * 16 + gid + 8 * (r >> 1), m = m0 + 8 * j + 2 * tig + (r & 1);
                if (m < M) ws[(size_t)m * N + n] = acc[w][j][r];
            }
    if (!splitk_last_of_tile(counter, splits)) return false;
#pragma unroll
    for (int w = 0; w < WN; ++w)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int n = (nb0 + w) * 16 + gid + 8 * (r >> 1), m = m0 + 8 * j + 2 * tig + (r & 1);
                if (m < M) {
                    float s = 0.f;
                    for (int z = 0; z < splits; ++z) s += ldcg_f32(workspace + ((size_t)z * M + m) * N + n);
                    acc[w][j][r] = s;
                }
            }
    if (threadIdx.x == 0) *counter = 0u;
    return true;
}
