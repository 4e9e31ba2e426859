using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>Device-side random fills for benchmarks (RandomFill.cu).</summary>
public static class RandomFill
{
    [StructLayout(LayoutKind.Sequential)]
    struct Params { public ulong Ptr, Count; public uint Seed; public int Kind; public float Scale, Pad; }

    static void Launch(KernelCache kernels, CudaStream stream, ulong ptr, long count, uint seed, int kind, float scale) =>
        kernels.Load("RandomFill.cu").Function("random_fill").Launch(stream, ((uint)Math.Clamp((count + 255) / 256, 1, 132 * 16), 1, 1), 256,
            new Params { Ptr = ptr, Count = (ulong)count, Seed = seed, Kind = kind, Scale = scale });

    public static void Words(KernelCache k, CudaStream s, DeviceBuffer<int> b, uint seed) => Launch(k, s, b.Pointer, b.Length, seed, 0, 0);
    public static void Bf16(KernelCache k, CudaStream s, DeviceBuffer<ushort> b, uint seed, float scale) => Launch(k, s, b.Pointer, b.Length, seed, 1, scale);
    public static void E4M3(KernelCache k, CudaStream s, DeviceBuffer<byte> b, uint seed) => Launch(k, s, b.Pointer, b.Length / 4, seed, 2, 0);
    public static void GroupScales(KernelCache k, CudaStream s, DeviceBuffer<ushort> b, uint seed, float scale) => Launch(k, s, b.Pointer, b.Length, seed, 3, scale);
}
