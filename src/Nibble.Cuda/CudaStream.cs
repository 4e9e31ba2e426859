using Nibble.Cuda.Native;

namespace Nibble.Cuda;

/// <summary>A non-blocking CUDA stream. <see cref="Default"/> wraps the legacy default stream (handle 0).</summary>
public sealed class CudaStream : IDisposable
{
    public IntPtr Handle { get; private set; }
    readonly bool owned;
    readonly CudaContext context;

    CudaStream(CudaContext context, IntPtr handle, bool owned) { this.context = context; Handle = handle; this.owned = owned; }

    public static CudaStream Create(CudaContext context)
    {
        context.Bind();
        CudaException.Check(Driver.cuStreamCreate(out var h, Driver.StreamNonBlocking), "cuStreamCreate");
        return new CudaStream(context, h, owned: true);
    }

    public static CudaStream Default(CudaContext context) => new(context, IntPtr.Zero, owned: false);

    public CudaContext Context => context;

    public void Synchronize()
    {
        context.Bind();
        CudaException.Check(Driver.cuStreamSynchronize(Handle), "cuStreamSynchronize");
    }

    public void Dispose()
    {
        if (owned && Handle != IntPtr.Zero) { context.Bind(); Driver.cuStreamDestroy(Handle); }
        Handle = IntPtr.Zero;
    }
}

/// <summary>A CUDA event for timing regions on a stream.</summary>
public sealed class CudaEvent : IDisposable
{
    public IntPtr Handle { get; private set; }
    readonly CudaContext context;

    public CudaEvent(CudaContext context)
    {
        this.context = context;
        context.Bind();
        CudaException.Check(Driver.cuEventCreate(out var h, Driver.EventDefault), "cuEventCreate");
        Handle = h;
    }

    public void Record(CudaStream stream) => CudaException.Check(Driver.cuEventRecord(Handle, stream.Handle), "cuEventRecord");
    public void Synchronize() => CudaException.Check(Driver.cuEventSynchronize(Handle), "cuEventSynchronize");

    /// <summary>Milliseconds between two recorded events (waits for <paramref name="end"/>).</summary>
    public static float ElapsedMs(CudaEvent start, CudaEvent end)
    {
        end.Synchronize();
        CudaException.Check(Driver.cuEventElapsedTime(out var ms, start.Handle, end.Handle), "cuEventElapsedTime");
        return ms;
    }

    public void Dispose()
    {
        if (Handle != IntPtr.Zero) { context.Bind(); Driver.cuEventDestroy(Handle); }
        Handle = IntPtr.Zero;
    }
}
