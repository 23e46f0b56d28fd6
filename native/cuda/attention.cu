// CUDA fused multi-head attention (see selfe/kernels/attention.h), flash-style: scores live one 32-key tile at
// a time in registers, the softmax is online (running max and sum per query row), the L x L matrix never
// exists in memory, and the forward saves the log-sum-exp for the backward. These kernels do fp32 arithmetic
// on CUDA cores for f32 and bf16 storage alike (tiles are widened to fp32 in shared memory).
//
// A head dim d runs in the kernel built for the next of 32, 64, 128, 256 (kD); columns d..kD-1 are zero in
// shared memory, which leaves every dot product unchanged. One warp owns kRowsPerWarp rows of the block's
// tile; lane j owns key (or query) j of the inner tile for the scores and columns lane, lane + 32, ... of the
// accumulators. Backward = two kernels after a delta pass (as FlashAttention-2 without atomics): one owns
// query rows and writes dq, the other owns key rows and writes dk and dv, so every output is written once.
//
// bf16 storage at head dims 64 and 128 runs instead on tensor cores (attention_mma.cuh, launched below),
// unless the device was created with attentionKernels "simt" (Context::tensorCoreAttention); with "auto" on an
// sm_90 device the forward (for a positive scale) and the backward's key kernel (at head dim 64 past 256 keys, at
// 128 always) run on warpgroup tensor cores instead (attention_wgmma.cuh; "mma.sync" keeps them off); f32 stays
// on CUDA cores (TF32 or bf16 products would miss f32's tolerances). Their backward adds dq with atomics unless the
// device was created with determinism "run-to-run" (Context::runToRun); the CUDA-core kernels never do.
#include <cmath>
#include <type_traits>

#include "attention_mma.cuh"
#include "attention_wgmma.cuh"
#include "check.cuh"
#include "selfe/kernels/attention.h"

