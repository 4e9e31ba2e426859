using Nibble.Cpu;
using Nibble.Cuda.Backend;
using Nibble.Engine;

namespace Nibble.Cuda.Tests.Backend;

/// <summary>`--device` parsing and the clear error without a GPU (these run on every machine).</summary>
public class BackendFactoryTests
{
    static bool HasGpu()
    {
        try { using var b = CudaBackend.Open(); return true; }
        catch (NibbleException) { return false; }
    }

    [Fact]
    public void Cpu_is_the_reference_backend() => Assert.Same(CpuBackend.Instance, BackendFactory.Create(" CPU "));

    [Theory]
    [InlineData("tpu")]
    [InlineData("cuda:x")]
    public void Unknown_devices_are_one_clear_error(string device)
    {
        var e = Assert.Throws<NibbleException>(() => BackendFactory.Create(device));
        Assert.Contains(device, e.Message);
    }

    [Fact]
    public void Auto_picks_cuda_only_where_a_gpu_works()
    {
        var backend = BackendFactory.Create("auto");
        try { Assert.Equal(HasGpu() ? "cuda" : "cpu", backend.Name); }
        finally { (backend as IDisposable)?.Dispose(); }
    }

    [Fact]
    public void Asking_for_cuda_without_a_gpu_names_the_fix()
    {
        Assert.SkipWhen(HasGpu(), "this machine has a working GPU");
        var e = Assert.Throws<NibbleException>(() => BackendFactory.Create("cuda"));
        Assert.Contains("--device cpu", e.Message);
    }
}
