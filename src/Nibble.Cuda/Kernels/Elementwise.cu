// Element-wise ops of the decoder block, float32:
//   add:          x += delta
//   silu_mul:     out = silu(gate) * up, computed as sigmoid(g) * g * u like the CPU reference (out may alias gate)
//   sigmoid_gate: x[r, :] *= 1 / (1 + exp(-gate[r]))   (Qwen2-MoE shared-expert gate)
// add and silu_mul are memory-bound streams: each thread moves 16-byte vectors (float4), UNROLL of them per loop
// step with every load issued before the first use, so a warp keeps UNROLL x 512 B per operand in flight (v2 moved
// one float per thread per step and reached 76% of the copy bandwidth for silu_mul). The host launches one wave of
// CTAs (SMs x resident CTAs) and the loop strides over the rest. The tail (n % 4, or a base pointer not 16-byte
// aligned) runs scalar.
#include "Common.cuh"

#define UNROLL 4

struct ElementwiseParams {
    float* x;          // add: x; silu_mul: out; sigmoid_gate: x
    const float* a;    // add: delta; silu_mul: gate; sigmoid_gate: gate [rows]
    const float* b;    // silu_mul: up
    long long n;       // elements
    int width;         // sigmoid_gate: row length
    int pad;
};
static_assert(sizeof(ElementwiseParams) == 40, "ElementwiseParams must match ElementwiseKernel.cs");

__device__ __forceinline__ float silu_mul1(float g, float u) {
    float s = 1.f / (1.f + expf(-g));
    s = s * g;
    return s * u;
}

__device__ __forceinline__ bool aligned16(const void* p) { return ((unsigned long long)p & 15) == 0; }

// The vector part: n4 float4 of x/a/b; returns the elements it covered (the scalar tail starts there).
template <bool SILU>
__device__ __forceinline__ long long vector_part(const ElementwiseParams& p) {
    const bool vec = aligned16(p.x) && aligned16(p.a) && (!SILU || aligned16(p.b));
    if (!vec) return 0;
    const long long n4 = p.n >> 2;
    float4* x4 = reinterpret_cast<float4*>(p.x);
    const float4* a4 = reinterpret_cast<const float4*>(p.a);
    const float4* b4 = reinterpret_cast<const float4*>(p.b);
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    for (; i + (UNROLL - 1) * stride < n4; i += UNROLL * stride) {
        float4 va[UNROLL], vb[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            va[u] = a4[i + u * stride];
            vb[u] = SILU ? b4[i + u * stride] : x4[i + u * stride];
        }
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            float4 r;
            if (SILU) {
                r.x = silu_mul1(va[u].x, vb[u].x); r.y = silu_mul1(va[u].y, vb[u].y);
                r.z = silu_mul1(va[u].z, vb[u].z); r.w = silu_mul1(va[u].w, vb[u].w);
            } else {
                r.x = vb[u].x + va[u].x; r.y = vb[u].y + va[u].y; r.z = vb[u].z + va[u].z; r.w = vb[u].w + va[u].w;
            }
            x4[i + u * stride] = r;
        }
    }
    for (; i < n4; i += stride) {
        const float4 va = a4[i];
        const float4 vb = SILU ? b4[i] : x4[i];
        float4 r;
        if (SILU) {
            r.x = silu_mul1(va.x, vb.x); r.y = silu_mul1(va.y, vb.y); r.z = silu_mul1(va.z, vb.z); r.w = silu_mul1(va.w, vb.w);
        } else {
            r.x = vb.x + va.x; r.y = vb.y + va.y; r.z = vb.z + va.z; r.w = vb.w + va.w;
        }
        x4[i] = r;
    }
    return n4 << 2;
}

extern "C" __global__ void __launch_bounds__(256) add(const ElementwiseParams p) {
    const long long done = vector_part<false>(p);
    for (long long i = done + blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n; i += (long long)gridDim.x * blockDim.x)
        p.x[i] = p.x[i] + p.a[i];
}

extern "C" __global__ void __launch_bounds__(256) silu_mul(const ElementwiseParams p) {
    const long long done = vector_part<true>(p);
    for (long long i = done + blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n; i += (long long)gridDim.x * blockDim.x)
        p.x[i] = silu_mul1(p.a[i], p.b[i]);
}

extern "C" __global__ void __launch_bounds__(256) sigmoid_gate(const ElementwiseParams p) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < p.n; i += (long long)gridDim.x * blockDim.x) {
        const float g = p.a[i / p.width];
        const float s = 1.f / (1.f + expf(-g));
        p.x[i] = p.x[i] * s;
    }
}
