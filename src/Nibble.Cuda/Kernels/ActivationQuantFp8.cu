// Dynamic per-token FP8 quantization (spec §2.2, vLLM QuantFP8 per-token semantics):
//   s_tok[m] = max(max_k |x[m,k]| / 448, 1/(448*512)),  x8[m,k] = e4m3(clamp(x[m,k] / s_tok[m], -448, 448)).
// One CTA per token row; bf16 in, 16-byte vector loads (K % 8 == 0). Rows up to 256 x RV x 8 = 16384 values are
// loaded once into registers, longer rows take the two-pass loop (quant_token_row in TokenQuantFp8.cuh, shared with
// the F32 kernel of QuantLinearIo.cu). True division (not a reciprocal multiply) so the bytes match the CPU reference
// exactly.
// gemmOrder != 0 writes x8 in the W4A8 GEMM's order: inside each 64-wide block, physical k = 16t + 8s + 4h + j goes
// to position 32s + 16h + 4t + j (W4A8Gemm.cu explains why); the bytes are the same, only their positions move.
#include "Common.cuh"
#include "TokenQuantFp8.cuh"

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
        const float f0 = e4m3_clamped_quotient(bf_lo(w[i]), s);
        const float f1 = e4m3_clamped_quotient(bf_hi(w[i]), s);
        const float f2 = e4m3_clamped_quotient(bf_lo(w[i + 1]), s);
        const float f3 = e4m3_clamped_quotient(bf_hi(w[i + 1]), s);
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

// One bf16 row for quant_token_row: vectors of 8 values (16 bytes); the register path streams (read once), the
// two-pass path reads through the non-coherent cache (read twice).
struct Bf16TokenRow {
    typedef u32x4 Vec;
    const u16* x;
    u8* out;
    int gemmOrder;
    __device__ __forceinline__ Vec load_once(int v) const { return ldg_stream_v4(x + v * 8); }
    __device__ __forceinline__ Vec load_twice(int v) const { return ldg_nc_v4(x + v * 8); }
    static __device__ __forceinline__ float amax(const Vec& q) { return vec_amax(q); }
    __device__ __forceinline__ void store(const Vec& q, float s, int v) const { quant_store(q, s, out, v, gemmOrder); }
};

extern "C" __global__ void __launch_bounds__(256) act_quant_fp8(const ActQuantParams p) {
    const int m = blockIdx.x;
    const Bf16TokenRow row{p.x + (size_t)m * p.K, p.x8 + (size_t)m * p.K, p.gemmOrder};
    quant_token_row<RV>(row, p.K >> 3, p.tokenScale + m);
}
