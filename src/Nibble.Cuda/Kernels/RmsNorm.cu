// Row-wise RMSNorm, transformers semantics in float32: y = (x * (1 / sqrt(mean(x^2) + eps))) * w.
// With `delta` set it is the fused pre-norm of the next sub-block: x += delta (written back), then y = norm(x).
// One CTA per row; every thread reads and writes only its own columns, so y may alias x (in-place q/k norm).
// True division and sqrtf (no fast math) keep the per-row scale within an ulp of the CPU reference.
#include "Common.cuh"

struct RmsNormParams {
    float* x;            // [rows, dim] (residual when delta is set)
    const float* delta;  // [rows, dim] or null
    const void* weight;  // [dim] bf16 or f32
    float* out;          // [rows, dim]
    int dim;
    int weightBf16;
    float eps;
    int pad;
};
static_assert(sizeof(RmsNormParams) == 48, "RmsNormParams must match RmsNormKernel.cs");

__device__ __forceinline__ float block_sum(float v) {
    __shared__ float red[32];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    const int warps = blockDim.x >> 5;
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        float s = threadIdx.x < warps ? red[threadIdx.x] : 0.f;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
        if (threadIdx.x == 0) red[0] = s;
    }
    __syncthreads();
    return red[0];
}

// The first CACHED strides of the row stay in registers between the two passes (the launcher sizes the block so a
// row fits), so x is read from memory once.
#define CACHED 8

extern "C" __global__ void __launch_bounds__(1024) rms_norm(const RmsNormParams p) {
    const size_t base = (size_t)blockIdx.x * p.dim;
    float* x = p.x + base;
    float vals[CACHED];
    float ss = 0.f;
#pragma unroll
    for (int c = 0; c < CACHED; ++c) {
        const int i = threadIdx.x + c * blockDim.x;
        float v = 0.f;
        if (i < p.dim) {
            v = x[i];
            if (p.delta) { v += p.delta[base + i]; x[i] = v; }
        }
        vals[c] = v;
        ss += v * v;
    }
    for (int i = threadIdx.x + CACHED * blockDim.x; i < p.dim; i += blockDim.x) {
        float v = x[i];
        if (p.delta) { v += p.delta[base + i]; x[i] = v; }
        ss += v * v;
    }
    const float total = block_sum(ss);
    const float inv = 1.f / sqrtf(total / (float)p.dim + p.eps);
    float* y = p.out + base;
#pragma unroll
    for (int c = 0; c < CACHED; ++c) {
        const int i = threadIdx.x + c * blockDim.x;
        if (i < p.dim) {
            const float w = p.weightBf16 ? bf16_to_f32(((const u16*)p.weight)[i]) : ((const float*)p.weight)[i];
            y[i] = (vals[c] * inv) * w;
        }
    }
    for (int i = threadIdx.x + CACHED * blockDim.x; i < p.dim; i += blockDim.x) {
        const float w = p.weightBf16 ? bf16_to_f32(((const u16*)p.weight)[i]) : ((const float*)p.weight)[i];
        y[i] = (x[i] * inv) * w;
    }
}