namespace selfe::cuda {

namespace {
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTile = 32;  // keys (forward, dq) or queries (dk, dv) per inner tile: one per lane
constexpr unsigned kFull = 0xffffffffu;

template <int kD>
struct Tiling {
  static constexpr int kRowsPerWarp = kD <= 128 ? 8 : 4;
  static constexpr int kRows = kWarps * kRowsPerWarp;  // rows a block owns
  static constexpr int kCols = kD / 32;                 // accumulator columns per lane
  static constexpr int kPadded = kD + 1;                // stride of tiles read one row per lane (no bank conflicts)
};

// Copies rows [start, start + rows) of one (batch, head) slice, row r at base + r * rowStride, into a
// shared tile of `stride` floats per row; rows past `length` and columns past d are zero.
template <int kD, class T>
__device__ void loadRows(float* tile, int stride, int rows, const T* base, int64_t rowStride, int64_t start,
                         int64_t length, int64_t d) {
  for (int e = threadIdx.x; e < rows * kD; e += blockDim.x) {
    const int r = e / kD, c = e % kD;
    const int64_t position = start + r;
    tile[r * stride + c] = position < length && c < d ? toFloat(base[position * rowStride + c]) : 0.0f;
  }
}

// Both backward kernels' scores: s[r] = rowsA[r] . a and dp[r] = rowsB[r] . b over kD columns, for a warp's R
// shared-memory rows (stride kD) and one lane's columns a, b (the dq kernel: q and dout rows against key k and
// value v; the dk/dv kernel: key and value rows against query q and dout).
template <int R, int kD>
__device__ __forceinline__ void rowDots(float (&s)[R], float (&dp)[R], const float* rowsA, const float* a,
                                        const float* rowsB, const float* b) {
#pragma unroll
  for (int r = 0; r < R; ++r) s[r] = dp[r] = 0.0f;
#pragma unroll 4
  for (int c = 0; c < kD; ++c) {
    const float ac = a[c], bc = b[c];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      s[r] += rowsA[r * kD + c] * ac;
      dp[r] += rowsB[r * kD + c] * bc;
    }
  }
}

__device__ __forceinline__ bool keyAttended(const int32_t* keyMask, int64_t b, int64_t lk, int64_t j) {
  return j < lk && (keyMask == nullptr || keyMask[b * lk + j] != 0);
}

template <class T, int kD>
__global__ void __launch_bounds__(kThreads) attentionForward(T* out, float* lse, const T* q, const T* k, const T* v,
                                                             const int32_t* keyMask, int64_t bhOffset, int64_t heads,
                                                             int64_t lq, int64_t lk, int64_t d, float scale) {
  using S = Tiling<kD>;
  constexpr int R = S::kRowsPerWarp, C = S::kCols;
  extern __shared__ float shared[];
  float* qs = shared;                   // [kRows][kD]
  float* ks = qs + S::kRows * kD;       // [kTile][kPadded]
  float* vs = ks + kTile * S::kPadded;  // [kTile][kD]
  float* attended = vs + kTile * kD;    // [kTile]: 1 where the key takes part

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t bh = bhOffset + blockIdx.y, b = bh / heads, h = bh % heads;
  const int64_t rowStride = heads * d;
  const int64_t firstRow = static_cast<int64_t>(blockIdx.x) * S::kRows;
  const T* kBase = k + (b * lk * heads + h) * d;
  const T* vBase = v + (b * lk * heads + h) * d;
  loadRows<kD>(qs, kD, S::kRows, q + (b * lq * heads + h) * d, rowStride, firstRow, lq, d);

  float m[R], l[R], o[R][C];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < C; ++c) o[r][c] = 0.0f;
  }

  for (int64_t tile = 0; tile < lk; tile += kTile) {
    __syncthreads();  // the previous tile is consumed (and the query rows are loaded)
    loadRows<kD>(ks, S::kPadded, kTile, kBase, rowStride, tile, lk, d);
    loadRows<kD>(vs, kD, kTile, vBase, rowStride, tile, lk, d);
    if (threadIdx.x < kTile) attended[threadIdx.x] = keyAttended(keyMask, b, lk, tile + threadIdx.x) ? 1.0f : 0.0f;
    __syncthreads();

    // Scores of key `lane` against the warp's rows, the rows interleaved for instruction-level parallelism.
    float s[R];
#pragma unroll
    for (int r = 0; r < R; ++r) s[r] = 0.0f;
    const float* kRow = ks + lane * S::kPadded;
    const float* qRows = qs + warp * R * kD;
#pragma unroll 4
    for (int c = 0; c < kD; ++c) {
      const float kc = kRow[c];
#pragma unroll
      for (int r = 0; r < R; ++r) s[r] += qRows[r * kD + c] * kc;
    }

    const bool valid = attended[lane] != 0.0f;
    float p[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float score = valid ? s[r] * scale : -INFINITY;
      const float mNew = fmaxf(m[r], warpMax(score));
      // No key of this row attended so far (warp-uniform): nothing to add, nothing to rescale.
      if (mNew == -INFINITY) {
        p[r] = 0.0f;
        continue;
      }
      p[r] = valid ? expf(score - mNew) : 0.0f;
      const float alpha = expf(m[r] - mNew);
      l[r] = l[r] * alpha + warpSum(p[r]);
      m[r] = mNew;
#pragma unroll
      for (int c = 0; c < C; ++c) o[r][c] *= alpha;
    }

    // o += p V, lane owning columns lane + 32 c.
#pragma unroll 4
    for (int j = 0; j < kTile; ++j) {
      float vj[C];
#pragma unroll
      for (int c = 0; c < C; ++c) vj[c] = vs[j * kD + c * 32 + lane];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float pj = __shfl_sync(kFull, p[r], j);
#pragma unroll
        for (int c = 0; c < C; ++c) o[r][c] += pj * vj[c];
      }
    }
  }

#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t row = firstRow + warp * R + r;
    if (row >= lq) continue;
    // l > 0 exactly when some key was attended (the row's maximum contributes exp(0) = 1).
    const bool any = l[r] > 0.0f;
    T* outRow = out + ((b * lq + row) * heads + h) * d;
#pragma unroll
    for (int c = 0; c < C; ++c) {
      const int64_t col = c * 32 + lane;
      if (col < d) outRow[col] = fromFloat<T>(any ? o[r][c] / l[r] : 0.0f);
    }
    if (lane == 0) lse[(b * heads + h) * lq + row] = any ? m[r] + logf(l[r]) : -INFINITY;
  }
}

// delta[b, h, i] = sum_c dout[b, i, h, c] out[b, i, h, c]: one warp per (b, i, h) row, for any head dim.
template <class T>
__global__ void attentionDelta(float* delta, const T* dout, const T* out, int64_t heads, int64_t lq, int64_t d,
                               int64_t rows) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  float acc = 0.0f;
  for (int64_t c = lane; c < d; c += 32) acc += toFloat(dout[row * d + c]) * toFloat(out[row * d + c]);
  acc = warpSum(acc);
  const int64_t h = row % heads, i = (row / heads) % lq, b = row / (heads * lq);
  if (lane == 0) delta[(b * heads + h) * lq + i] = acc;
}

