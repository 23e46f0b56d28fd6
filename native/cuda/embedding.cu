// CUDA embedding kernels (see selfe/kernels/embedding.h). Ids live on the device, so a kernel that meets one
// outside [0, vocab) records it in the device's failure record (reads and syncs then reject, naming the op)
// and treats the row as zero instead of reading out of bounds.
#include <cmath>

#include "check.cuh"
#include "selfe/kernels/embedding.h"

namespace selfe::cuda {

namespace {
constexpr int kThreads = 256;

// The first report wins; its values are complete before its code is, and the host reads them only after
// the stream has finished. `launch` is the launch's queue position (Context::launchPosition).
__device__ void reportBadId(DeviceStatus* status, uint64_t launch, int32_t code, int64_t id, int64_t position, int64_t vocab) {
  if (atomicCAS(&status->code, kStatusNone, kStatusWriting) != kStatusNone) return;
  status->values[0] = id;
  status->values[1] = position;
  status->values[2] = vocab;
  status->launch = launch;
  __threadfence_system();
  atomicExch(&status->code, code);
}

__global__ void embeddingForward(float* out, const float* table, const int32_t* ids, int64_t count, int64_t vocab,
                                 int64_t dim, DeviceStatus* status, uint64_t launch) {
  SELFE_GRID_STRIDE(i, count * dim) {
    const int64_t position = i / dim, c = i % dim;
    const int64_t id = ids[position];
    if (id < 0 || id >= vocab) {
      if (c == 0) reportBadId(status, launch, kStatusEmbeddingId, id, position, vocab);
      out[i] = 0.0f;
      continue;
    }
    out[i] = table[id * dim + c];
  }
}

// dtable [vocab, dim] written (=), deterministically: a block owns kGatherRows table rows and 32 columns, and
// every block reads all the ids (broadcast loads). Warp w takes positions w, w + 8, ... in order, adding the
// dout rows of its block's ids into a partial table of its own in shared memory (lane = column); the eight
// partials are then added in warp order. So each element is summed in an order fixed by the ids alone, with
// no atomics: the same bits on every run. Block (0, 0) reports an id outside the vocabulary.
constexpr int kGatherWarps = 8;
constexpr int kGatherRows = 32;
__global__ void __launch_bounds__(kGatherWarps * 32) embeddingGather(float* dtable, const float* dout, const int32_t* ids,
                                                                   int64_t count, int64_t vocab, int64_t dim,
                                                                   DeviceStatus* status, uint64_t launch) {
  __shared__ float partial[kGatherWarps][kGatherRows][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t firstRow = static_cast<int64_t>(blockIdx.x) * kGatherRows;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * 32 + lane;
  const bool reporter = blockIdx.x == 0 && blockIdx.y == 0;
  for (int r = 0; r < kGatherRows; ++r) partial[warp][r][lane] = 0.0f;
  for (int64_t position = warp; position < count; position += kGatherWarps) {
    const int64_t id = ids[position];
    if (id < 0 || id >= vocab) {
      if (reporter && lane == 0) reportBadId(status, launch, kStatusEmbeddingBackwardId, id, position, vocab);
      continue;
    }
    const int64_t row = id - firstRow;
    if (row >= 0 && row < kGatherRows && c < dim) partial[warp][row][lane] += dout[position * dim + c];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < kGatherRows * 32; e += blockDim.x) {
    const int r = e / 32, column = e % 32;
    const int64_t row = firstRow + r, at = static_cast<int64_t>(blockIdx.y) * 32 + column;
    if (row >= vocab || at >= dim) continue;
    float sum = 0.0f;
    for (int w = 0; w < kGatherWarps; ++w) sum += partial[w][r][column];
    dtable[row * dim + at] = sum;
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
                                                                                    stream.context->status,
                                                                                    stream.context->launchPosition);
  checkLaunch("embedding");
}

// Writes (=) dtable: every dout row added to the row its id names, in an order fixed by the ids.
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t count, int64_t vocab, int64_t dim,
                        Stream stream) {
  if (vocab * dim == 0) return;
  const dim3 grid(static_cast<unsigned int>((vocab + kGatherRows - 1) / kGatherRows), static_cast<unsigned int>((dim + 31) / 32));
  embeddingGather<<<grid, kGatherWarps * 32, 0, stream>>>(dtable, dout, ids, count, vocab, dim, stream.context->status,
                                                          stream.context->launchPosition);
  checkLaunch("embeddingBackward");
}

void timestep_embedding(float* out, const float* t, int64_t batch, int64_t dim, float max_period, Stream stream) {
  if (batch * dim == 0) return;
  timestepKernel<<<gridFor(stream, batch * dim, kThreads), kThreads, 0, stream>>>(out, t, batch, dim,
                                                                                  std::log(static_cast<double>(max_period)));
  checkLaunch("timestepEmbedding");
}

}  // namespace selfe::cuda
