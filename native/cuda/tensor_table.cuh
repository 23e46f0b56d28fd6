// Multi-tensor tables (optim.cu's TensorTable, elementwise.cu's ConvertTable): a list of tensors passed as a
// kernel parameter, each cut into chunks of a fixed size, the chunks numbered across the table, chunkEnd[t]
// the chunks of tensors 0..t together. A block walks the table's chunks with a grid stride.
#pragma once
#include <cstdint>

namespace selfe::cuda {

struct TableChunk {
  int64_t tensor;  // the tensor holding the chunk
  int64_t begin;   // its first element in that tensor
};

// Where chunk `chunk` lies: the first tensor t with chunkEnd[t] > chunk (binary search; the same for the
// whole block), and the element the chunk begins at, for chunks of `chunkSize` elements.
__device__ __forceinline__ TableChunk tableChunk(const int64_t* chunkEnd, int64_t count, int64_t chunk, int64_t chunkSize) {
  int64_t lo = 0, hi = count - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (chunkEnd[mid] > chunk) hi = mid;
    else lo = mid + 1;
  }
  return {lo, (chunk - (lo == 0 ? 0 : chunkEnd[lo - 1])) * chunkSize};
}

}  // namespace selfe::cuda
