// output[t, :] = float(table[ids[t], :]) for a BF16 or F32 embedding table. One CTA per token.
// Ids are checked on the host (CudaBackend.Embedding) so a bad id is a NibbleException, not a wild read.
#include "Common.cuh"

struct EmbeddingParams {
    const void* table;   // [vocab, hidden] bf16 or f32
    const int* ids;      // [tokens]
    float* out;          // [tokens, hidden]
    int hidden;
    int tableBf16;
};
static_assert(sizeof(EmbeddingParams) == 32, "EmbeddingParams must match EmbeddingKernel.cs");

extern "C" __global__ void __launch_bounds__(256) embedding(const EmbeddingParams p) {
    const int t = blockIdx.x;
    const size_t row = (size_t)p.ids[t] * p.hidden;
    float* o = p.out + (size_t)t * p.hidden;
    if (p.tableBf16) {
        const u16* src = (const u16*)p.table + row;
        for (int i = threadIdx.x; i < p.hidden; i += blockDim.x) o[i] = bf16_to_f32(src[i]);
    } else {
        const float* src = (const float*)p.table + row;
        for (int i = threadIdx.x; i < p.hidden; i += blockDim.x) o[i] = src[i];
    }
}
