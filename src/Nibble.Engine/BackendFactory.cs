using Nibble.Backend;
using Nibble.Cpu;
using Nibble.Cuda.Backend;

namespace Nibble.Engine;

/// <summary>
/// Picks the backend for a `--device` value: "cpu" (the reference), "cuda" (GPU 0, or "cuda:N"), or "auto"
/// (CUDA when a GPU and driver are present, else CPU). Dispose the result when it is <see cref="IDisposable"/>
/// (the CUDA backend owns device memory and its context).
/// </summary>
public static class BackendFactory
{
    public const string Help = "Where to run: cpu, cuda (GPU 0), cuda:N, or auto (CUDA when a GPU is present, else CPU).";

    public static IBackend Create(string device)
    {
        string d = device.Trim().ToLowerInvariant();
        if (d == "cpu") return CpuBackend.Instance;
        if (d == "auto")
        {
            try { return CudaBackend.Open(); }
            catch (NibbleException) { return CpuBackend.Instance; }
        }
        if (d == "cuda" || d.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int ordinal = 0;
            if (d.Length > 4 && !int.TryParse(d.AsSpan(5), out ordinal))
                throw new NibbleException($"'{device}' names no GPU; write cuda:0, cuda:1, ...");
            try { return CudaBackend.Open(ordinal); }
            catch (NibbleException e) when (e is not Nibble.Cuda.CudaException)
            {
                throw new NibbleException($"--device {device} needs a working NVIDIA GPU: {e.Message} Or use --device cpu.");
            }
        }
        throw new NibbleException($"Unknown device '{device}'; use cpu, cuda, cuda:N or auto.");
    }
}
