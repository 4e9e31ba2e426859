using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Nibble.Cpu;

/// <summary>
/// C[M, N] = A[M, K] · Wᵀ with W stored [N, K] (a linear layer's weight) as float32 or bf16, float32
/// accumulation. Large products use the BLIS/GotoBLAS loop structure (Goto &amp; van de Geijn,
/// "Anatomy of high-performance matrix multiplication", 2008; the BLIS papers): pack a KC×NC panel
/// of W (converting bf16 to float while packing, so weights never need a float copy in memory),
/// pack an MC×KC block of A, and run a register-blocked micro-kernel over MR×NR tiles. Threads split
/// N. Few rows (decode) take a direct GEMV path that streams W once.
/// </summary>
public static unsafe partial class Gemm
{
    public const int KC = 256;
    public const int MC = 120;
    public const int NC = 1024;

    /// <summary>Rows below which the GEMV path (W streamed once, no packing) is faster.</summary>
    public const int GemvMaxRows = 4;

    /// <summary>Work (M·N·K) below which one thread does everything.</summary>
    const long ParallelThreshold = 1 << 18;

    public static int MaxThreads { get; set; } = Environment.ProcessorCount;

    /// <summary>The micro-kernel in use: the AVX-512 tile when Vector512 is accelerated, else the AVX2 one (NIBBLE_GEMM_KERNEL overrides, for tuning).</summary>
    public static string KernelName { get; } = SelectKernel();

    static int s_kernel;

    static string SelectKernel()
    {
        string? forced = Environment.GetEnvironmentVariable("NIBBLE_GEMM_KERNEL");
        s_kernel = forced switch
        {
            "256" => 0, "512x12x32" => 1, "512x6x64" => 2, "512x8x48" => 3,
            // Zen 4 executes 512-bit FMAs as two 256-bit halves, so the AVX2 tile reaches the same peak
            // with smaller edge waste; cores with full-width AVX-512 units get the 12×32 tile.
            _ => Vector512.IsHardwareAccelerated && !IsAmd() ? 1 : 0,
        };
        return s_kernel switch
        {
            1 => Kernel512x12x32.Name, 2 => Kernel512x6x64.Name, 3 => Kernel512x8x48.Name, _ => Kernel256x6x16.Name,
        };
    }

    static bool IsAmd()
    {
        if (!System.Runtime.Intrinsics.X86.X86Base.IsSupported) return false;
        var (_, ebx, ecx, edx) = System.Runtime.Intrinsics.X86.X86Base.CpuId(0, 0);
        return ebx == 0x68747541 && edx == 0x69746e65 && ecx == 0x444d4163; // "AuthenticAMD"
    }

    /// <summary>A register-blocked MR×NR micro-kernel over packed panels (see GemmKernels.cs).</summary>
    internal interface IMicroKernel
    {
        static abstract int MR { get; }
        static abstract int NR { get; }
        static abstract string Name { get; }
        static abstract void Run(int kc, float* a, float* b, float* c, int ldc, int mr, int nr, bool accumulate);
    }

