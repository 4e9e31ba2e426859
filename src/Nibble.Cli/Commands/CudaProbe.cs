using System.Runtime.InteropServices;

namespace Nibble.Cli.Commands;

/// <summary>Minimal driver probe for `doctor`; replaced by Nibble.Cuda's device query once that exists.</summary>
static class CudaProbe
{
    public static string Describe()
    {
        if (!NativeLibrary.TryLoad("libcuda.so.1", out var handle))
            return "no CUDA driver (libcuda.so.1 not found): the CPU backend will be used";
        NativeLibrary.Free(handle);
        return "CUDA driver found (libcuda.so.1)";
    }
}
