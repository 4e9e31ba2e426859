using Nibble.Backend;
using Nibble.Cuda.Native;

namespace Nibble.Cuda.Backend;

/// <summary>
/// An instantiated CUDA graph of one recorded step (<see cref="CudaBackend.CaptureGraph"/>): <see cref="Launch"/> replays
/// every kernel, copy and GEMM of the step with one driver call, writing <see cref="Output"/> (the tensor the step
/// returned; same device memory each replay). The device blocks the step used stay reserved until disposal.
/// </summary>
public sealed class CudaGraph : IDisposable
{
    readonly CudaBackend _backend;
    readonly HashSet<ulong> _reserved;
    IntPtr _exec;

    internal CudaGraph(CudaBackend backend, IntPtr exec, HashSet<ulong> reserved, Tensor output) =>
        (_backend, _exec, _reserved, Output) = (backend, exec, reserved, output);

    /// <summary>What the recorded step returned (e.g. the logits), rewritten by each replay.</summary>
    public Tensor Output { get; }

    /// <summary>Device blocks the graph holds (activations of the recorded step).</summary>
    public int ReservedBlocks => _reserved.Count;

    /// <summary>Queues one replay on the backend's stream.</summary>
    public void Launch()
    {
        ObjectDisposedException.ThrowIf(_exec == IntPtr.Zero, this);
        _backend.Context.Bind();
        CudaException.Check(Driver.cuGraphLaunch(_exec, _backend.Stream.Handle), "cuGraphLaunch");
    }

    public void Dispose()
    {
        if (_exec == IntPtr.Zero) return;
        _backend.ReleaseGraph(_exec, _reserved);
        _exec = IntPtr.Zero;
    }
}
