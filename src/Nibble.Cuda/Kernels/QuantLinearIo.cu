// Around the W4A8 / W4A16 GEMMs when they serve the F32-activation backend (Nibble.Engine.Gpu quantized linears):
//   act_quant_fp8_f32: per-token FP8 quantization straight from F32 rows, the same formula as act_quant_fp8
//                      (ActivationQuantFp8.cu) and as the CPU W4A8Linear (TokenScale.QuantizeRow): no bf16 rounding
//                      of x first, so the GPU's x8 codes and s_tok equal the CPU's bit for bit.
//                      s = max(absmax/448, 1/(448*512)); x8 = e4m3(clamp(x / s, -448, 448)) (true division).
//   bf16_to_f32_bias:  out[m, n] = float(y_bf16[m, n]) (+ bias[n] as F32).
#include "Common.cuh"
#include "TokenQuantFp8.cuh"

struct ActQuantF32Params {
    const float* x;      // [M, K] f32
    u8* x8;              // [M, K] e4m3
    float* tokenScale;   // [M]
    int M, K, gemmOrder, pad;
};
static_assert(sizeof(ActQuantF32Params) == 40, "ActQuantF32Params must match QuantLinearIoKernel.cs");

// One CTA per token row; each thread handles groups of 4 consecutive k (K % 4 == 0). A group 4g = 16t + 8s + 4h
// lands at 32s + 16h + 4t in the GEMM order (ActivationQuantFp8.GemmOrderPosition), so its 4 bytes stay together.
// Rows up to 256 x RV4 x 4 = 16384 values are loaded once into registers, longer rows take the two-pass loop
// (quant_token_row in TokenQuantFp8.cuh, shared with act_quant_fp8).
#define RV4 16

__device__ __forceinline__ float f4_amax(const float4 v) { return fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))); }

__device__ __forceinline__ void f4_quant_store(const float4 v, float s, u8* out, int g, int gemmOrder) {
    const float f0 = e4m3_clamped_quotient(v.x, s);
    const float f1 = e4m3_clamped_quotient(v.y, s);
    const float f2 = e4m3_clamped_quotient(v.z, s);
    const float f3 = e4m3_clamped_quotient(v.w, s);
    const u32 packed = (u32)f32x2_to_e4m3x2(f0, f1) | ((u32)f32x2_to_e4m3x2(f2, f3) << 16);
    int pos = 4 * g;
    if (gemmOrder) {
        const int c = pos & 63, t = c >> 4, s8 = (c >> 3) & 1, h = (c >> 2) & 1;
        pos = (pos - c) + 32 * s8 + 16 * h + 4 * t;
    }
    *reinterpret_cast<u32*>(out + pos) = packed;
}

// One F32 row for quant_token_row: groups of 4 consecutive values (16 bytes), plain loads on both paths.
struct F32TokenRow {
    typedef float4 Vec;
    const float4* x;
    u8* out;
    int gemmOrder;
    __device__ __forceinline__ Vec load_once(int g) const { return x[g]; }
    __device__ __forceinline__ Vec load_twice(int g) const { return x[g]; }
    static __device__ __forceinline__ float amax(const Vec& v) { return f4_amax(v); }
    __device__ __forceinline__ void store(const Vec& v, float s, int g) const { f4_quant_store(v, s, out, g, gemmOrder); }
};

extern "C" __global__ void __launch_bounds__(256) act_quant_fp8_f32(const ActQuantF32Params p) {
    const int m = blockIdx.x;
    const F32TokenRow row{reinterpret_cast<const float4*>(p.x + (size_t)m * p.K), p.x8 + (size_t)m * p.K, p.gemmOrder};
    quant_token_row<RV4>(row, p.K >> 2, p.tokenScale + m);
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
