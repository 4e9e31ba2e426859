// Around the W4A8 / W4A16 GEMMs when they serve the F32-activation backend (Nibble.Engine.Gpu quantized linears):
//   act_quant_fp8_f32: per-token FP8 quantization straight from F32 rows, the same formula as act_quant_fp8
//                      (ActivationQuantFp8.cu) and as the CPU W4A8Linear (TokenScale.QuantizeRow): no bf16 rounding
//                      of x first, so the GPU's x8 codes and s_tok equal the CPU's bit for bit.
//                      s = max(absmax/448, 1/(448*512)); x8 = e4m3(clamp(x / s, -448, 448)) (true division).
//   bf16_to_f32_bias:  out[m, n] = float(y_bf16[m, n]) (+ bias[n] as F32).
#include "Common.cuh"

struct ActQuantF32Params {
    const float* x;      // [M, K] f32
    u8* x8;              // [M, K] e4m3
    float* tokenScale;   // [M]
    int M, K, gemmOrder, pad;
};
static_assert(sizeof(ActQuantF32Params) == 40, "ActQuantF32Params must match QuantLinearIoKernel.cs");

// One CTA per token row; each thread handles groups of 4 consecutive k (K % 4 == 0). A group 4g = 16t + 8s + 4h
// lands at 32s + 16h + 4t in the GEMM order (ActivationQuantFp8.GemmOrderPosition), so its 4 bytes stay together.
// Rows up to 256 x RV4 x 4 = 16384 values are loaded once into registers, every 16-byte load issued before the
// absmax reduction (v2 read each row twice with one load in flight per thread); longer rows take the two-pass loop.
#define RV4 16

__device__ __forceinline__ float f4_amax(const float4 v) { return fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))); }

__device__ __forceinline__ void f4_quant_store(const float4 v, float s, u8* out, int g, int gemmOrder) {
    const float f0 = fminf(fmaxf(v.x / s, -448.f), 448.f);
    const float f1 = fminf(fmaxf(v.y / s, -448.f), 448.f);
    const float f2 = fminf(fmaxf(v.z / s, -448.f), 448.f);
    const float f3 = fminf(fmaxf(v.w / s, -448.f), 448.f);
    const u32 packed = (u32)f32x2_to_e4m3x2(f0, f1) | ((u32)f32x2_to_e4m3x2(f2, f3) << 16);
    int pos = 4 * g;
    if (gemmOrder) {
        const int c = pos & 63, t = c >> 4, s8 = (c >> 3) & 1, h = (c >> 2) & 1;
        pos = (pos - c) + 32 * s8 + 16 * h + 4 * t;
    }
    *reinterpret_cast<u32*>(out + pos) = packed;
}

__device__ __forceinline__ float block_max_f32(float a) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xFFFFFFFFu, a, o));
    __shared__ float red[8];
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = a;
    __syncthreads();
    float r = red[0];
    for (int i = 1; i < (int)(blockDim.x >> 5); ++i) r = fmaxf(r, red[i]);
    return r;
}

extern "C" __global__ void __launch_bounds__(256) act_quant_fp8_f32(const ActQuantF32Params p) {
    const int m = blockIdx.x;
    const float* row = p.x + (size_t)m * p.K;
    u8* out = p.x8 + (size_t)m * p.K;
    const int groups = p.K >> 2;
    const float4* row4 = reinterpret_cast<const float4*>(row);
    if (groups <= RV4 * (int)blockDim.x) {
        float4 cache[RV4];
#pragma unroll
        for (int r = 0; r < RV4; ++r) {
            const int g = threadIdx.x + r * blockDim.x;
            if (g < groups) cache[r] = row4[g];
        }
        float amax = 0.f;
#pragma unroll
        for (int r = 0; r < RV4; ++r)
            if (threadIdx.x + r * blockDim.x < groups) amax = fmaxf(amax, f4_amax(cache[r]));
        const float s = fmaxf(block_max_f32(amax) / 448.0f, 1.0f / (448.0f * 512.0f));
        if (threadIdx.x == 0) p.tokenScale[m] = s;
#pragma unroll
        for (int r = 0; r < RV4; ++r) {
            const int g = threadIdx.x + r * blockDim.x;
            if (g < groups) f4_quant_store(cache[r], s, out, g, p.gemmOrder);
        }
        return;
    }
    float amax = 0.f;
    for (int g = threadIdx.x; g < groups; g += blockDim.x) amax = fmaxf(amax, f4_amax(row4[g]));
    const float s = fmaxf(block_max_f32(amax) / 448.0f, 1.0f / (448.0f * 512.0f));
    if (threadIdx.x == 0) p.tokenScale[m] = s;
    for (int g = threadIdx.x; g < groups; g += blockDim.x) f4_quant_store(row4[g], s, out, g, p.gemmOrder);
}

struct Bf16ToF32Params {
    const u16* y;        // [M, N] bf16
    const float* bias;   // [N] or null
    float* out;          // [M, N]
    long long n;         // M * N
    int cols;            // N
    int pad;
};
static_assert(sizeof(Bf16ToF32Params) == 40, "Bf16ToF32Params must match QuantLinearIoKernel.cs");

extern "C" __global__ void __launch_bounds__(256) bf16_to_f32_bias(const Bf16ToF32Params p) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n; i += (long long)gridDim.x * blockDim.x) {
        float v = bf16_to_f32(p.y[i]);
        if (p.bias) v += p.bias[i % p.cols];
        p.out[i] = v;
    }
}
