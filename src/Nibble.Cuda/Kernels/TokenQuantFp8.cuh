// Dynamic per-token FP8 quantization of one row by one CTA (spec §2.2, vLLM QuantFP8 per-token semantics), shared
// by act_quant_fp8 (bf16 rows, ActivationQuantFp8.cu) and act_quant_fp8_f32 (F32 rows, QuantLinearIo.cu) so both
// give the CPU reference's bytes: s_tok = max(absmax / 448, 1/(448*512)), x8 = e4m3(clamp(x / s_tok, -448, 448)),
// true division (not a reciprocal multiply). Included after Common.cuh (KernelCache splices it in).
#pragma once

// x / s clamped to e4m3's finite range, ready for the RNE conversion.
__device__ __forceinline__ float e4m3_clamped_quotient(float x, float s) { return fminf(fmaxf(x / s, -448.f), 448.f); }

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

// The row's token scale from each thread's partial absmax (all threads get it).
__device__ __forceinline__ float token_scale(float amax) { return fmaxf(block_max(amax) / 448.0f, 1.0f / (448.0f * 512.0f)); }

// Quantizes one row of `count` vectors and writes its token scale. Rows up to CACHED x blockDim.x vectors are loaded
// once into registers, every load issued before the absmax reduction (reading each row twice with one load in flight
// per thread reached 76% of the copy bandwidth); longer rows take the two-pass loop. Row supplies:
//   Vec                          the vector type;
//   Vec load_once(int v)         load for the register path (read once);
//   Vec load_twice(int v)        load for the two-pass path (read twice);
//   static float amax(Vec)       max |x| of one vector;
//   void store(Vec, float s, int v)  quantize vector v with scale s and store its codes.
template <int CACHED, class Row> // CACHED: vectors per thread kept in registers
__device__ __forceinline__ void quant_token_row(const Row& row, int count, float* tokenScale) {
    if (count <= CACHED * (int)blockDim.x) {
        typename Row::Vec cache[CACHED];
#pragma unroll
        for (int r = 0; r < CACHED; ++r) {
            const int v = threadIdx.x + r * blockDim.x;
            if (v < count) cache[r] = row.load_once(v);
        }
        float amax = 0.f;
#pragma unroll
        for (int r = 0; r < CACHED; ++r)
            if (threadIdx.x + r * blockDim.x < count) amax = fmaxf(amax, Row::amax(cache[r]));
        const float s = token_scale(amax);
        if (threadIdx.x == 0) *tokenScale = s;
#pragma unroll
        for (int r = 0; r < CACHED; ++r) {
            const int v = threadIdx.x + r * blockDim.x;
            if (v < count) row.store(cache[r], s, v);
        }
        return;
    }
    float amax = 0.f;
    for (int v = threadIdx.x; v < count; v += blockDim.x) amax = fmaxf(amax, Row::amax(row.load_twice(v)));
    const float s = token_scale(amax);
    if (threadIdx.x == 0) *tokenScale = s;
    for (int v = threadIdx.x; v < count; v += blockDim.x) row.store(row.load_twice(v), s, v);
}