// 16 bytes of a row: 8 bf16 or 4 f32 elements, read as one vector load.
template <class T>
struct alignas(16) Chunk {
  T e[16 / sizeof(T)];
};

// The same delta where a row is kGroup 16-byte chunks (kGroup a power of two up to 32) and both tensors are
// 16-byte aligned: kGroup lanes a row, one chunk of each tensor a lane. On the H200 the warp-a-row kernel above
// read 2-byte elements and took 166 us at B = 32, L = 1024, H = 16, d = 64, where the bytes alone take ~35.
template <class T, int kGroup>
__global__ void attentionDeltaChunks(float* delta, const T* dout, const T* out, int64_t heads, int64_t lq,
                                     int64_t rows) {
  const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t row = thread / kGroup;
  float acc = 0.0f;
  if (row < rows) {
    const Chunk<T> x = reinterpret_cast<const Chunk<T>*>(dout)[thread];
    const Chunk<T> y = reinterpret_cast<const Chunk<T>*>(out)[thread];
#pragma unroll
    for (int e = 0; e < 16 / static_cast<int>(sizeof(T)); ++e) acc += toFloat(x.e[e]) * toFloat(y.e[e]);
  }
  // Every lane takes part in the shuffles (a row's lanes are kGroup aligned ones of one warp).
#pragma unroll
  for (int offset = kGroup / 2; offset > 0; offset /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, offset);
  if (row < rows && thread % kGroup == 0) {
    const int64_t h = row % heads, i = (row / heads) % lq, b = row / (heads * lq);
    delta[(b * heads + h) * lq + i] = acc;
  }
}

// dq = scale sum_j ds_ij k_j with p_ij = exp(scale q_i.k_j - lse_i), ds_ij = p_ij (dout_i.v_j - delta_i).
template <class T, int kD>
__global__ void __launch_bounds__(kThreads) attentionBackwardQuery(T* dq, const T* dout, const T* q, const T* k,
                                                                   const T* v, const float* lse, const float* delta,
                                                                   const int32_t* keyMask, int64_t bhOffset,
                                                                   int64_t heads, int64_t lq, int64_t lk, int64_t d,
                                                                   float scale) {
  using S = Tiling<kD>;
  constexpr int R = S::kRowsPerWarp, C = S::kCols;
  extern __shared__ float shared[];
  float* qs = shared;                   // [kRows][kD]
  float* dos = qs + S::kRows * kD;      // [kRows][kD]
  float* ks = dos + S::kRows * kD;      // [kTile][kPadded]
  float* vs = ks + kTile * S::kPadded;  // [kTile][kPadded]
  float* attended = vs + kTile * S::kPadded;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t bh = bhOffset + blockIdx.y, b = bh / heads, h = bh % heads;
  const int64_t rowStride = heads * d;
  const int64_t firstRow = static_cast<int64_t>(blockIdx.x) * S::kRows;
  const int64_t queryBase = (b * lq * heads + h) * d, keyBase = (b * lk * heads + h) * d;
  loadRows<kD>(qs, kD, S::kRows, q + queryBase, rowStride, firstRow, lq, d);
  loadRows<kD>(dos, kD, S::kRows, dout + queryBase, rowStride, firstRow, lq, d);

  float rowLse[R], rowDelta[R], acc[R][C];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t row = firstRow + warp * R + r;
    rowLse[r] = row < lq ? lse[bh * lq + row] : -INFINITY;
    rowDelta[r] = row < lq ? delta[bh * lq + row] : 0.0f;
#pragma unroll
    for (int c = 0; c < C; ++c) acc[r][c] = 0.0f;
  }

  for (int64_t tile = 0; tile < lk; tile += kTile) {
    __syncthreads();
    loadRows<kD>(ks, S::kPadded, kTile, k + keyBase, rowStride, tile, lk, d);
    loadRows<kD>(vs, S::kPadded, kTile, v + keyBase, rowStride, tile, lk, d);
    if (threadIdx.x < kTile) attended[threadIdx.x] = keyAttended(keyMask, b, lk, tile + threadIdx.x) ? 1.0f : 0.0f;
    __syncthreads();

    float s[R], dp[R];
    rowDots<R, kD>(s, dp, qs + warp * R * kD, ks + lane * S::kPadded, dos + warp * R * kD, vs + lane * S::kPadded);

    const bool valid = attended[lane] != 0.0f;
    float ds[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float p = valid && rowLse[r] != -INFINITY ? expf(s[r] * scale - rowLse[r]) : 0.0f;
      ds[r] = p * (dp[r] - rowDelta[r]);
    }

#pragma unroll 4
    for (int j = 0; j < kTile; ++j) {
      float kj[C];
#pragma unroll
      for (int c = 0; c < C; ++c) kj[c] = ks[j * S::kPadded + c * 32 + lane];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float dsj = __shfl_sync(kFull, ds[r], j);
#pragma unroll
        for (int c = 0; c < C; ++c) acc[r][c] += dsj * kj[c];
      }
    }
  }

