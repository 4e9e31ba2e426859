using Nibble.Cuda;

namespace Nibble.Bench;

/// <summary>CUDA-event timing shared by the GPU suites.</summary>
static class GpuTimer
{
    /// <summary>
    /// Enqueued before each timed launch when set (`--timer busy`: GpuSpin for 60 µs), so the host's launch overhead
    /// is hidden behind GPU work and the events time the kernel alone. Null: the plain timer (launches shorter than
    /// their host overhead, e.g. cuBLASLt's ~16 µs floor at 4096², include it).
    /// </summary>
    public static Action<CudaStream>? Spin { get; set; }

    /// <summary>Median over <paramref name="iters"/> event-timed launches after 3 warm-ups, in microseconds.</summary>
    public static double MedianMicroseconds(CudaContext ctx, CudaStream stream, int iters, Action<int> launch)
    {
        for (int i = 0; i < 3; i++) launch(i);
        var starts = new CudaEvent[iters];
        var ends = new CudaEvent[iters];
        try
        {
            for (int i = 0; i < iters; i++)
            {
                starts[i] = new CudaEvent(ctx); ends[i] = new CudaEvent(ctx);
                Spin?.Invoke(stream);
                starts[i].Record(stream); launch(i + 3); ends[i].Record(stream);
            }
            var t = Enumerable.Range(0, iters).Select(i => CudaEvent.ElapsedMs(starts[i], ends[i]) * 1000.0).Order().ToArray();
            return t[t.Length / 2];
        }
        finally
        {
            foreach (var e in starts) e?.Dispose();
            foreach (var e in ends) e?.Dispose();
        }
    }
}
