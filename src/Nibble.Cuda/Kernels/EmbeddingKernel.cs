using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>Embedding lookup (Embedding.cu): output[t] = float(table[ids[t]]).</summary>
public static class EmbeddingKernel
{
    [StructLayout(LayoutKind.Sequential)]
    struct Params { public ulong Table, Ids, Out; public int Hidden, TableBf16; }

    public static void Run(KernelCache kernels, CudaStream stream, ulong table, bool tableBf16, ulong ids, ulong output, int tokens, int hidden)
    {
        if (tokens == 0) return;
        kernels.Load("Embedding.cu").Function("embedding").Launch(stream, ((uint)tokens, 1, 1), 256,
            new Params { Table = table, Ids = ids, Out = output, Hidden = hidden, TableBf16 = tableBf16 ? 1 : 0 });
    }
}