#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t row = firstRow + warp * R + r;
    if (row >= lq) continue;
    T* dqRow = dq + ((b * lq + row) * heads + h) * d;
#pragma unroll
    for (int c = 0; c < C; ++c) {
      const int64_t col = c * 32 + lane;
      if (col < d) dqRow[col] = fromFloat<T>(scale * acc[r][c]);
    }
  }
}

// dv_j = sum_i p_ij dout_i, dk_j = scale sum_i ds_ij q_i, for the block's key rows j.
template <class T, int kD>
__global__ void __launch_bounds__(kThreads) attentionBackwardKey(T* dk, T* dv, const T* dout, const T* q, const T* k,
                                                                 const T* v, const float* lse, const float* delta,
                                                                 const int32_t* keyMask, int64_t bhOffset,
                                                                 int64_t heads, int64_t lq, int64_t lk, int64_t d,
                                                                 float scale) {
  using S = Tiling<kD>;
  constexpr int R = S::kRowsPerWarp, C = S::kCols;
  extern __shared__ float shared[];
  float* kb = shared;                    // [kRows][kD]: the block's keys
  float* vb = kb + S::kRows * kD;        // [kRows][kD]
  float* qs = vb + S::kRows * kD;        // [kTile][kPadded]
  float* dos = qs + kTile * S::kPadded;  // [kTile][kPadded]
  float* tileLse = dos + kTile * S::kPadded;
  float* tileDelta = tileLse + kTile;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t bh = bhOffset + blockIdx.y, b = bh / heads, h = bh % heads;
  const int64_t rowStride = heads * d;
  const int64_t firstKey = static_cast<int64_t>(blockIdx.x) * S::kRows;
  const int64_t queryBase = (b * lq * heads + h) * d, keyBase = (b * lk * heads + h) * d;
  loadRows<kD>(kb, kD, S::kRows, k + keyBase, rowStride, firstKey, lk, d);
  loadRows<kD>(vb, kD, S::kRows, v + keyBase, rowStride, firstKey, lk, d);

  bool keyValid[R];
  float dkAcc[R][C], dvAcc[R][C];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    keyValid[r] = keyAttended(keyMask, b, lk, firstKey + warp * R + r);
#pragma unroll
    for (int c = 0; c < C; ++c) dkAcc[r][c] = dvAcc[r][c] = 0.0f;
  }

  for (int64_t tile = 0; tile < lq; tile += kTile) {
    __syncthreads();
    loadRows<kD>(qs, S::kPadded, kTile, q + queryBase, rowStride, tile, lq, d);
    loadRows<kD>(dos, S::kPadded, kTile, dout + queryBase, rowStride, tile, lq, d);
    if (threadIdx.x < kTile) {
      const int64_t i = tile + threadIdx.x;
      tileLse[threadIdx.x] = i < lq ? lse[bh * lq + i] : -INFINITY;
      tileDelta[threadIdx.x] = i < lq ? delta[bh * lq + i] : 0.0f;
    }
    __syncthreads();

    // Scores of query `lane` against the warp's key rows.
    float s[R], dp[R];
    rowDots<R, kD>(s, dp, kb + warp * R * kD, qs + lane * S::kPadded, vb + warp * R * kD, dos + lane * S::kPadded);

    const float queryLse = tileLse[lane], queryDelta = tileDelta[lane];
    float p[R], ds[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      p[r] = keyValid[r] && queryLse != -INFINITY ? expf(s[r] * scale - queryLse) : 0.0f;
      ds[r] = p[r] * (dp[r] - queryDelta);
    }

#pragma unroll 2
    for (int i = 0; i < kTile; ++i) {
      float qi[C], doi[C];
#pragma unroll
      for (int c = 0; c < C; ++c) {
        qi[c] = qs[i * S::kPadded + c * 32 + lane];
        doi[c] = dos[i * S::kPadded + c * 32 + lane];
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float pi = __shfl_sync(kFull, p[r], i);
        const float dsi = __shfl_sync(kFull, ds[r], i);
#pragma unroll
        for (int c = 0; c < C; ++c) {
          dvAcc[r][c] += pi * doi[c];
          dkAcc[r][c] += dsi * qi[c];
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t row = firstKey + warp * R + r;
    if (row >= lk) continue;
    T* dkRow = dk + ((b * lk + row) * heads + h) * d;
    T* dvRow = dv + ((b * lk + row) * heads + h) * d;
#pragma unroll
    for (int c = 0; c < C; ++c) {
      const int64_t col = c * 32 + lane;
      if (col < d) {
        dkRow[col] = fromFloat<T>(scale * dkAcc[r][c]);
        dvRow[col] = fromFloat<T>(dvAcc[r][c]);
      }
    }
  }
}

// Grids put (batch, head) on y, which holds at most 65535: larger products launch in slices.
constexpr int64_t kMaxGridY = 65535;

template <int kD>
constexpr size_t forwardShared() {
  using S = Tiling<kD>;
  return sizeof(float) * (S::kRows * kD + kTile * S::kPadded + kTile * kD + kTile);
}

template <int kD>
constexpr size_t backwardShared() {
  using S = Tiling<kD>;
  return sizeof(float) * (2 * S::kRows * kD + 2 * kTile * S::kPadded + 2 * kTile);
}

void requireShared(Stream stream, size_t bytes, const char* name) {
  if (bytes > stream.context->maxSharedPerBlock)
    throw Error(Error::Kind::Device, std::string(name) + ": needs " + std::to_string(bytes) +
                                         " bytes of shared memory per block, the device allows " +
                                         std::to_string(stream.context->maxSharedPerBlock));
}

template <class T, int kD>
void forwardFor(T* out, float* lse, const T* q, const T* k, const T* v, const int32_t* keyMask, int64_t batch,
                int64_t heads, int64_t lq, int64_t lk, int64_t d, float scale, Stream stream) {
  constexpr size_t bytes = forwardShared<kD>();
  requireShared(stream, bytes, "attention");
  allowSharedMemory(attentionForward<T, kD>, bytes, "attention");
  const unsigned int blocks = blocksFor(lq, Tiling<kD>::kRows);
  for (int64_t offset = 0; offset < batch * heads; offset += kMaxGridY) {
    const dim3 grid(blocks, static_cast<unsigned int>(std::min(kMaxGridY, batch * heads - offset)));
    attentionForward<T, kD><<<grid, kThreads, bytes, stream>>>(out, lse, q, k, v, keyMask, offset, heads, lq, lk, d, scale);
    checkLaunch("attention");
  }
}

template <class T, int kD>
void backwardFor(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const float* lse,
                 const float* delta, const int32_t* keyMask, int64_t batch, int64_t heads, int64_t lq, int64_t lk,
                 int64_t d, float scale, Stream stream) {
  constexpr size_t bytes = backwardShared<kD>();
  requireShared(stream, bytes, "attentionBackward");
  allowSharedMemory(attentionBackwardQuery<T, kD>, bytes, "attentionBackward");
  allowSharedMemory(attentionBackwardKey<T, kD>, bytes, "attentionBackward");
  for (int64_t offset = 0; offset < batch * heads; offset += kMaxGridY) {
    const unsigned int slice = static_cast<unsigned int>(std::min(kMaxGridY, batch * heads - offset));
    if (lq > 0) {
      attentionBackwardQuery<T, kD><<<dim3(blocksFor(lq, Tiling<kD>::kRows), slice), kThreads, bytes, stream>>>(
          dq, dout, q, k, v, lse, delta, keyMask, offset, heads, lq, lk, d, scale);
      checkLaunch("attentionBackward");
    }
    if (lk > 0) {
      attentionBackwardKey<T, kD><<<dim3(blocksFor(lk, Tiling<kD>::kRows), slice), kThreads, bytes, stream>>>(
          dk, dv, dout, q, k, v, lse, delta, keyMask, offset, heads, lq, lk, d, scale);
      checkLaunch("attentionBackward");
    }
  }
}

// ---- tensor cores (bf16, head dims 64 and 128) ----------------------------------------------------------

// cp.async and the paired stores need 16-byte aligned rows: true of every tensor the allocator hands out
// (cudaMalloc blocks), checked anyway.
bool aligned16(std::initializer_list<const void*> pointers) {
  for (const void* p : pointers)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

bool useTensorCores(Stream stream, int64_t d, std::initializer_list<const void*> pointers) {
  return (d == 64 || d == 128) && stream.context->tensorCoreAttention && aligned16(pointers);
}

// Launches a tensor-core forward kernel of tiling S (kRows query rows, kThreads, kShared) over every (batch,
// head) pair, in grid slices along y: flash::forward (mma.sync) or flash::forwardWgmma.
template <class S, class Kernel>
void forwardTensorCores(Kernel kernel, __nv_bfloat16* out, float* lse, const __nv_bfloat16* q, const __nv_bfloat16* k,
                        const __nv_bfloat16* v, const int32_t* keyMask, int64_t batch, int64_t heads, int64_t lq,
                        int64_t lk, float scale, Stream stream) {
  requireShared(stream, S::kShared, "attention");
  allowSharedMemory(kernel, S::kShared, "attention");
  const unsigned int blocks = blocksFor(lq, S::kRows);
  for (int64_t offset = 0; offset < batch * heads; offset += kMaxGridY) {
    const dim3 grid(blocks, static_cast<unsigned int>(std::min(kMaxGridY, batch * heads - offset)));
    kernel<<<grid, S::kThreads, S::kShared, stream>>>(out, lse, q, k, v, keyMask, offset, heads, lq, lk, scale);
    checkLaunch("attention");
  }
}

// Four bf16 as one 8-byte store.
struct alignas(8) Bf16x4 {
  uint32_t lo, hi;
};

// dq = scale * the f32 sums the backward kernel accumulated, four elements a thread (a float4 in, 8 bytes out):
// n is a multiple of 4 (head dims 64 and 128) and both are 16-byte aligned on the tensor-core path.
__global__ void scaleToBf16(__nv_bfloat16* dq, const float* sums, float scale, int64_t n) {
  SELFE_GRID_STRIDE(i, n / 4) {
    const float4 x = reinterpret_cast<const float4*>(sums)[i];
    reinterpret_cast<Bf16x4*>(dq)[i] =
        Bf16x4{packBf16x2(scale * x.x, scale * x.y), packBf16x2(scale * x.z, scale * x.w)};
  }
}

// One block a (batch, head) owning all lk keys: dq summed whole in the block and written as bf16, in a fixed
// order (so under either determinism setting). Head dim 64 and 0 < lk <= 256 only.
void backwardWholeKeys(__nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv, const __nv_bfloat16* dout,
                       const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const float* lse,
                       const float* delta, const int32_t* keyMask, int64_t batch, int64_t heads, int64_t lq,
                       int64_t lk, float scale, Stream stream) {
  using W = flash::BackwardTiling<64, true>;
  const auto kernel = flash::backward<64, flash::Dq::Whole, __nv_bfloat16>;
  requireShared(stream, W::kShared, "attentionBackward");
  allowSharedMemory(kernel, W::kShared, "attentionBackward");
  for (int64_t offset = 0; offset < batch * heads; offset += kMaxGridY) {
    const dim3 grid(1, static_cast<unsigned int>(std::min(kMaxGridY, batch * heads - offset)));
    kernel<<<grid, W::kThreads, W::kShared, stream>>>(dq, dk, dv, nullptr, dout, q, k, v, lse, delta, keyMask, offset,
                                                      heads, lq, lk, scale);
    checkLaunch("attentionBackward");
  }
}

template <int kD>
void backwardMma(__nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv, const __nv_bfloat16* dout,
                 const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const float* lse,
                 const float* delta, const int32_t* keyMask, int64_t batch, int64_t heads, int64_t lq, int64_t lk,
                 float scale, Stream stream) {
  if (kD == 64 && lk > 0 && lk <= flash::BackwardTiling<64, true>::kKeys)
    return backwardWholeKeys(dq, dk, dv, dout, q, k, v, lse, delta, keyMask, batch, heads, lq, lk, scale, stream);
  using S = flash::BackwardTiling<kD>;
  // Run-to-run determinism: dq from a kernel of its own (flash::backwardQueries), not added with atomics.
  const bool ordered = stream.context->runToRun;
  const auto kernel = ordered ? flash::backward<kD, flash::Dq::Skip, __nv_bfloat16>
                              : flash::backward<kD, flash::Dq::Atomic, __nv_bfloat16>;
  requireShared(stream, S::kShared, "attentionBackward");
  allowSharedMemory(kernel, S::kShared, "attentionBackward");
  const int64_t dqCount = batch * lq * heads * kD;
  const size_t dqBytes = ordered ? 0 : static_cast<size_t>(dqCount) * sizeof(float);
  Scratch sums(stream, dqBytes);
  if (!ordered && dqCount > 0) check(cudaMemsetAsync(sums.as<float>(), 0, dqBytes, stream), "attentionBackward");
  // attentionKernels "auto" on an sm_90 device: the key kernel on warpgroup tensor cores.
  const bool wgmma = !ordered && stream.context->wgmmaAttention && stream.context->runsSm90a;
  using W = flash::WgmmaBackwardTiling<kD>;
  if (wgmma) {
    requireShared(stream, W::kShared, "attentionBackward");
    allowSharedMemory(flash::backwardWgmma<kD, __nv_bfloat16>, W::kShared, "attentionBackward");
  }
  for (int64_t offset = 0; offset < batch * heads && lk > 0; offset += kMaxGridY) {
    const auto slice = static_cast<unsigned int>(std::min(kMaxGridY, batch * heads - offset));
    if (wgmma)
      flash::backwardWgmma<kD, __nv_bfloat16><<<dim3(blocksFor(lk, W::kKeys), slice), W::kThreads, W::kShared, stream>>>(
          dk, dv, sums.as<float>(), dout, q, k, v, lse, delta, keyMask, offset, heads, lq, lk, scale);
    else
      kernel<<<dim3(blocksFor(lk, S::kKeys), slice), S::kThreads, S::kShared, stream>>>(
          dq, dk, dv, sums.as<float>(), dout, q, k, v, lse, delta, keyMask, offset, heads, lq, lk, scale);
    checkLaunch("attentionBackward");
  }
  if (dqCount == 0) return;
  if (!ordered) {
    scaleToBf16<<<gridFor(stream, dqCount / 4, kThreads), kThreads, 0, stream>>>(dq, sums.as<float>(), scale, dqCount);
    checkLaunch("attentionBackward");
    return;
  }
  using Q = flash::QueryBackwardTiling<kD>;
  const auto queries = flash::backwardQueries<kD, __nv_bfloat16>;
  requireShared(stream, Q::kShared, "attentionBackward");
  allowSharedMemory(queries, Q::kShared, "attentionBackward");
  for (int64_t offset = 0; offset < batch * heads; offset += kMaxGridY) {
    const dim3 grid(blocksFor(lq, Q::kRows), static_cast<unsigned int>(std::min(kMaxGridY, batch * heads - offset)));
    queries<<<grid, Q::kThreads, Q::kShared, stream>>>(dq, dout, q, k, v, lse, delta, keyMask, offset, heads, lq, lk, scale);
    checkLaunch("attentionBackward");
  }
}

// ---- dispatch -------------------------------------------------------------------------------------------

void requireHeadDim(int64_t d, const char* name) {
  if (d > 256) throw Error(Error::Kind::Device, std::string(name) + ": head dim " + std::to_string(d) + " > 256");
}

template <class T>
void forward(T* out, float* lse, const T* q, const T* k, const T* v, const int32_t* keyMask, int64_t batch,
             int64_t heads, int64_t lq, int64_t lk, int64_t d, float scale, Stream stream) {
  if (batch * heads * lq == 0) return;
  requireHeadDim(d, "attention");
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (useTensorCores(stream, d, {out, q, k, v})) {
      // attentionKernels "auto" on an sm_90 device: the forward on warpgroup tensor cores, whose softmax takes a
      // row's largest raw score for its largest scaled one (so a positive scale only).
      if (stream.context->wgmmaAttention && stream.context->runsSm90a && scale > 0.0f) {
        if (d == 64)
          return forwardTensorCores<flash::WgmmaForwardTiling<64>>(flash::forwardWgmma<64, __nv_bfloat16>, out, lse, q, k, v,
                                                                   keyMask, batch, heads, lq, lk, scale, stream);
        return forwardTensorCores<flash::WgmmaForwardTiling<128>>(flash::forwardWgmma<128, __nv_bfloat16>, out, lse, q, k, v,
                                                                  keyMask, batch, heads, lq, lk, scale, stream);
      }
      if (d == 64)
        return forwardTensorCores<flash::ForwardTiling<64>>(flash::forward<64, __nv_bfloat16>, out, lse, q, k, v, keyMask,
                                                            batch, heads, lq, lk, scale, stream);
      return forwardTensorCores<flash::ForwardTiling<128>>(flash::forward<128, __nv_bfloat16>, out, lse, q, k, v, keyMask,
                                                           batch, heads, lq, lk, scale, stream);
    }
  }
  if (d <= 32) return forwardFor<T, 32>(out, lse, q, k, v, keyMask, batch, heads, lq, lk, d, scale, stream);
  if (d <= 64) return forwardFor<T, 64>(out, lse, q, k, v, keyMask, batch, heads, lq, lk, d, scale, stream);
  if (d <= 128) return forwardFor<T, 128>(out, lse, q, k, v, keyMask, batch, heads, lq, lk, d, scale, stream);
  forwardFor<T, 256>(out, lse, q, k, v, keyMask, batch, heads, lq, lk, d, scale, stream);
}

// delta through attentionDeltaChunks where a row is a power-of-two number (up to 32) of aligned 16-byte chunks,
// else through the warp-a-row kernel.
template <class T>
void launchDelta(float* delta, const T* dout, const T* out, int64_t heads, int64_t lq, int64_t d, int64_t rows,
                 Stream stream) {
  constexpr int64_t kChunk = 16 / sizeof(T);
  const int64_t group = d % kChunk == 0 ? d / kChunk : 0;
  const auto chunks = [&](auto kernel) {
    kernel<<<blocksFor(rows * group, kThreads), kThreads, 0, stream>>>(delta, dout, out, heads, lq, rows);
  };
  if (aligned16({dout, out})) {
    switch (group) {
      case 1: return chunks(attentionDeltaChunks<T, 1>);
      case 2: return chunks(attentionDeltaChunks<T, 2>);
      case 4: return chunks(attentionDeltaChunks<T, 4>);
      case 8: return chunks(attentionDeltaChunks<T, 8>);
      case 16: return chunks(attentionDeltaChunks<T, 16>);
      case 32: return chunks(attentionDeltaChunks<T, 32>);
      default: break;
    }
  }
  attentionDelta<<<blocksFor(rows, kWarps), kThreads, 0, stream>>>(delta, dout, out, heads, lq, d, rows);
}

template <class T>
void backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse,
              const int32_t* keyMask, int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d, float scale,
              Stream stream) {
  if (batch * heads == 0 || (lq == 0 && lk == 0)) return;
  requireHeadDim(d, "attentionBackward");
  Scratch delta(stream, static_cast<size_t>(batch * heads * lq) * sizeof(float));
  const int64_t rows = batch * lq * heads;
  if (rows > 0) {
    launchDelta(delta.as<float>(), dout, out, heads, lq, d, rows, stream);
    checkLaunch("attentionBackward");
  }
  const float* dl = delta.as<float>();
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (useTensorCores(stream, d, {dq, dk, dv, dout, q, k, v})) {
      if (d == 64) return backwardMma<64>(dq, dk, dv, dout, q, k, v, lse, dl, keyMask, batch, heads, lq, lk, scale, stream);
      return backwardMma<128>(dq, dk, dv, dout, q, k, v, lse, dl, keyMask, batch, heads, lq, lk, scale, stream);
    }
  }
  if (d <= 32) return backwardFor<T, 32>(dq, dk, dv, dout, q, k, v, lse, dl, keyMask, batch, heads, lq, lk, d, scale, stream);
  if (d <= 64) return backwardFor<T, 64>(dq, dk, dv, dout, q, k, v, lse, dl, keyMask, batch, heads, lq, lk, d, scale, stream);
  if (d <= 128) return backwardFor<T, 128>(dq, dk, dv, dout, q, k, v, lse, dl, keyMask, batch, heads, lq, lk, d, scale, stream);
  backwardFor<T, 256>(dq, dk, dv, dout, q, k, v, lse, dl, keyMask, batch, heads, lq, lk, d, scale, stream);
}
}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* key_mask,
                       int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t head_dim, float scale,
                       Stream stream) {
  forward(out, lse, q, k, v, key_mask, batch, heads, lq, lk, head_dim, scale, stream);
}
void attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const int32_t* key_mask,
                       int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t head_dim, float scale,
                       Stream stream) {
  forward(dev(out), lse, dev(q), dev(k), dev(v), key_mask, batch, heads, lq, lk, head_dim, scale, stream);
}

// Writes (=) dq, dk, dv. Probabilities are recomputed from lse; a fully masked query (lse = -inf) and a
// masked key receive and pass no gradient.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const int32_t* key_mask, int64_t batch,
                        int64_t heads, int64_t lq, int64_t lk, int64_t head_dim, float scale, Stream stream) {
  backward(dq, dk, dv, dout, q, k, v, out, lse, key_mask, batch, heads, lq, lk, head_dim, scale, stream);
}
void attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                        const bf16* out, const float* lse, const int32_t* key_mask, int64_t batch, int64_t heads,
                        int64_t lq, int64_t lk, int64_t head_dim, float scale, Stream stream) {
  backward(dev(dq), dev(dk), dev(dv), dev(dout), dev(q), dev(k), dev(v), dev(out), lse, key_mask, batch, heads, lq, lk,
           head_dim, scale, stream);
}

}  // namespace selfe::cuda
