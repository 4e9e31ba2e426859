// Load-time weight preprocessing for the W4A8 GEMM, from the compressed-tensors checkpoint layout
// (weight_packed int32 [N, K/8], uint4b8 nibbles along K, k = 8w in bits 0..3; weight_scale bf16 [N, K/128]):
//  * w4a8_prep_scales: per row, c = max(max_g |S| / 448, 1/(448*512)); sigma1 = e4m3(clamp(S * (1/c), +-448));
//    sigma = e4m3(sigma1 / 8); c' = 8c  (spec §3, vLLM convert_bf16_scales_to_fp8). Writes sigma in the GEMM's
//    tiled pair layout and c' [N].
//  * w4a8_prep_weights: uint4b8 -> signed -> unified sign-magnitude code (spec §1.2), and the GEMM's tiled layout
//    (W4A8Gemm.cu header). One thread writes one lane's 16 bytes: reads 8 bytes of row gid and 8 of row gid+8.
// The CPU twin is W4A8WeightPrep.Reference (byte-identical).
#include "Common.cuh"

struct W4A8PrepParams {
    const u32* weightPacked;   // [N, K/8]
    const u16* scales;         // [N, K/128] bf16
    u32x4* weightTiled;        // [N/16 * K/64 * 32] lanes
    u16* sigmaTiled;           // [N/16][K/128][8]
    float* channelScale;       // [N]
    int N, K;
};
static_assert(sizeof(W4A8PrepParams) == 48, "W4A8PrepParams must match W4A8WeightPrep.cs");

// One warp per row.
extern "C" __global__ void w4a8_prep_scales(const W4A8PrepParams p) {
    const int n = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (n >= p.N) return;
    const int G = p.K >> 7;
    const u16* s = p.scales + (size_t)n * G;
    float amax = 0.f;
    for (int g = lane; g < G; g += 32) amax = fmaxf(amax, fabsf(bf16_to_f32(s[g])));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
    const float c = fmaxf(amax / 448.0f, 1.0f / (448.0f * 512.0f));
    const float inv = 1.0f / c;
    if (lane == 0) p.channelScale[n] = 8.0f * c;
    u8* out = reinterpret_cast<u8*>(p.sigmaTiled);
    const int nb = n >> 4, r = n & 15;
    for (int g = lane; g < G; g += 32) {
        float v = fminf(fmaxf(bf16_to_f32(s[g]) * inv, -448.f), 448.f);
        u8 s1 = (u8)f32x2_to_e4m3x2(v, 0.f);
        u8 sg = (u8)f32x2_to_e4m3x2(e4m3_to_f32(s1) / 8.0f, 0.f);
        // Pair layout: u16 index gid = r & 7 holds (row gid, row gid+8) as (low, high) byte.
        out[(((size_t)nb * G + g) * 8 + (r & 7)) * 2 + (r >> 3)] = sg;
    }
}

__device__ __forceinline__ u32 unify_nibble(u32 u) { // uint4b8 u = q + 8 -> unified code
    return u < 8u ? (u ^ 8u) : (u == 8u ? 0u : 16u - u);
}

__device__ __forceinline__ u32 unify_halves(u32 lo16, u32 hi16) {
    u32 v = (lo16 & 0xFFFFu) | (hi16 << 16), r = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) r |= unify_nibble((v >> (4 * i)) & 0xFu) << (4 * i);
    return r;
}

extern "C" __global__ void w4a8_prep_weights(const W4A8PrepParams p) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int kBlocks = p.K >> 6;
    const size_t total = (size_t)(p.N >> 4) * kBlocks * 32;
    if (t >= total) return;
    const int lane = (int)(t & 31);
    const size_t blk = t >> 5;
    const int kb = (int)(blk % kBlocks), nb = (int)(blk / kBlocks);
    const int gid = lane >> 2, tig = lane & 3;
    const int words = p.K >> 3;
    // k = 64kb + 16tig + 8t + 4h: words (64kb + 16tig)/8 + t of rows gid and gid+8.
    const u32* r0 = p.weightPacked + (size_t)(nb * 16 + gid) * words + kb * 8 + tig * 2;
    const u32* r1 = r0 + (size_t)8 * words;
    const uint2 a = *reinterpret_cast<const uint2*>(r0);
    const uint2 b = *reinterpret_cast<const uint2*>(r1);
    u32x4 o;
    o.x = unify_halves(a.x, b.x);               // t=0 h=0
    o.y = unify_halves(a.x >> 16, b.x >> 16);   // t=0 h=1
    o.z = unify_halves(a.y, b.y);               // t=1 h=0
    o.w = unify_halves(a.y >> 16, b.y >> 16);   // t=1 h=1
    p.weightTiled[t] = o;
}
