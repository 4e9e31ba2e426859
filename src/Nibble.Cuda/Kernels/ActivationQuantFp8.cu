// Dynamic per-token FP8 quantization (spec §2.2, vLLM QuantFP8 per-token semantics):
//   s_tok[m] = max(max_k |x[m,k]| / 448, 1/(448*512)),  x8[m,k] = e4m3(clamp(x[m,k] / s_tok[m], -448, 448)).
// One CTA per token row; bf16 in, 16-byte vector loads (K % 8 == 0). True division (not a reciprocal multiply)
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

extern "C" __global__ void __launch_bounds__(256) act_quant_fp8(const ActQuantParams p) {
    const int m = blockIdx.x;
    const u16* row = p.x + (size_t)m * p.K;
    const int vecs = p.K >> 3;
    float amax = 0.f;
    for (int v = threadIdx.x; v < vecs; v += blockDim.x) {
        u32x4 q = ldg_nc_v4(row + v * 8);
        u32 w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            amax = fmaxf(amax, fabsf(__uint_as_float(w[i] << 16)));
            amax = fmaxf(amax, fabsf(__uint_as_float(w[i] & 0xFFFF0000u)));
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
    __shared__ float red[8];
    __shared__ float scaleShared;
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = amax;
    __syncthreads();
    if (threadIdx.x == 0) {
        float a = 0.f;
        for (int i = 0; i < (int)(blockDim.x >> 5); ++i) a = fmaxf(a, red[i]);
        float s = fmaxf(a / 448.0f, 1.0f / (448.0f * 512.0f));
        scaleShared = s;
        p.tokenScale[m] = s;
    }
    __syncthreads();
    const float s = scaleShared;
    u8* out = p.x8 + (size_t)m * p.K;
    for (int v = threadIdx.x; v < vecs; v += blockDim.x) {
        u32x4 q = ldg_nc_v4(row + v * 8);
        u32 w[4] = {q.x, q.y, q.z, q.w};
        u32 packed[2];
#pragma unroll
        for (int i = 0; i < 4; i += 2) {
            float f0 = fminf(fmaxf(__uint_as_float(w[i] << 16) / s, -448.f), 448.f);
            float f1 = fminf(fmaxf(__uint_as_float(w[i] & 0xFFFF0000u) / s, -448.f), 448.f);
            float f2 = fminf(fmaxf(__uint_as_float(w[i + 1] << 16) / s, -448.f), 448.f);
            float f3 = fminf(fmaxf(__uint_as_float(w[i + 1] & 0xFFFF0000u) / s, -448.f), 448.f);
            packed[i >> 1] = (u32)f32x2_to_e4m3x2(f0, f1) | ((u32)f32x2_to_e4m3x2(f2, f3) << 16);
        }
        if (p.gemmOrder) {
            const int c = (v * 8) & 63, t = c >> 4, s8 = (c >> 3) & 1;
            u8* blk = out + (v * 8 - c);
            *reinterpret_cast<u32*>(blk + 32 * s8 + 4 * t) = packed[0];
            *reinterpret_cast<u32*>(blk + 32 * s8 + 16 + 4 * t) = packed[1];
        } else {
            *reinterpret_cast<unsigned long long*>(out + v * 8) = (u64)packed[0] | ((u64)packed[1] << 32);
        }
    }
}
