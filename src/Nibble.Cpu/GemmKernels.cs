// Unrolled by hand on purpose (one named local per accumulator keeps the whole tile in registers); the four kernels
// follow one pattern (docs/cpu-engine.md): keep them in step when editing. Edge tiles share Gemm.StoreEdgeTile.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Nibble.Cpu;

public static unsafe partial class Gemm
{
    /// <summary>6×16 tile in 12 Vector256 accumulators.</summary>
    internal readonly struct Kernel256x6x16 : IMicroKernel
    {
        public static int MR => 6;
        public static int NR => 16;
        public static string Name => "Vector256 6x16";

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(int kc, float* a, float* b, float* c, int ldc, int mr, int nr, bool accumulate)
        {
            Vector256<float> c0_0 = default, c0_1 = default, c1_0 = default, c1_1 = default, c2_0 = default, c2_1 = default, c3_0 = default, c3_1 = default, c4_0 = default, c4_1 = default, c5_0 = default, c5_1 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector256.Load(b + 0);
                var b1 = Vector256.Load(b + 8);
                var a0 = Vector256.Create(a[0]);
                c0_0 = Vector256.FusedMultiplyAdd(a0, b0, c0_0); c0_1 = Vector256.FusedMultiplyAdd(a0, b1, c0_1);
                var a1 = Vector256.Create(a[1]);
                c1_0 = Vector256.FusedMultiplyAdd(a1, b0, c1_0); c1_1 = Vector256.FusedMultiplyAdd(a1, b1, c1_1);
                var a2 = Vector256.Create(a[2]);
                c2_0 = Vector256.FusedMultiplyAdd(a2, b0, c2_0); c2_1 = Vector256.FusedMultiplyAdd(a2, b1, c2_1);
                var a3 = Vector256.Create(a[3]);
                c3_0 = Vector256.FusedMultiplyAdd(a3, b0, c3_0); c3_1 = Vector256.FusedMultiplyAdd(a3, b1, c3_1);
                var a4 = Vector256.Create(a[4]);
                c4_0 = Vector256.FusedMultiplyAdd(a4, b0, c4_0); c4_1 = Vector256.FusedMultiplyAdd(a4, b1, c4_1);
                var a5 = Vector256.Create(a[5]);
                c5_0 = Vector256.FusedMultiplyAdd(a5, b0, c5_0); c5_1 = Vector256.FusedMultiplyAdd(a5, b1, c5_1);
                a += 6;
                b += 16;
            }
            if (mr == 6 && nr == 16)
            {
                if (accumulate)
                {
                    c0_0 += Vector256.Load(c + 0 * ldc + 0);
                    c0_1 += Vector256.Load(c + 0 * ldc + 8);
                    c1_0 += Vector256.Load(c + 1 * ldc + 0);
                    c1_1 += Vector256.Load(c + 1 * ldc + 8);
                    c2_0 += Vector256.Load(c + 2 * ldc + 0);
                    c2_1 += Vector256.Load(c + 2 * ldc + 8);
                    c3_0 += Vector256.Load(c + 3 * ldc + 0);
                    c3_1 += Vector256.Load(c + 3 * ldc + 8);
                    c4_0 += Vector256.Load(c + 4 * ldc + 0);
                    c4_1 += Vector256.Load(c + 4 * ldc + 8);
                    c5_0 += Vector256.Load(c + 5 * ldc + 0);
                    c5_1 += Vector256.Load(c + 5 * ldc + 8);
                }
                c0_0.Store(c + 0 * ldc + 0); c0_1.Store(c + 0 * ldc + 8);
                c1_0.Store(c + 1 * ldc + 0); c1_1.Store(c + 1 * ldc + 8);
                c2_0.Store(c + 2 * ldc + 0); c2_1.Store(c + 2 * ldc + 8);
                c3_0.Store(c + 3 * ldc + 0); c3_1.Store(c + 3 * ldc + 8);
                c4_0.Store(c + 4 * ldc + 0); c4_1.Store(c + 4 * ldc + 8);
                c5_0.Store(c + 5 * ldc + 0); c5_1.Store(c + 5 * ldc + 8);
                return;
            }
            // Edge tile: spill to a local tile and copy the valid part.
            float* tile = stackalloc float[96];
            c0_0.Store(tile + 0); c0_1.Store(tile + 8);
            c1_0.Store(tile + 16); c1_1.Store(tile + 24);
            c2_0.Store(tile + 32); c2_1.Store(tile + 40);
            c3_0.Store(tile + 48); c3_1.Store(tile + 56);
            c4_0.Store(tile + 64); c4_1.Store(tile + 72);
            c5_0.Store(tile + 80); c5_1.Store(tile + 88);
            StoreEdgeTile(tile, 16, c, ldc, mr, nr, accumulate);
        }
    }

    /// <summary>12×32 tile in 24 Vector512 accumulators.</summary>
    internal readonly struct Kernel512x12x32 : IMicroKernel
    {
        public static int MR => 12;
        public static int NR => 32;
        public static string Name => "Vector512 12x32";

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(int kc, float* a, float* b, float* c, int ldc, int mr, int nr, bool accumulate)
        {
            Vector512<float> c0_0 = default, c0_1 = default, c1_0 = default, c1_1 = default, c2_0 = default, c2_1 = default, c3_0 = default, c3_1 = default, c4_0 = default, c4_1 = default, c5_0 = default, c5_1 = default, c6_0 = default, c6_1 = default, c7_0 = default, c7_1 = default, c8_0 = default, c8_1 = default, c9_0 = default, c9_1 = default, c10_0 = default, c10_1 = default, c11_0 = default, c11_1 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector512.Load(b + 0);
                var b1 = Vector512.Load(b + 16);
                var a0 = Vector512.Create(a[0]);
                c0_0 = Vector512.FusedMultiplyAdd(a0, b0, c0_0); c0_1 = Vector512.FusedMultiplyAdd(a0, b1, c0_1);
                var a1 = Vector512.Create(a[1]);
                c1_0 = Vector512.FusedMultiplyAdd(a1, b0, c1_0); c1_1 = Vector512.FusedMultiplyAdd(a1, b1, c1_1);
                var a2 = Vector512.Create(a[2]);
                c2_0 = Vector512.FusedMultiplyAdd(a2, b0, c2_0); c2_1 = Vector512.FusedMultiplyAdd(a2, b1, c2_1);
                var a3 = Vector512.Create(a[3]);
                c3_0 = Vector512.FusedMultiplyAdd(a3, b0, c3_0); c3_1 = Vector512.FusedMultiplyAdd(a3, b1, c3_1);
                var a4 = Vector512.Create(a[4]);
                c4_0 = Vector512.FusedMultiplyAdd(a4, b0, c4_0); c4_1 = Vector512.FusedMultiplyAdd(a4, b1, c4_1);
                var a5 = Vector512.Create(a[5]);
                c5_0 = Vector512.FusedMultiplyAdd(a5, b0, c5_0); c5_1 = Vector512.FusedMultiplyAdd(a5, b1, c5_1);
                var a6 = Vector512.Create(a[6]);
                c6_0 = Vector512.FusedMultiplyAdd(a6, b0, c6_0); c6_1 = Vector512.FusedMultiplyAdd(a6, b1, c6_1);
                var a7 = Vector512.Create(a[7]);
                c7_0 = Vector512.FusedMultiplyAdd(a7, b0, c7_0); c7_1 = Vector512.FusedMultiplyAdd(a7, b1, c7_1);
                var a8 = Vector512.Create(a[8]);
                c8_0 = Vector512.FusedMultiplyAdd(a8, b0, c8_0); c8_1 = Vector512.FusedMultiplyAdd(a8, b1, c8_1);
                var a9 = Vector512.Create(a[9]);
                c9_0 = Vector512.FusedMultiplyAdd(a9, b0, c9_0); c9_1 = Vector512.FusedMultiplyAdd(a9, b1, c9_1);
                var a10 = Vector512.Create(a[10]);
                c10_0 = Vector512.FusedMultiplyAdd(a10, b0, c10_0); c10_1 = Vector512.FusedMultiplyAdd(a10, b1, c10_1);
                var a11 = Vector512.Create(a[11]);
                c11_0 = Vector512.FusedMultiplyAdd(a11, b0, c11_0); c11_1 = Vector512.FusedMultiplyAdd(a11, b1, c11_1);
                a += 12;
                b += 32;
            }
            if (mr == 12 && nr == 32)
            {
                if (accumulate)
                {
                    c0_0 += Vector512.Load(c + 0 * ldc + 0);
                    c0_1 += Vector512.Load(c + 0 * ldc + 16);
                    c1_0 += Vector512.Load(c + 1 * ldc + 0);
                    c1_1 += Vector512.Load(c + 1 * ldc + 16);
                    c2_0 += Vector512.Load(c + 2 * ldc + 0);
                    c2_1 += Vector512.Load(c + 2 * ldc + 16);
                    c3_0 += Vector512.Load(c + 3 * ldc + 0);
                    c3_1 += Vector512.Load(c + 3 * ldc + 16);
                    c4_0 += Vector512.Load(c + 4 * ldc + 0);
                    c4_1 += Vector512.Load(c + 4 * ldc + 16);
                    c5_0 += Vector512.Load(c + 5 * ldc + 0);
                    c5_1 += Vector512.Load(c + 5 * ldc + 16);
                    c6_0 += Vector512.Load(c + 6 * ldc + 0);
                    c6_1 += Vector512.Load(c + 6 * ldc + 16);
                    c7_0 += Vector512.Load(c + 7 * ldc + 0);
                    c7_1 += Vector512.Load(c + 7 * ldc + 16);
                    c8_0 += Vector512.Load(c + 8 * ldc + 0);
                    c8_1 += Vector512.Load(c + 8 * ldc + 16);
                    c9_0 += Vector512.Load(c + 9 * ldc + 0);
                    c9_1 += Vector512.Load(c + 9 * ldc + 16);
                    c10_0 += Vector512.Load(c + 10 * ldc + 0);
                    c10_1 += Vector512.Load(c + 10 * ldc + 16);
                    c11_0 += Vector512.Load(c + 11 * ldc + 0);
                    c11_1 += Vector512.Load(c + 11 * ldc + 16);
                }
                c0_0.Store(c + 0 * ldc + 0); c0_1.Store(c + 0 * ldc + 16);
                c1_0.Store(c + 1 * ldc + 0); c1_1.Store(c + 1 * ldc + 16);
                c2_0.Store(c + 2 * ldc + 0); c2_1.Store(c + 2 * ldc + 16);
                c3_0.Store(c + 3 * ldc + 0); c3_1.Store(c + 3 * ldc + 16);
                c4_0.Store(c + 4 * ldc + 0); c4_1.Store(c + 4 * ldc + 16);
                c5_0.Store(c + 5 * ldc + 0); c5_1.Store(c + 5 * ldc + 16);
                c6_0.Store(c + 6 * ldc + 0); c6_1.Store(c + 6 * ldc + 16);
                c7_0.Store(c + 7 * ldc + 0); c7_1.Store(c + 7 * ldc + 16);
                c8_0.Store(c + 8 * ldc + 0); c8_1.Store(c + 8 * ldc + 16);
                c9_0.Store(c + 9 * ldc + 0); c9_1.Store(c + 9 * ldc + 16);
                c10_0.Store(c + 10 * ldc + 0); c10_1.Store(c + 10 * ldc + 16);
                c11_0.Store(c + 11 * ldc + 0); c11_1.Store(c + 11 * ldc + 16);
                return;
            }
            // Edge tile: spill to a local tile and copy the valid part.
            float* tile = stackalloc float[384];
            c0_0.Store(tile + 0); c0_1.Store(tile + 16);
            c1_0.Store(tile + 32); c1_1.Store(tile + 48);
            c2_0.Store(tile + 64); c2_1.Store(tile + 80);
            c3_0.Store(tile + 96); c3_1.Store(tile + 112);
            c4_0.Store(tile + 128); c4_1.Store(tile + 144);
            c5_0.Store(tile + 160); c5_1.Store(tile + 176);
            c6_0.Store(tile + 192); c6_1.Store(tile + 208);
            c7_0.Store(tile + 224); c7_1.Store(tile + 240);
            c8_0.Store(tile + 256); c8_1.Store(tile + 272);
            c9_0.Store(tile + 288); c9_1.Store(tile + 304);
            c10_0.Store(tile + 320); c10_1.Store(tile + 336);
            c11_0.Store(tile + 352); c11_1.Store(tile + 368);
            StoreEdgeTile(tile, 32, c, ldc, mr, nr, accumulate);
        }
    }

    /// <summary>6×64 tile in 24 Vector512 accumulators.</summary>
    internal readonly struct Kernel512x6x64 : IMicroKernel
    {
        public static int MR => 6;
        public static int NR => 64;
        public static string Name => "Vector512 6x64";

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(int kc, float* a, float* b, float* c, int ldc, int mr, int nr, bool accumulate)
        {
            Vector512<float> c0_0 = default, c0_1 = default, c0_2 = default, c0_3 = default, c1_0 = default, c1_1 = default, c1_2 = default, c1_3 = default, c2_0 = default, c2_1 = default, c2_2 = default, c2_3 = default, c3_0 = default, c3_1 = default, c3_2 = default, c3_3 = default, c4_0 = default, c4_1 = default, c4_2 = default, c4_3 = default, c5_0 = default, c5_1 = default, c5_2 = default, c5_3 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector512.Load(b + 0);
                var b1 = Vector512.Load(b + 16);
                var b2 = Vector512.Load(b + 32);
                var b3 = Vector512.Load(b + 48);
                var a0 = Vector512.Create(a[0]);
                c0_0 = Vector512.FusedMultiplyAdd(a0, b0, c0_0); c0_1 = Vector512.FusedMultiplyAdd(a0, b1, c0_1); c0_2 = Vector512.FusedMultiplyAdd(a0, b2, c0_2); c0_3 = Vector512.FusedMultiplyAdd(a0, b3, c0_3);
                var a1 = Vector512.Create(a[1]);
                c1_0 = Vector512.FusedMultiplyAdd(a1, b0, c1_0); c1_1 = Vector512.FusedMultiplyAdd(a1, b1, c1_1); c1_2 = Vector512.FusedMultiplyAdd(a1, b2, c1_2); c1_3 = Vector512.FusedMultiplyAdd(a1, b3, c1_3);
                var a2 = Vector512.Create(a[2]);
                c2_0 = Vector512.FusedMultiplyAdd(a2, b0, c2_0); c2_1 = Vector512.FusedMultiplyAdd(a2, b1, c2_1); c2_2 = Vector512.FusedMultiplyAdd(a2, b2, c2_2); c2_3 = Vector512.FusedMultiplyAdd(a2, b3, c2_3);
                var a3 = Vector512.Create(a[3]);
                c3_0 = Vector512.FusedMultiplyAdd(a3, b0, c3_0); c3_1 = Vector512.FusedMultiplyAdd(a3, b1, c3_1); c3_2 = Vector512.FusedMultiplyAdd(a3, b2, c3_2); c3_3 = Vector512.FusedMultiplyAdd(a3, b3, c3_3);
                var a4 = Vector512.Create(a[4]);
                c4_0 = Vector512.FusedMultiplyAdd(a4, b0, c4_0); c4_1 = Vector512.FusedMultiplyAdd(a4, b1, c4_1); c4_2 = Vector512.FusedMultiplyAdd(a4, b2, c4_2); c4_3 = Vector512.FusedMultiplyAdd(a4, b3, c4_3);
                var a5 = Vector512.Create(a[5]);
                c5_0 = Vector512.FusedMultiplyAdd(a5, b0, c5_0); c5_1 = Vector512.FusedMultiplyAdd(a5, b1, c5_1); c5_2 = Vector512.FusedMultiplyAdd(a5, b2, c5_2); c5_3 = Vector512.FusedMultiplyAdd(a5, b3, c5_3);
                a += 6;
                b += 64;
            }
            if (mr == 6 && nr == 64)
            {
                if (accumulate)
                {
                    c0_0 += Vector512.Load(c + 0 * ldc + 0);
                    c0_1 += Vector512.Load(c + 0 * ldc + 16);
                    c0_2 += Vector512.Load(c + 0 * ldc + 32);
                    c0_3 += Vector512.Load(c + 0 * ldc + 48);
                    c1_0 += Vector512.Load(c + 1 * ldc + 0);
                    c1_1 += Vector512.Load(c + 1 * ldc + 16);
                    c1_2 += Vector512.Load(c + 1 * ldc + 32);
                    c1_3 += Vector512.Load(c + 1 * ldc + 48);
                    c2_0 += Vector512.Load(c + 2 * ldc + 0);
                    c2_1 += Vector512.Load(c + 2 * ldc + 16);
                    c2_2 += Vector512.Load(c + 2 * ldc + 32);
                    c2_3 += Vector512.Load(c + 2 * ldc + 48);
                    c3_0 += Vector512.Load(c + 3 * ldc + 0);
                    c3_1 += Vector512.Load(c + 3 * ldc + 16);
                    c3_2 += Vector512.Load(c + 3 * ldc + 32);
                    c3_3 += Vector512.Load(c + 3 * ldc + 48);
                    c4_0 += Vector512.Load(c + 4 * ldc + 0);
                    c4_1 += Vector512.Load(c + 4 * ldc + 16);
                    c4_2 += Vector512.Load(c + 4 * ldc + 32);
                    c4_3 += Vector512.Load(c + 4 * ldc + 48);
                    c5_0 += Vector512.Load(c + 5 * ldc + 0);
                    c5_1 += Vector512.Load(c + 5 * ldc + 16);
                    c5_2 += Vector512.Load(c + 5 * ldc + 32);
                    c5_3 += Vector512.Load(c + 5 * ldc + 48);
                }
                c0_0.Store(c + 0 * ldc + 0); c0_1.Store(c + 0 * ldc + 16); c0_2.Store(c + 0 * ldc + 32); c0_3.Store(c + 0 * ldc + 48);
                c1_0.Store(c + 1 * ldc + 0); c1_1.Store(c + 1 * ldc + 16); c1_2.Store(c + 1 * ldc + 32); c1_3.Store(c + 1 * ldc + 48);
                c2_0.Store(c + 2 * ldc + 0); c2_1.Store(c + 2 * ldc + 16); c2_2.Store(c + 2 * ldc + 32); c2_3.Store(c + 2 * ldc + 48);
                c3_0.Store(c + 3 * ldc + 0); c3_1.Store(c + 3 * ldc + 16); c3_2.Store(c + 3 * ldc + 32); c3_3.Store(c + 3 * ldc + 48);
                c4_0.Store(c + 4 * ldc + 0); c4_1.Store(c + 4 * ldc + 16); c4_2.Store(c + 4 * ldc + 32); c4_3.Store(c + 4 * ldc + 48);
                c5_0.Store(c + 5 * ldc + 0); c5_1.Store(c + 5 * ldc + 16); c5_2.Store(c + 5 * ldc + 32); c5_3.Store(c + 5 * ldc + 48);
                return;
            }
            // Edge tile: spill to a local tile and copy the valid part.
            float* tile = stackalloc float[384];
            c0_0.Store(tile + 0); c0_1.Store(tile + 16); c0_2.Store(tile + 32); c0_3.Store(tile + 48);
            c1_0.Store(tile + 64); c1_1.Store(tile + 80); c1_2.Store(tile + 96); c1_3.Store(tile + 112);
            c2_0.Store(tile + 128); c2_1.Store(tile + 144); c2_2.Store(tile + 160); c2_3.Store(tile + 176);
            c3_0.Store(tile + 192); c3_1.Store(tile + 208); c3_2.Store(tile + 224); c3_3.Store(tile + 240);
            c4_0.Store(tile + 256); c4_1.Store(tile + 272); c4_2.Store(tile + 288); c4_3.Store(tile + 304);
            c5_0.Store(tile + 320); c5_1.Store(tile + 336); c5_2.Store(tile + 352); c5_3.Store(tile + 368);
            StoreEdgeTile(tile, 64, c, ldc, mr, nr, accumulate);
        }
    }

    /// <summary>8×48 tile in 24 Vector512 accumulators.</summary>
    internal readonly struct Kernel512x8x48 : IMicroKernel
    {
        public static int MR => 8;
        public static int NR => 48;
        public static string Name => "Vector512 8x48";

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(int kc, float* a, float* b, float* c, int ldc, int mr, int nr, bool accumulate)
        {
            Vector512<float> c0_0 = default, c0_1 = default, c0_2 = default, c1_0 = default, c1_1 = default, c1_2 = default, c2_0 = default, c2_1 = default, c2_2 = default, c3_0 = default, c3_1 = default, c3_2 = default, c4_0 = default, c4_1 = default, c4_2 = default, c5_0 = default, c5_1 = default, c5_2 = default, c6_0 = default, c6_1 = default, c6_2 = default, c7_0 = default, c7_1 = default, c7_2 = default;
            for (int p = 0; p < kc; p++)
            {
                var b0 = Vector512.Load(b + 0);
                var b1 = Vector512.Load(b + 16);
                var b2 = Vector512.Load(b + 32);
                var a0 = Vector512.Create(a[0]);
                c0_0 = Vector512.FusedMultiplyAdd(a0, b0, c0_0); c0_1 = Vector512.FusedMultiplyAdd(a0, b1, c0_1); c0_2 = Vector512.FusedMultiplyAdd(a0, b2, c0_2);
                var a1 = Vector512.Create(a[1]);
                c1_0 = Vector512.FusedMultiplyAdd(a1, b0, c1_0); c1_1 = Vector512.FusedMultiplyAdd(a1, b1, c1_1); c1_2 = Vector512.FusedMultiplyAdd(a1, b2, c1_2);
                var a2 = Vector512.Create(a[2]);
                c2_0 = Vector512.FusedMultiplyAdd(a2, b0, c2_0); c2_1 = Vector512.FusedMultiplyAdd(a2, b1, c2_1); c2_2 = Vector512.FusedMultiplyAdd(a2, b2, c2_2);
                var a3 = Vector512.Create(a[3]);
                c3_0 = Vector512.FusedMultiplyAdd(a3, b0, c3_0); c3_1 = Vector512.FusedMultiplyAdd(a3, b1, c3_1); c3_2 = Vector512.FusedMultiplyAdd(a3, b2, c3_2);
                var a4 = Vector512.Create(a[4]);
                c4_0 = Vector512.FusedMultiplyAdd(a4, b0, c4_0); c4_1 = Vector512.FusedMultiplyAdd(a4, b1, c4_1); c4_2 = Vector512.FusedMultiplyAdd(a4, b2, c4_2);
                var a5 = Vector512.Create(a[5]);
                c5_0 = Vector512.FusedMultiplyAdd(a5, b0, c5_0); c5_1 = Vector512.FusedMultiplyAdd(a5, b1, c5_1); c5_2 = Vector512.FusedMultiplyAdd(a5, b2, c5_2);
                var a6 = Vector512.Create(a[6]);
                c6_0 = Vector512.FusedMultiplyAdd(a6, b0, c6_0); c6_1 = Vector512.FusedMultiplyAdd(a6, b1, c6_1); c6_2 = Vector512.FusedMultiplyAdd(a6, b2, c6_2);
                var a7 = Vector512.Create(a[7]);
                c7_0 = Vector512.FusedMultiplyAdd(a7, b0, c7_0); c7_1 = Vector512.FusedMultiplyAdd(a7, b1, c7_1); c7_2 = Vector512.FusedMultiplyAdd(a7, b2, c7_2);
                a += 8;
                b += 48;
            }
            if (mr == 8 && nr == 48)
            {
                if (accumulate)
                {
                    c0_0 += Vector512.Load(c + 0 * ldc + 0);
                    c0_1 += Vector512.Load(c + 0 * ldc + 16);
                    c0_2 += Vector512.Load(c + 0 * ldc + 32);
                    c1_0 += Vector512.Load(c + 1 * ldc + 0);
                    c1_1 += Vector512.Load(c + 1 * ldc + 16);
                    c1_2 += Vector512.Load(c + 1 * ldc + 32);
                    c2_0 += Vector512.Load(c + 2 * ldc + 0);
                    c2_1 += Vector512.Load(c + 2 * ldc + 16);
                    c2_2 += Vector512.Load(c + 2 * ldc + 32);
                    c3_0 += Vector512.Load(c + 3 * ldc + 0);
                    c3_1 += Vector512.Load(c + 3 * ldc + 16);
                    c3_2 += Vector512.Load(c + 3 * ldc + 32);
                    c4_0 += Vector512.Load(c + 4 * ldc + 0);
                    c4_1 += Vector512.Load(c + 4 * ldc + 16);
                    c4_2 += Vector512.Load(c + 4 * ldc + 32);
                    c5_0 += Vector512.Load(c + 5 * ldc + 0);
                    c5_1 += Vector512.Load(c + 5 * ldc + 16);
                    c5_2 += Vector512.Load(c + 5 * ldc + 32);
                    c6_0 += Vector512.Load(c + 6 * ldc + 0);
                    c6_1 += Vector512.Load(c + 6 * ldc + 16);
                    c6_2 += Vector512.Load(c + 6 * ldc + 32);
                    c7_0 += Vector512.Load(c + 7 * ldc + 0);
                    c7_1 += Vector512.Load(c + 7 * ldc + 16);
                    c7_2 += Vector512.Load(c + 7 * ldc + 32);
                }
                c0_0.Store(c + 0 * ldc + 0); c0_1.Store(c + 0 * ldc + 16); c0_2.Store(c + 0 * ldc + 32);
                c1_0.Store(c + 1 * ldc + 0); c1_1.Store(c + 1 * ldc + 16); c1_2.Store(c + 1 * ldc + 32);
                c2_0.Store(c + 2 * ldc + 0); c2_1.Store(c + 2 * ldc + 16); c2_2.Store(c + 2 * ldc + 32);
                c3_0.Store(c + 3 * ldc + 0); c3_1.Store(c + 3 * ldc + 16); c3_2.Store(c + 3 * ldc + 32);
                c4_0.Store(c + 4 * ldc + 0); c4_1.Store(c + 4 * ldc + 16); c4_2.Store(c + 4 * ldc + 32);
                c5_0.Store(c + 5 * ldc + 0); c5_1.Store(c + 5 * ldc + 16); c5_2.Store(c + 5 * ldc + 32);
                c6_0.Store(c + 6 * ldc + 0); c6_1.Store(c + 6 * ldc + 16); c6_2.Store(c + 6 * ldc + 32);
                c7_0.Store(c + 7 * ldc + 0); c7_1.Store(c + 7 * ldc + 16); c7_2.Store(c + 7 * ldc + 32);
                return;
            }
            // Edge tile: spill to a local tile and copy the valid part.
            float* tile = stackalloc float[384];
            c0_0.Store(tile + 0); c0_1.Store(tile + 16); c0_2.Store(tile + 32);
            c1_0.Store(tile + 48); c1_1.Store(tile + 64); c1_2.Store(tile + 80);
            c2_0.Store(tile + 96); c2_1.Store(tile + 112); c2_2.Store(tile + 128);
            c3_0.Store(tile + 144); c3_1.Store(tile + 160); c3_2.Store(tile + 176);
            c4_0.Store(tile + 192); c4_1.Store(tile + 208); c4_2.Store(tile + 224);
            c5_0.Store(tile + 240); c5_1.Store(tile + 256); c5_2.Store(tile + 272);
            c6_0.Store(tile + 288); c6_1.Store(tile + 304); c6_2.Store(tile + 320);
            c7_0.Store(tile + 336); c7_1.Store(tile + 352); c7_2.Store(tile + 368);
            StoreEdgeTile(tile, 48, c, ldc, mr, nr, accumulate);
        }
    }
}
