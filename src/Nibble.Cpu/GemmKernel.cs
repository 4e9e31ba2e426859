using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Nibble.Cpu;

public static unsafe partial class Gemm
{
    /// <summary>
    /// The register-blocked micro-kernel: a 6×16 tile of C held in twelve 256-bit accumulators, one
    /// broadcast of A and two loads of B per k step (the AVX2 shape used by BLIS' Haswell kernels).
    /// </summary>
    internal static class Kernel
    {
        public const int MR = 6;
        public const int NR = 16;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(int kc, float* a, float* b, float* c, int ldc, int mr, int nr, bool accumulate)
        {
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                             c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector256.Load(b);
                var b1 = Vector256.Load(b + 8);
                var a0 = Vector256.Create(a[0]);
                c00 = Vector256.FusedMultiplyAdd(a0, b0, c00); c01 = Vector256.FusedMultiplyAdd(a0, b1, c01);
                var a1 = Vector256.Create(a[1]);
                c10 = Vector256.FusedMultiplyAdd(a1, b0, c10); c11 = Vector256.FusedMultiplyAdd(a1, b1, c11);
                var a2 = Vector256.Create(a[2]);
                c20 = Vector256.FusedMultiplyAdd(a2, b0, c20); c21 = Vector256.FusedMultiplyAdd(a2, b1, c21);
                var a3 = Vector256.Create(a[3]);
                c30 = Vector256.FusedMultiplyAdd(a3, b0, c30); c31 = Vector256.FusedMultiplyAdd(a3, b1, c31);
                var a4 = Vector256.Create(a[4]);
                c40 = Vector256.FusedMultiplyAdd(a4, b0, c40); c41 = Vector256.FusedMultiplyAdd(a4, b1, c41);
                var a5 = Vector256.Create(a[5]);
                c50 = Vector256.FusedMultiplyAdd(a5, b0, c50); c51 = Vector256.FusedMultiplyAdd(a5, b1, c51);
                a += MR;
                b += NR;
            }

            if (mr == MR && nr == NR)
            {
                Store(c, c00, c01, accumulate); Store(c + ldc, c10, c11, accumulate); Store(c + 2 * ldc, c20, c21, accumulate);
                Store(c + 3 * ldc, c30, c31, accumulate); Store(c + 4 * ldc, c40, c41, accumulate); Store(c + 5 * ldc, c50, c51, accumulate);
                return;
            }
            // Edge tile: spill to a local tile and copy the valid part.
            float* tile = stackalloc float[MR * NR];
            c00.Store(tile); c01.Store(tile + 8); c10.Store(tile + 16); c11.Store(tile + 24);
            c20.Store(tile + 32); c21.Store(tile + 40); c30.Store(tile + 48); c31.Store(tile + 56);
            c40.Store(tile + 64); c41.Store(tile + 72); c50.Store(tile + 80); c51.Store(tile + 88);
            for (int i = 0; i < mr; i++)
                for (int j = 0; j < nr; j++)
                    c[(long)i * ldc + j] = accumulate ? c[(long)i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Store(float* c, Vector256<float> v0, Vector256<float> v1, bool accumulate)
        {
            if (accumulate) { v0 += Vector256.Load(c); v1 += Vector256.Load(c + 8); }
            v0.Store(c);
            v1.Store(c + 8);
        }
    }
}