    /// <summary>
    /// Writes the valid mr×nr corner of a micro-kernel's spilled tile (row stride <paramref name="tileWidth"/>) to C,
    /// adding to C when accumulating: the edge-tile path every micro-kernel shares.
    /// </summary>
    static void StoreEdgeTile(float* tile, int tileWidth, float* c, int ldc, int mr, int nr, bool accumulate)
    {
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++)
                c[(long)i * ldc + j] = accumulate ? c[(long)i * ldc + j] + tile[i * tileWidth + j] : tile[i * tileWidth + j];
    }

    /// <summary>C = A · Wᵀ for float32 W.</summary>
    public static void MatMulTransB(float* a, int lda, float* w, int ldw, float* c, int ldc, int m, int n, int k) =>
        Run(a, lda, w, false, ldw, c, ldc, m, n, k);

    /// <summary>C = A · Wᵀ for bf16 W (bit patterns).</summary>
    public static void MatMulTransB(float* a, int lda, ushort* w, int ldw, float* c, int ldc, int m, int n, int k) =>
        Run(a, lda, w, true, ldw, c, ldc, m, n, k);

    /// <summary>For tests: the product with a given micro-kernel (0: AVX2 6×16, 1: 512 12×32, 2: 512 6×64, 3: 512 8×48).</summary>
    internal static void MatMulTransBWith(int kernel, float* a, int lda, void* w, bool bf16, int ldw, float* c, int ldc, int m, int n, int k) =>
        Run(a, lda, w, bf16, ldw, c, ldc, m, n, k, kernel);

    static void Run(float* a, int lda, void* w, bool bf16, int ldw, float* c, int ldc, int m, int n, int k, int kernel = -1)
    {
        if (kernel < 0) kernel = s_kernel;
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            for (int i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
            return;
        }
        long work = (long)m * n * k;
        int threads = work < ParallelThreshold ? 1 : Math.Max(1, Math.Min(MaxThreads, Math.Max((n + 15) / 16, (m + 5) / 6)));
        if (m <= GemvMaxRows)
        {
            ForChunks(n, threads, 8, (n0, n1) => Gemv(a, lda, w, bf16, ldw, c, ldc, m, n0, n1, k));
            return;
        }
        switch (kernel)
        {
            case 1: Split<Kernel512x12x32>(a, lda, w, bf16, ldw, c, ldc, m, n, k, threads); break;
            case 2: Split<Kernel512x6x64>(a, lda, w, bf16, ldw, c, ldc, m, n, k, threads); break;
            case 3: Split<Kernel512x8x48>(a, lda, w, bf16, ldw, c, ldc, m, n, k, threads); break;
            default: Split<Kernel256x6x16>(a, lda, w, bf16, ldw, c, ldc, m, n, k, threads); break;
        }
    }

    /// <summary>
    /// Threads split the larger of M and N: each thread packs all of the other operand's panels itself,
    /// so splitting N repeats the packing of A (M·K per thread) and splitting M repeats that of W (N·K).
    /// </summary>
    static void Split<TK>(float* a, int lda, void* w, bool bf16, int ldw, float* c, int ldc, int m, int n, int k, int threads) where TK : struct, IMicroKernel
    {
        if (m > n && threads > 1)
            ForChunks(m, threads, TK.MR, (m0, m1) => Blocked<TK>(a + (long)m0 * lda, lda, w, bf16, ldw, c + (long)m0 * ldc, ldc, m1 - m0, 0, n, k));
        else
            ForChunks(n, threads, TK.NR, (n0, n1) => Blocked<TK>(a, lda, w, bf16, ldw, c, ldc, m, n0, n1, k));
    }

    /// <summary>Splits [0, n) into <paramref name="threads"/> chunks aligned to <paramref name="align"/>.</summary>
    static void ForChunks(int n, int threads, int align, Action<int, int> body)
    {
        if (threads <= 1) { body(0, n); return; }
        int per = (n + threads - 1) / threads;
        per = (per + align - 1) / align * align;
        int chunks = (n + per - 1) / per;
        if (chunks <= 1) { body(0, n); return; }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            int n0 = i * per;
            body(n0, Math.Min(n, n0 + per));
        });
    }

    [ThreadStatic] static float* t_packA, t_packB;

    static void EnsureBuffers()
    {
        if (t_packA != null) return;
        t_packA = (float*)NativeMemory.AlignedAlloc((nuint)(MC + 16) * KC * sizeof(float), 64);
        t_packB = (float*)NativeMemory.AlignedAlloc((nuint)(NC + 64) * KC * sizeof(float), 64);
    }

    static void Blocked<TK>(float* a, int lda, void* w, bool bf16, int ldw, float* c, int ldc, int m, int n0, int n1, int k) where TK : struct, IMicroKernel
    {
        EnsureBuffers();
        float* packA = t_packA, packB = t_packB;
        int MR = TK.MR, NR = TK.NR;
        for (int jc = n0; jc < n1; jc += NC)
        {
            int nc = Math.Min(NC, n1 - jc);
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                PackB(w, bf16, ldw, jc, nc, pc, kc, packB, NR);
                bool accumulate = pc > 0;
                for (int ic = 0; ic < m; ic += MC)
                {
                    int mc = Math.Min(MC, m - ic);
                    PackA(a, lda, ic, mc, pc, kc, packA, MR);
                    for (int jr = 0; jr < nc; jr += NR)
                    {
                        int nr = Math.Min(NR, nc - jr);
                        float* bp = packB + (long)jr * kc;
                        for (int ir = 0; ir < mc; ir += MR)
                        {
                            int mr = Math.Min(MR, mc - ir);
                            TK.Run(kc, packA + (long)ir * kc, bp, c + (long)(ic + ir) * ldc + jc + jr, ldc, mr, nr, accumulate);
                        }
                    }
                }
            }
        }
    }

    /// <summary>W rows [j0, j0+nc) × columns [p0, p0+kc) into NR-wide panels laid out [panel][k][NR], zero-padded.</summary>
    static void PackB(void* w, bool bf16, int ldw, int j0, int nc, int p0, int kc, float* dst, int NR)
    {
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* panel = dst + (long)jr * kc;
            int jj = 0;
            // Blocks of 8 rows × 8 columns go through an in-register transpose; the rest element by element.
            if (Avx.IsSupported)
                for (; jj + 8 <= nr; jj += 8)
                {
                    int p = 0;
                    for (; p + 8 <= kc; p += 8)
                        Transpose8x8(w, bf16, (long)(j0 + jr + jj) * ldw + p0 + p, ldw, panel + (long)p * NR + jj, NR);
                    PackScalar(w, bf16, ldw, j0 + jr + jj, 8, p0, p, kc, panel + jj, NR);
                }
            PackScalar(w, bf16, ldw, j0 + jr + jj, nr - jj, p0, 0, kc, panel + jj, NR);
            for (int z = nr; z < NR; z++)
                for (int p = 0; p < kc; p++) panel[p * NR + z] = 0;
        }
    }

    /// <summary>Rows [row0, row0+rows) of W, columns [p0+pStart, p0+kc), into panel column offsets (stride NR per k).</summary>
    static void PackScalar(void* w, bool bf16, int ldw, int row0, int rows, int p0, int pStart, int kc, float* d, int NR)
    {
        for (int jj = 0; jj < rows; jj++)
        {
            long row = (long)(row0 + jj) * ldw + p0;
            if (bf16)
            {
                ushort* s = (ushort*)w + row;
                for (int p = pStart; p < kc; p++) d[p * NR + jj] = BitConverter.Int32BitsToSingle(s[p] << 16);
            }
            else
            {
                float* s = (float*)w + row;
                for (int p = pStart; p < kc; p++) d[p * NR + jj] = s[p];
            }
        }
    }

    /// <summary>
    /// Loads 8 rows × 8 consecutive k of W (widening bf16), transposes them in registers (unpack /
    /// shuffle / permute2x128, the classic AVX 8×8 float transpose) and stores 8 k-rows of 8 floats.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose8x8(void* w, bool bf16, long offset, int ldw, float* d, int NR)
    {
        Vector256<float> r0, r1, r2, r3, r4, r5, r6, r7;
        if (bf16)
        {
            ushort* s = (ushort*)w + offset;
            r0 = Widen(s); r1 = Widen(s + ldw); r2 = Widen(s + 2L * ldw); r3 = Widen(s + 3L * ldw);
            r4 = Widen(s + 4L * ldw); r5 = Widen(s + 5L * ldw); r6 = Widen(s + 6L * ldw); r7 = Widen(s + 7L * ldw);
        }
        else
        {
            float* s = (float*)w + offset;
            r0 = Avx.LoadVector256(s); r1 = Avx.LoadVector256(s + ldw); r2 = Avx.LoadVector256(s + 2L * ldw); r3 = Avx.LoadVector256(s + 3L * ldw);
            r4 = Avx.LoadVector256(s + 4L * ldw); r5 = Avx.LoadVector256(s + 5L * ldw); r6 = Avx.LoadVector256(s + 6L * ldw); r7 = Avx.LoadVector256(s + 7L * ldw);
        }
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44); var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44); var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44); var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44); var s7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(d, Avx.Permute2x128(s0, s4, 0x20));
        Avx.Store(d + NR, Avx.Permute2x128(s1, s5, 0x20));
        Avx.Store(d + 2 * NR, Avx.Permute2x128(s2, s6, 0x20));
        Avx.Store(d + 3 * NR, Avx.Permute2x128(s3, s7, 0x20));
        Avx.Store(d + 4 * NR, Avx.Permute2x128(s0, s4, 0x31));
        Avx.Store(d + 5 * NR, Avx.Permute2x128(s1, s5, 0x31));
        Avx.Store(d + 6 * NR, Avx.Permute2x128(s2, s6, 0x31));
        Avx.Store(d + 7 * NR, Avx.Permute2x128(s3, s7, 0x31));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Widen(ushort* s) => Vector256.ShiftLeft(Vector256.WidenLower(Vector128.Load(s).ToVector256Unsafe()), 16).AsSingle();

    /// <summary>A rows [i0, i0+mc) × columns [p0, p0+kc) into MR-tall panels laid out [panel][k][MR], zero-padded.</summary>
    static void PackA(float* a, int lda, int i0, int mc, int p0, int kc, float* dst, int MR)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* panel = dst + (long)ir * kc;
            for (int ii = 0; ii < mr; ii++)
            {
                float* s = a + (long)(i0 + ir + ii) * lda + p0;
                float* d = panel + ii;
                for (int p = 0; p < kc; p++) d[p * MR] = s[p];
            }
            for (int ii = mr; ii < MR; ii++)
                for (int p = 0; p < kc; p++) panel[p * MR + ii] = 0;
        }
    }

    /// <summary>Few rows of A against W[n0..n1): each W row is read once and dotted with every A row.</summary>
    static void Gemv(float* a, int lda, void* w, bool bf16, int ldw, float* c, int ldc, int m, int n0, int n1, int k)
    {
        for (int j = n0; j < n1; j++)
        {
            if (bf16)
            {
                ushort* wr = (ushort*)w + (long)j * ldw;
                for (int i = 0; i < m; i++) c[(long)i * ldc + j] = DotBf16(a + (long)i * lda, wr, k);
            }
            else
            {
                float* wr = (float*)w + (long)j * ldw;
                for (int i = 0; i < m; i++) c[(long)i * ldc + j] = DotF32(a + (long)i * lda, wr, k);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float DotBf16(float* x, ushort* w, int k)
    {
        int p = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated && k >= 16)
        {
            Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero;
            for (; p + 16 <= k; p += 16)
            {
                var v = Vector256.Load(w + p);
                var lo = Vector256.ShiftLeft(Vector256.WidenLower(v), 16).AsSingle();
                var hi = Vector256.ShiftLeft(Vector256.WidenUpper(v), 16).AsSingle();
                acc0 = Vector256.FusedMultiplyAdd(lo, Vector256.Load(x + p), acc0);
                acc1 = Vector256.FusedMultiplyAdd(hi, Vector256.Load(x + p + 8), acc1);
            }
            sum = Vector256.Sum(acc0 + acc1);
        }
        for (; p < k; p++) sum += x[p] * BitConverter.Int32BitsToSingle(w[p] << 16);
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float DotF32(float* x, float* w, int k) =>
        System.Numerics.Tensors.TensorPrimitives.Dot(new ReadOnlySpan<float>(x, k), new ReadOnlySpan<float>(w, k));
}
