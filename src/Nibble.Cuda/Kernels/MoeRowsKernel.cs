using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>Gather and weighted scatter-add of rows for MoE token grouping (MoeRows.cu).</summary>
public static class MoeRowsKernel
{
    [StructLayout(LayoutKind.Sequential)]
    struct Params { public ulong Src, Dst, Rows, Scales; public int Width, Pad; }

    /// <summary>dst[r] = src[rows[r]] for <paramref name="count"/> rows.</summary>
    public static void Gather(KernelCache kernels, CudaStream stream, ulong src, ulong rows, ulong dst, int count, int width)
    {
        if (count == 0) return;
        kernels.Load("MoeRows.cu").Function("gather_rows").Launch(stream, ((uint)count, 1, 1), 256,
            new Params { Src = src, Dst = dst, Rows = rows, Width = width });
    }

    /// <summary>dst[rows[r]] += scales[r] · src[r] for <paramref name="count"/> rows.</summary>
    public static void ScatterAdd(KernelCache kernels, CudaStream stream, ulong src, ulong rows, ulong scales, ulong dst, int count, int width)
    {
        if (count == 0) return;
        kernels.Load("MoeRows.cu").Function("scatter_add_rows").Launch(stream, ((uint)count, 1, 1), 256,
            new Params { Src = src, Dst = dst, Rows = rows, Scales = scales, Width = width });
    }
}
