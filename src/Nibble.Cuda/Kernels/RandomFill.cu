// Device-side random fills for benchmarks (so multi-GB inputs need no host generation or upload).
// Counter-based hash, not a statistical RNG: enough to keep data non-zero and varied.
#include "Common.cuh"

__device__ __forceinline__ u32 hash32(u32 x) {
    x ^= x >> 16; x *= 0x7feb352dU; x ^= x >> 15; x *= 0x846ca68bU; x ^= x >> 16;
    return x;
}

struct FillParams { void* ptr; u64 count; u32 seed; int kind; float scale; float pad; };
static_assert(sizeof(FillParams) == 32, "FillParams must match RandomFill.cs");

// kind 0: random u32 words; 1: bf16 uniform in [-scale, scale] (count = elements);
// 2: e4m3 bytes of finite values with |v| <= 448 (count = 32-bit words of 4 bytes);
// 3: bf16 positive group scales in [scale/20, scale] (count = elements).
extern "C" __global__ void random_fill(const FillParams p) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u64 stride = (u64)gridDim.x * blockDim.x;
    for (; i < p.count; i += stride) {
        u32 h = hash32((u32)i * 0x9E3779B9u ^ hash32(p.seed + (u32)(i >> 32)));
        if (p.kind == 0) ((u32*)p.ptr)[i] = h;
        else if (p.kind == 1) ((u16*)p.ptr)[i] = f32_to_bf16(((h >> 8) * (1.0f / 16777216.0f) * 2.f - 1.f) * p.scale);
        else if (p.kind == 2) ((u32*)p.ptr)[i] = h & 0xF6F6F6F6u; // clears bit 3 of each byte's exponent: no NaN
        else ((u16*)p.ptr)[i] = f32_to_bf16((0.05f + 0.95f * (h >> 8) * (1.0f / 16777216.0f)) * p.scale);
    }
}
