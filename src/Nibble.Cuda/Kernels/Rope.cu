// Rotary embedding in place, half-split (rotate_half) convention, on x viewed as [tokens, heads, headDim].
// angle = float(pos) * invFreq[i] rounded to float exactly as the CPU reference (RopeTable.Angles) does; cosf/sinf
// without fast math (<= 2 ulp, full range reduction) so long positions stay accurate.
#include "Common.cuh"

struct RopeParams {
    float* x;              // [tokens, rowLength]
    const int* positions;  // [tokens] or null: then positions are posStart + t
    const float* invFreq;  // [headDim / 2]
    int rowLength;
    int headDim;
    int posStart;
    int pad;
};
static_assert(sizeof(RopeParams) == 40, "RopeParams must match RopeKernel.cs");

extern "C" __global__ void __launch_bounds__(256) rope(const RopeParams p) {
    const int t = blockIdx.x;
    const int pos = p.positions ? p.positions[t] : p.posStart + t;
    const int half = p.headDim >> 1;
    float* row = p.x + (size_t)t * p.rowLength;
    const int pairs = p.rowLength >> 1;
    for (int idx = threadIdx.x; idx < pairs; idx += blockDim.x) {
        const int head = idx / half, i = idx - head * half;
        const float angle = (float)pos * p.invFreq[i];
        const float c = cosf(angle), s = sinf(angle);
        float* h = row + head * p.headDim;
        const float x1 = h[i], x2 = h[i + half];
        h[i] = x1 * c - x2 * s;
        h[i + half] = x2 * c + x1 * s;
    }
}
