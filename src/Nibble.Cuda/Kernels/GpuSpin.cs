namespace Nibble.Cuda.Kernels;

/// <summary>Benchmark helper (GpuSpin.cu): keeps the GPU busy for a while so that event-timed launches behind it exclude host overhead.</summary>
public static class GpuSpin
{
    public static void Run(KernelCache kernels, CudaStream stream, double microseconds) =>
        kernels.Load("GpuSpin.cu").Function("gpu_spin").Launch(stream, (1, 1, 1), 1, (ulong)(microseconds * 1000));
}
