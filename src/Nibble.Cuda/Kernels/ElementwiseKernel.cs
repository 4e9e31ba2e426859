using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>add, silu_mul and sigmoid_gate (Elementwise.cu), float32.</summary>
public static class ElementwiseKernel
{
    [StructLayout(LayoutKind.Sequential)]
    struct Params { public ulong X, A, B; public long N; public int Width, Pad; }

    /// <summary>Blocks for a grid-stride loop: enough to fill the GPU a few times over, no more.</summary>
    internal static uint Blocks(long n, int threads = 256) => (uint)Math.Clamp((n + threads - 1) / threads, 1, 132 * 16);

    /// <summary>
    /// Blocks for the float4 streams (add, silu_mul): one wave of 256-thread CTAs (8 per SM on an H100's 132 SMs), each
    /// thread moving 4 float4 per loop step, fewer for small n; the loop strides over the rest.
    /// </summary>
    internal static uint VectorBlocks(long n) => (uint)Math.Clamp((n / 4 + 256 * 4 - 1) / (256 * 4), 1, 132 * 8);

    static void Launch(KernelCache kernels, CudaStream stream, string name, in Params p, bool vector = false)
    {
        if (p.N == 0) return;
        kernels.Load("Elementwise.cu").Function(name).Launch(stream, (vector ? VectorBlocks(p.N) : Blocks(p.N), 1, 1), 256, p);
    }

    /// <summary>x += delta.</summary>
    public static void Add(KernelCache kernels, CudaStream stream, ulong x, ulong delta, long n) =>
        Launch(kernels, stream, "add", new Params { X = x, A = delta, N = n }, vector: true);

    /// <summary>output = silu(gate) · up; output may alias gate.</summary>
    public static void SiluMul(KernelCache kernels, CudaStream stream, ulong gate, ulong up, ulong output, long n) =>
        Launch(kernels, stream, "silu_mul", new Params { X = output, A = gate, B = up, N = n }, vector: true);

    /// <summary>x[r, :] *= sigmoid(gate[r]) for rows of <paramref name="width"/>.</summary>
    public static void SigmoidGate(KernelCache kernels, CudaStream stream, ulong x, ulong gate, long n, int width) =>
        Launch(kernels, stream, "sigmoid_gate", new Params { X = x, A = gate, N = n, Width = width });
}
