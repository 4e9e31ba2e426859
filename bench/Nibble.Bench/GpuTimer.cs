using Nibble.Cuda;

namespace Nibble.Bench;

/// <summary>CUDA-event timing shared by the GPU suites.</summary>
static class GpuTimer
{
    /// <summary>
    /// Enqueued before each timed launch when set (`--timer busy`: GpuSpin for 60 µs), so the host's launch overhead
    /// is hidden behind GPU work and the events time the kernel alone. Null: the plain timer (a launch shorter than its
    /// host overhead would include it; gemm-large2 measured no difference on the gemm suite: cuBLASLt FP8's 16 µs at
    /// 4096² M ≤ 256 is GPU time).
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

    /// <summary>
    /// GPU time per launch when launches run back to back, as in a CUDA-graph replay: <paramref name="batch"/> launches
    /// (after 2 eager warm-ups) are captured into one CUDA graph; each round queues <paramref name="busy"/> (GPU work
    /// long enough for the host to queue what follows), an event, the graph and an event, so no host launch cost falls
    /// between the events. Median over rounds of (end − start) / batch, in microseconds, after one warm-up round.
    /// </summary>
    public static double QueuedMedianMicroseconds(CudaContext ctx, CudaStream stream, int iters, Action<int> launch, Action busy, int batch = 10)
    {
        for (int i = 0; i < 2; i++) launch(i);
        stream.Synchronize();
        ctx.Bind();
        CudaException.Check(Nibble.Cuda.Native.Driver.cuStreamBeginCapture(stream.Handle, Nibble.Cuda.Native.Driver.StreamCaptureModeRelaxed), "cuStreamBeginCapture");
        Exception? failure = null;
        try { for (int i = 0; i < batch; i++) launch(i); }
        catch (Exception e) { failure = e; }
        int r = Nibble.Cuda.Native.Driver.cuStreamEndCapture(stream.Handle, out var graph);
        if (failure is not null) throw failure;
        CudaException.Check(r, "cuStreamEndCapture");
        CudaException.Check(Nibble.Cuda.Native.Driver.cuGraphInstantiateWithFlags(out var exec, graph, 0), "cuGraphInstantiateWithFlags");
        Nibble.Cuda.Native.Driver.cuGraphDestroy(graph);
        try
        {
            int rounds = Math.Max(5, iters / batch);
            var t = new List<double>();
            using var start = new CudaEvent(ctx);
            using var end = new CudaEvent(ctx);
            for (int round = 0; round <= rounds; round++)
            {
                busy();
                start.Record(stream);
                CudaException.Check(Nibble.Cuda.Native.Driver.cuGraphLaunch(exec, stream.Handle), "cuGraphLaunch");
                end.Record(stream);
                stream.Synchronize();
                if (round > 0) t.Add(CudaEvent.ElapsedMs(start, end) * 1000.0 / batch);
            }
            t.Sort();
            return t[t.Count / 2];
        }
        finally { Nibble.Cuda.Native.Driver.cuGraphExecDestroy(exec); }
    }
}
