// Shared device helpers for Nibble's kernels. NVRTC gets no CUDA headers (no --include-path), so the few FP8/BF16
// conversions we need are inline PTX; every conversion is round-to-nearest-even so the CPU references match exactly.
#pragma once
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

struct alignas(16) u32x4 { u32 x, y, z, w; };

// 2 floats -> 2 e4m3 bytes (lo from `lo`, hi from `hi`), RNE, saturating to +-448 (the "fn" variant has no inf).
__device__ __forceinline__ u16 f32x2_to_e4m3x2(float lo, float hi) {
    u16 r;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
    return r;
}
// f16x2 (exact values) -> 2 e4m3 bytes, RNE, saturating. Low half -> low byte.
__device__ __forceinline__ u16 f16x2_to_e4m3x2(u32 h2) {
    u16 r;
    asm("cvt.rn.satfinite.e4m3x2.f16x2 %0, %1;" : "=h"(r) : "r"(h2));
    return r;
}
// 2 e4m3 bytes -> f16x2 (exact).
__device__ __forceinline__ u32 e4m3x2_to_f16x2(u16 v) {
    u32 r;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(r) : "h"(v));
    return r;
}
__device__ __forceinline__ float e4m3_to_f32(u8 v) {
    u32 h2 = e4m3x2_to_f16x2((u16)v);
    float f;
    asm("{ .reg .b16 lo, hi; mov.b32 {lo, hi}, %1; cvt.f32.f16 %0, lo; }" : "=f"(f) : "r"(h2));
    return f;
}
__device__ __forceinline__ float bf16_to_f32(u16 v) { return __uint_as_float(((u32)v) << 16); }
__device__ __forceinline__ u16 f32_to_bf16(float f) {
    u16 r;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(f));
    return r;
}
__device__ __forceinline__ u32 prmt(u32 a, u32 b, u32 sel) {
    u32 r;
    asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(sel));
    return r;
}
__device__ __forceinline__ u32x4 ldg_nc_v4(const void* p) {
    u32x4 r;
    asm volatile("ld.global.nc.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}
// Weights are read exactly once per GEMM: stream them (evict-first) so they do not push activations out of L2/L1.
__device__ __forceinline__ u32x4 ldg_stream_v4(const void* p) {
    u32x4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}
__device__ __forceinline__ float ldcg_f32(const float* p) {
    float r;
    asm volatile("ld.global.cg.f32 %0, [%1];" : "=f"(r) : "l"(p));
    return r;
}
