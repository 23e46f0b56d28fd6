// CUDA embedding kernels (see selfe/kernels/embedding.h). Ids live on the device, so a kernel that meets one
// outside [0, vocab) records it in the device's failure record (reads and syncs then reject, naming the op)
// and treats the row as zero instead of reading out of bounds.
#include <cmath>

#include "check.cuh"
#include "selfe/kernels/elementwise.h"
#include "selfe/kernels/embedding.h"

namespace selfe::cuda {

namespace {
constexpr int kThreads = 256;

// The first report wins; its values are complete before its code is, and the host reads them only after
// the stream has finished.
__device__ void reportBadId(DeviceStatus* status, int32_t code, int64_t id, int64_t position, int64_t vocab) {
  if (atomicCAS(&status->code, kStatusNone, kStatusWriting) != kStatusNone) return;
  status->values[0] = id;
  status->values[1] = position;
  status->values[2] = vocab;
  __threadfence_system();
  atomicExch(&status->code, code);
}

__global__ void embeddingForward(float* out, const float* table, const int32_t* ids, int64_t count, int64_t vocab,
                                 int64_t dim, DeviceStatus* status) {
  SELFE_GRID_STRIDE(i, count * dim) {
    const int64_t position = i / dim, c = i % dim;
    const int64_t id = ids[position];
    if (id < 0 || id >= vocab) {
      if (c == 0) reportBadId(status, kStatusEmbeddingId, id, position, vocab);
      out[i] = 0.0f;
      continue;
    }
    out[i] = table[id * dim + c];
  }
}

// dtable is zero beforehand; rows are scattered with atomics (the order of additions is not fixed).
__global__ void embeddingScatter(float* dtable, const float* dout, const int32_t* ids, int64_t count, int64_t vocab,
                                 int64_t dim, DeviceStatus* status) {
  SELFE_GRID_STRIDE(i, count * dim) {
    const int64_t position = i / dim, c = i % dim;
    const int64_t id = ids[position];
    if (id < 0 || id >= vocab) {
      if (c == 0) reportBadId(status, kStatusEmbeddingBackwardId, id, position, vocab);
      continue;
    }
    atomicAdd(dtable + id * dim + c, dout[i]);
  }
}

__global__ void timestepKernel(float* out, const float* t, int64_t batch, int64_t dim, double logPeriod) {
  const int64_t half = dim / 2;
  SELFE_GRID_STRIDE(i, batch * dim) {
    const int64_t b = i / dim, j = i % dim;
    if (j >= 2 * half) {
      out[i] = 0.0f;  // a last odd column
      continue;
    }
    const int64_t f = j < half ? j : j - half;
    const double angle = static_cast<double>(t[b]) * exp(-logPeriod * static_cast<double>(f) / static_cast<double>(half));
    out[i] = static_cast<float>(j < half ? cos(angle) : sin(angle));
  }
}
}  // namespace

void embedding_forward(float* out, const float* table, const int32_t* ids, int64_t count, int64_t vocab, int64_t dim,
                       Stream stream) {
  if (count * dim == 0) return;
  embeddingForward<<<gridFor(stream, count * dim, kThreads), kThreads, 0, stream>>>(out, table, ids, count, vocab, dim,
                                                                                    stream.context->status);
  checkLaunch("embedding");
}

// Writes (=) dtable: zero, then every dout row added to the row its id names.
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t count, int64_t vocab, int64_t dim,
                        Stream stream) {
  fill32(dtable, 0, vocab * dim, stream);
  if (count * dim == 0) return;
  embeddingScatter<<<gridFor(stream, count * dim, kThreads), kThreads, 0, stream>>>(dtable, dout, ids, count, vocab, dim,
                                                                                    stream.context->status);
  checkLaunch("embeddingBackward");
}

void timestep_embedding(float* out, const float* t, int64_t batch, int64_t dim, float max_period, Stream stream) {
  if (batch * dim == 0) return;
  timestepKernel<<<gridFor(stream, batch * dim, kThreads), kThreads, 0, stream>>>(out, t, batch, dim,
                                                                                  std::log(static_cast<double>(max_period)));
  checkLaunch("timestepEmbedding");
}

}  // namespace selfe::cuda
