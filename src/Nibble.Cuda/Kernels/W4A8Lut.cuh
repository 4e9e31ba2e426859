// The W4A8 weight decode shared by W4A8Gemm.cu, W4A8GemmMma.cu and W4A8GemmWs.cu: an 8-entry FP8 LUT per
// (row, group) built in registers from the FP8 group scale sigma, and the 3-PRMT lookup of 4 unified sign-magnitude
// int4 codes (spec §1.2, §1.5; the PRMT lookup as in CUTLASS's lookup_table_convert, learned from, not copied).
// Included after Common.cuh (KernelCache splices both in: NVRTC gets no include paths).
#pragma once

// Builds the negative and positive FP8 LUTs of one row from its FP8 group scale (as f16, exact, in both halves).
// neg byte i = e4m3((i - 8) * sigma), i = 0..7; pos byte i = e4m3((8 - i) * sigma) for i >= 1, byte 0 = -0.
// The products i*sigma are exact in f16 (sigma has 4 significant bits, |i*sigma| <= 448), so the only rounding is
// the single RNE to e4m3, identical to the CPU reference's e4m3(q * sigma).
__device__ __forceinline__ void build_lut(u32 sigmaF16x2Dup, u32& negLo, u32& negHi, u32& posLo, u32& posHi) {
    u32 p0, p1, p2, p3;
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(p0) : "r"(sigmaF16x2Dup), "r"(0xC700C800u)); // (-8, -7)
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(p1) : "r"(sigmaF16x2Dup), "r"(0xC500C600u)); // (-6, -5)
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(p2) : "r"(sigmaF16x2Dup), "r"(0xC200C400u)); // (-4, -3)
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(p3) : "r"(sigmaF16x2Dup), "r"(0xBC00C000u)); // (-2, -1)
    negLo = (u32)f16x2_to_e4m3x2(p0) | ((u32)f16x2_to_e4m3x2(p1) << 16);
    negHi = (u32)f16x2_to_e4m3x2(p2) | ((u32)f16x2_to_e4m3x2(p3) << 16);
    // Flipping the e4m3 sign bit is exact; byte 0 (code q = 0) becomes 0x80 = -0.
    posLo = (negLo & 0xFFFFFF00u) ^ 0x80808080u;
    posHi = negHi ^ 0x80808080u;
}

struct Lut { u32 nLo, nHi, pLo, pHi; };

// 8 codes (4 of row gid in the low half, 4 of row gid+8 in the high half) -> two registers of 4 e4m3 each.
__device__ __forceinline__ void convert8(u32 src, const Lut& r0, const Lut& r1, u32& out0, u32& out1) {
    u32 sign = ((src & 0x88888888u) | 0x64206420u) >> 1; // per nibble j: j + 4*s_j  (prmt: pick pos or neg byte)
    u32 idx = src & 0x77777777u;                          // magnitude index, sign bit cleared
    u32 n0 = prmt(r0.nLo, r0.nHi, idx);
    u32 p0 = prmt(r0.pLo, r0.pHi, idx);
    out0 = prmt(p0, n0, sign);
    u32 idx1 = idx >> 16, sign1 = sign >> 16;
    u32 n1 = prmt(r1.nLo, r1.nHi, idx1);
    u32 p1 = prmt(r1.pLo, r1.pHi, idx1);
    out1 = prmt(p1, n1, sign1);
}

// The two rows' LUTs (rows gid and gid+8) from their packed sigma byte pair.
__device__ __forceinline__ void load_luts(u16 sig, Lut& l0, Lut& l1) {
    u32 f2 = e4m3x2_to_f16x2(sig);
    build_lut(prmt(f2, 0, 0x1010), l0.nLo, l0.nHi, l0.pLo, l0.pHi);
    build_lut(prmt(f2, 0, 0x3232), l1.nLo, l1.nHi, l1.pLo, l1.pHi);
}
