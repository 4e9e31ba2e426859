// Around the cuBLASLt BF16 GEMM of unquantized linears (CudaBackend.MatMul):
//   split_bf16: F32 activations [M, K] -> BF16 rows: hi = bf16(x) in rows [0, M), and (split) lo = bf16(x - hi) in
//               rows [M, 2M). W·hi + W·lo carries ~16 mantissa bits of x, so the product matches the float32 CPU
//               reference to ~1e-5 relative; hi alone is the plain bf16-activation GEMM (~3e-3 relative).
//   combine:    out[m, n] = y[m, n] (+ y[M + m, n] when split) (+ bias[n]), F32.
// One GEMM over the stacked [2M, K] reads each weight once, so decode (weight-bandwidth-bound) costs the same.
#include "Common.cuh"

struct SplitParams {
    const float* x;   // [M, K]
    u16* out;         // [M or 2M, K]
    long long n;      // M * K
    int split;
    int pad;
};
static_assert(sizeof(SplitParams) == 32, "SplitParams must match DenseMatMulKernel.cs");

extern "C" __global__ void __launch_bounds__(256) split_bf16(const SplitParams p) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n; i += (long long)gridDim.x * blockDim.x) {
        const float v = p.x[i];
        const u16 hi = f32_to_bf16(v);
        p.out[i] = hi;
        if (p.split) p.out[p.n + i] = f32_to_bf16(v - bf16_to_f32(hi));
    }
}

struct CombineParams {
    const float* y;     // [M or 2M, N]
    const void* bias;   // [N] bf16 or f32, or null
    float* out;         // [M, N]
    long long n;        // M * N
    int cols;           // N
    int split;
    int biasBf16;
    int pad;
};
static_assert(sizeof(CombineParams) == 48, "CombineParams must match DenseMatMulKernel.cs");

extern "C" __global__ void __launch_bounds__(256) combine(const CombineParams p) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n; i += (long long)gridDim.x * blockDim.x) {
        float v = p.y[i];
        if (p.split) v = v + p.y[p.n + i];
        if (p.bias) {
            const int c = (int)(i % p.cols);
            v = v + (p.biasBf16 ? bf16_to_f32(((const u16*)p.bias)[c]) : ((const float*)p.bias)[c]);
        }
        p.out[i] = v;
    }
}
