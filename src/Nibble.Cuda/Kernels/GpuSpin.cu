// Benchmark helper: one thread busy-waits on the global timer for a given time. Enqueued before a timed launch, it keeps
// the GPU busy while the host enqueues the start event, the launch and the end event, so the event interval holds
// the kernel's GPU time only (without it, launches shorter than their host overhead are timed with that overhead).
#include "Common.cuh"

extern "C" __global__ void gpu_spin(const u64 nanoseconds) {
    u64 t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < nanoseconds);
}
