// Dynamic per-token FP8 quantization (spec §2.2, vLLM QuantFP8 per-token semantics):
//   s_tok[m] = max(max_k |x[m,k]| / 448, 1/(448*512)),  x8[m,k] = e4m3(clamp(x[m,k] / s_tok[m], -448, 448)).
// One CTA per token row; bf16 in, 16-byte vector loads (K % 8 == 0). Rows up to 256 x RV x 8 = 16384 values are
// loaded once into registers (all loads issued before the first use, then the absmax reduction, then the codes):
// v2 read each row twice and kept one 16-byte load per thread in flight, 76% of the copy bandwidth. Longer rows
// take the two-pass loop. True division (not a reciprocal multiply)
// so the bytes match the CPU reference exactly.
// gemmOrder != 0 writes x8 in the W4A8 GEMM's order: inside each 64-wide block, physical k = 16t + 8s + 4h + j goes
// to position 32s + 16h + 4t + j (W4A8Gemm.cu explains why); the bytes are the same, only their positions move.
#include "Common.cuh"

struct ActQuantParams {
    const u16* x;        // [M, K] bf16
    u8* x8;              // [M, K] e4m3
    float* tokenScale;   // [M]
    int M, K, gemmOrder, pad;
};
static_assert(sizeof(ActQuantParams) == 40, "ActQuantParams must match ActivationQuantFp8.cs");

#define RV 8   // 16-byte vectors per thread kept in registers

__device__ __forceinline__ float bf_lo(u32 w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf_hi(u32 w) { return __uint_as_float(w & 0xFFFF0000u); }

__device__ __forceinline__ float vec_amax(const u32x4& q) {
    const u32 w[4] = {q.x, q.y, q.z, q.w};
    float a = 0.f;
#pragma unroll
    for (int i = 0; i < 4; ++i) a = fmaxf(a, fmaxf(fabsf(bf_lo(w[i])), fabsf(bf_hi(w[i]))));
    return a;
}

// 8 bf16 -> 8 e4m3 codes at vector v of the row (natural or GEMM order).
__device__ __forceinline__ void quant_store(const u32x4& q, float s, u8* out, int v, int gemmOrder) {
    const u32 w[4] = {q.x, q.y, q.z, q.w};
    u32 packed[2];
#pragma unroll
    for (int i = 0; i < 4; i += 2) {
        const float f0 = fminf(fmaxf(bf_lo(w[i]) / s, -448.f), 448.f);
        const float f1 = fminf(fmaxf(bf_hi(w[i]) / s, -448.f), 448.f);
        const float f2 = fminf(fmaxf(bf_lo(w[i + 1]) / s, -448.f), 448.f);
        const float f3 = fminf(fmaxf(bf_hi(w[i + 1]) / s, -448.f), 448.f);
        packed[i >> 1] = (u32)f32x2_to_e4m3x2(f0, f1) | ((u32)f32x2_to_e4m3x2(f2, f3) << 16);
    }
    if (gemmOrder) {
        const int c = (v * 8) & 63, t = c >> 4, s8 = (c >> 3) & 1;
        u8* blk = out + (v * 8 - c);
        *reinterpret_cast<u32*>(blk + 32 * s8 + 4 * t) = packed[0];
        *reinterpret_cast<u32*>(blk + 32 * s8 + 16 + 4 * t) = packed[1];
    } else {
        *reinterpret_cast<unsigned long long*>(out + v * 8) = (u64)packed[0] | ((u64)packed[1] << 32);
    }
}

// Block-wide max of one value per thread (blockDim.x <= 256); every thread gets the result.
__device__ __forceinline__ float block_max(float a) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xFFFFFFFFu, a, o));
    __shared__ float red[8];
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = a;
    __syncthreads();
    float r = red[0];
    for (int i = 1; i < (int)(blockDim.x >> 5); ++i) r = fmaxf(r, red[i]);
    return r;
}

extern "C" __global__ void __launch_bounds__(256) act_quant_fp8(const ActQuantParams p) {
    const int m = blockIdx.x;
    const u16* row = p.x + (size_t)m * p.K;
    u8* out = p.x8 + (size_t)m * p.K;
    const int vecs = p.K >> 3;
    if (vecs <= RV * (int)blockDim.x) {
        u32x4 cache[RV];
#pragma unroll
        for (int r = 0; r < RV; ++r) {
            const int v = threadIdx.x + r * blockDim.x;
            if (v < vecs) cache[r] = ldg_stream_v4(row + v * 8);
        }
        float amax = 0.f;
#pragma unroll
        for (int r = 0; r < RV; ++r)
            if (threadIdx.x + r * blockDim.x < vecs) amax = fmaxf(amax, vec_amax(cache[r]));
        const float s = fmaxf(block_max(amax) / 448.0f, 1.0f / (448.0f * 512.0f));
        if (threadIdx.x == 0) p.tokenScale[m] = s;
#pragma unroll
        for (int r = 0; r < RV; ++r) {
            const int v = threadIdx.x + r * blockDim.x;
            if (v < vecs) quant_store(cache[r], s, out, v, p.gemmOrder);
        }
        return;
    }
    float amax = 0.f;
    for (int v = threadIdx.x; v < vecs; v += blockDim.x) amax = fmaxf(amax, vec_amax(ldg_nc_v4(row + v * 8)));
    const float s = fmaxf(block_max(amax) / 448.0f, 1.0f / (448.0f * 512.0f));
    if (threadIdx.x == 0) p.tokenScale[m] = s;
    for (int v = threadIdx.x; v < vecs; v += blockDim.x) quant_store(ldg_nc_v4(row + v * 8), s, out, v, p.gemmOrder);
}
