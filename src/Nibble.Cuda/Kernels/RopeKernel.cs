using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>Rotary embedding in place, half-split convention (Rope.cu).</summary>
public static class RopeKernel
{
    [StructLayout(LayoutKind.Sequential)]
    struct Params { public ulong X, Positions, InvFreq; public int RowLength, HeadDim, PosStart, Pad; }

    /// <summary><paramref name="positions"/> = 0 means consecutive positions from <paramref name="posStart"/>.</summary>
    public static void Run(KernelCache kernels, CudaStream stream, ulong x, int tokens, int rowLength, int headDim, ulong positions, int posStart, ulong invFreq)
    {
        if (tokens == 0) return;
        kernels.Load("Rope.cu").Function("rope").Launch(stream, ((uint)tokens, 1, 1), 256,
            new Params { X = x, Positions = positions, InvFreq = invFreq, RowLength = rowLength, HeadDim = headDim, PosStart = posStart });
    }
}
