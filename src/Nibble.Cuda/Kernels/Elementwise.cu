// Element-wise ops of the decoder block, float32, grid-stride loops:
//   add:          x += delta
//   silu_mul:     out = silu(gate) * up, computed as sigmoid(g) * g * u like the CPU reference (out may alias gate)
//   sigmoid_gate: x[r, :] *= 1 / (1 + exp(-gate[r]))   (Qwen2-MoE shared-expert gate)
#include "Common.cuh"

struct ElementwiseParams {
    float* x;          // add: x; silu_mul: out; sigmoid_gate: x
    const float* a;    // add: delta; silu_mul: gate; sigmoid_gate: gate [rows]
    const float* b;    // silu_mul: up
    long long n;       // elements
    int width;         // sigmoid_gate: row length
    int pad;
};
static_assert(sizeof(ElementwiseParams) == 40, "ElementwiseParams must match ElementwiseKernel.cs");

extern "C" __global__ void __launch_bounds__(256) add(const ElementwiseParams p) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n; i += (long long)gridDim.x * blockDim.x)
        p.x[i] = p.x[i] + p.a[i];
}

extern "C" __global__ void __launch_bounds__(256) silu_mul(const ElementwiseParams p) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n; i += (long long)gridDim.x * blockDim.x) {
        const float g = p.a[i];
        float s = 1.f / (1.f + expf(-g));
        s = s * g;
        p.x[i] = s * p.b[i];
    }
}

extern "C" __global__ void __launch_bounds__(256) sigmoid_gate(const ElementwiseParams p) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n; i += (long long)gridDim.x * blockDim.x) {
        const float g = p.a[i / p.width];
        const float s = 1.f / (1.f + expf(-g));
        p.x[i] = p.x[i] * s;
    }
}
