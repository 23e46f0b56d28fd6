// Column sums in two deterministic passes, shared by the backwards that reduce over tokens or rows
// (LayerNorm's dweight/dbias, adaLN's per-sample dshift/dscale/dgate, sum_axis). For every (o, c) of an
// [outer, rows, cols] view it sums kSums terms over r: pass one sums fixed chunks of rows per block, pass two
// adds the chunks up in order, so the result never depends on scheduling.
#pragma once
#include "check.cuh"

namespace selfe::cuda {

namespace columns {
constexpr int kWidth = 32;  // columns per block (one per lane)
constexpr int kDepth = 8;   // row lanes per block
}  // namespace columns

// Terms: __device__ void operator()(int64_t o, int64_t r, int64_t c, float* terms) const (kSums values).
// partials: [outer, chunks, kSums, cols].
template <int kSums, class Terms>
__global__ void columnPartials(float* partials, Terms terms, int64_t rows, int64_t cols, int64_t chunks,
                               int64_t rowsPerChunk) {
  __shared__ float shared[kSums][columns::kDepth][columns::kWidth];
  const int64_t tiles = (cols + columns::kWidth - 1) / columns::kWidth;
  const int64_t o = blockIdx.x / tiles, c = (blockIdx.x % tiles) * columns::kWidth + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  const int64_t begin = chunk * rowsPerChunk, end = min(rows, begin + rowsPerChunk);
  float acc[kSums] = {};
  if (c < cols)
    for (int64_t r = begin + threadIdx.y; r < end; r += columns::kDepth) {
      float t[kSums];
      terms(o, r, c, t);
#pragma unroll
      for (int s = 0; s < kSums; ++s) acc[s] += t[s];
    }
#pragma unroll
  for (int s = 0; s < kSums; ++s) shared[s][threadIdx.y][threadIdx.x] = acc[s];
  __syncthreads();
  if (threadIdx.y != 0 || c >= cols) return;
#pragma unroll
  for (int s = 0; s < kSums; ++s) {
    float total = 0.0f;
    for (int y = 0; y < columns::kDepth; ++y) total += shared[s][y][threadIdx.x];
    partials[((o * chunks + chunk) * kSums + s) * cols + c] = total;
  }
}

// Store: __device__ void operator()(int64_t o, int64_t c, int s, float sum) const.
template <int kSums, class Store>
__global__ void columnFinish(Store store, const float* partials, int64_t outer, int64_t cols, int64_t chunks) {
  SELFE_GRID_STRIDE(i, outer * cols) {
    const int64_t o = i / cols, c = i % cols;
#pragma unroll
    for (int s = 0; s < kSums; ++s) {
      float total = 0.0f;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) total += partials[((o * chunks + chunk) * kSums + s) * cols + c];
      store(o, c, s, total);
    }
  }
}

// Runs both passes; `name` labels launch failures.
template <int kSums, class Terms, class Store>
void columnSums(Terms terms, Store store, int64_t outer, int64_t rows, int64_t cols, Stream stream, const char* name) {
  if (outer * cols == 0) return;
  const int64_t tiles = (cols + columns::kWidth - 1) / columns::kWidth;
  // Enough chunks to give every SM a few blocks, each at least 32 rows deep, at most 1024 of them.
  const int64_t wanted = (4 * static_cast<int64_t>(stream.context->smCount) + outer * tiles - 1) / (outer * tiles);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>({wanted, (rows + 31) / 32, 1024}));
  const int64_t rowsPerChunk = std::max<int64_t>(1, (rows + chunks - 1) / chunks);
  Scratch partials(stream, static_cast<size_t>(outer * chunks * kSums * cols) * sizeof(float));
  const dim3 grid(static_cast<unsigned int>(outer * tiles), static_cast<unsigned int>(chunks));
  const dim3 block(columns::kWidth, columns::kDepth);
  columnPartials<kSums><<<grid, block, 0, stream>>>(partials.as<float>(), terms, rows, cols, chunks, rowsPerChunk);
  checkLaunch(name);
  columnFinish<kSums><<<gridFor(stream, outer * cols, 256), 256, 0, stream>>>(store, partials.as<float>(), outer, cols, chunks);
  checkLaunch(name);
}

}  // namespace selfe::cuda
