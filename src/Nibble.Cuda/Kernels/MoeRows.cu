// Row movement for mixture-of-experts token grouping (float32, one CTA per row):
//   gather_rows:      dst[r, :] = src[rows[r], :]
//   scatter_add_rows: dst[rows[r], :] += scales[r] * src[r, :]   (atomicAdd: correct even if a row repeats;
//                     product rounded before the add, as the CPU reference's MultiplyAdd)
#include "Common.cuh"

struct RowsParams {
    const float* src;
    float* dst;
    const int* rows;
    const float* scales;
    int width;
    int pad;
};
static_assert(sizeof(RowsParams) == 40, "RowsParams must match MoeRowsKernel.cs");

extern "C" __global__ void __launch_bounds__(256) gather_rows(const RowsParams p) {
    const float* s = p.src + (size_t)p.rows[blockIdx.x] * p.width;
    float* d = p.dst + (size_t)blockIdx.x * p.width;
    for (int i = threadIdx.x; i < p.width; i += blockDim.x) d[i] = s[i];
}

extern "C" __global__ void __launch_bounds__(256) scatter_add_rows(const RowsParams p) {
    const float* s = p.src + (size_t)blockIdx.x * p.width;
    float* d = p.dst + (size_t)p.rows[blockIdx.x] * p.width;
    const float scale = p.scales[blockIdx.x];
    for (int i = threadIdx.x; i < p.width; i += blockDim.x) {
        const float v = s[i] * scale;
        atomicAdd(d + i, v);
    }
}
