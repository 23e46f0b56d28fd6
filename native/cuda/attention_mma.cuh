// Tensor-core attention kernels (FlashAttention-2 style) for bf16 storage and head dims 64 and 128; the
// contract is selfe/kernels/attention.h's. Included by attention.cu (which launches them) and, on the CPU, by
// the emulated build of test/kernels/cudaEmulated.test.ts (test/native/cuda_emu, whose driver also launches
// these kernels directly against float64 attention), so it uses only the primitives of mma_fragments.cuh.
//
// Tiles live in shared memory as bf16 rows of kD + 8 elements: the 16 bytes of padding put the 8 rows an
// ldmatrix reads in 8 different bank groups. Products are mma.sync m16n8k16 with f32 accumulators; the softmax
// works in base 2 (scores pre-multiplied by scale * log2 e) and lse is stored in natural log.
//
// Forward: a block owns kRows query rows, warp w the kMTiles m-tiles of 16 rows from w * kWarpRows; 64-key
// tiles of K and V are double-buffered through cp.async; per row a running max and sum (online softmax), P
// goes from the score accumulators straight into A fragments (bf16) for P V.
// Backward: a block owns 128 keys (warp w the kMTiles m-tiles of 16 keys from w * kWarpKeys) and walks the
// query tiles: it recomputes S^T = K Q^T and P^T from lse, dP^T = V dO^T, dS^T = P^T (dP^T - delta); dV += P^T dO
// and dK += dS^T Q stay in registers; dS^T goes through shared memory for dQ = dS K, which is added with f32
// atomics (two floats each) into a workspace (so dq's summation order is not fixed) and scaled and converted by
// the launcher. At head dim 64 with at most 256 keys, one block of 8 warps owns them all and writes dq itself.
#pragma once
#include <cmath>
#include <cstdint>

#include "mma_fragments.cuh"

namespace selfe::cuda::flash {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr int kKeyTile = 64;  // keys per tile of the forward

template <int kD>
struct ForwardTiling {
  // Each warp owns kMTiles m-tiles of 16 query rows, so one K or V fragment read from shared memory feeds
  // kMTiles products. At head dim 64 two (32 rows, as FlashAttention-2's warps): an ldmatrix.x4 (512 bytes,
  // 4 cycles of an SM's shared-memory bandwidth) then feeds 4 mma.sync instead of 2. At 128 the accumulators
  // of a second m-tile do not fit in the registers, so one.
  static constexpr int kMTiles = kD == 64 ? 2 : 1;
  static constexpr int kWarps = kD == 64 ? 4 : 8;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kWarpRows = 16 * kMTiles;
  static constexpr int kRows = kWarps * kWarpRows;
  // Two blocks per SM at head dim 64 (up to 255 registers a thread); one at 128.
  static constexpr int kMinBlocks = kD == 64 ? 2 : 1;
  static constexpr int kStride = kD + 8;
  // q [kRows], k and v [2][kKeyTile] rows of bf16, then [2][kKeyTile] key flags.
  static constexpr int kShared = 2 * (kRows + 4 * kKeyTile) * kStride + 4 * 2 * kKeyTile;
};

// How the key kernel produces dq: added unscaled with atomics into an f32 workspace (Atomic), left to
// backwardQueries (Skip), or summed whole in a block that owns every key of its (batch, head) and written as
// bf16 (Whole: no workspace to zero, no atomics, no conversion pass, and a fixed summation order).
enum class Dq { Atomic, Skip, Whole };

template <int kD, bool kWholeKeys = false>
struct BackwardTiling {
  static_assert(!kWholeKeys || kD == 64, "whole-keys blocks only at head dim 64");
  // 128 keys a block (as FlashAttention-2's backward): every block walks all the queries, adding its share of
  // dQ with atomics, so twice the keys per block halves both the Q and dO reads and the atomics. With
  // kWholeKeys, 256 keys (8 warps, 1 block/SM) so that sequences up to 256 tokens (DiT's 16 x 16 patches) are
  // one block a (batch, head), and dq needs none of the atomics' passes (a 134 MB f32 workspace zeroed, added
  // into, then read, at 32768 tokens of 16 heads of 64). Each warp owns kMTiles m-tiles of 16 keys, so a Q or
  // dO fragment read from shared memory feeds kMTiles products: at head dim 64 two (4 warps of 32 keys: with
  // 16-key warps, 0.6 ldmatrix.x4 a mma, the H200's profile had L1/shared memory as the busiest unit; 2.60 ->
  // 2.03 ms at L = 1024); at 128 the accumulators of a second m-tile do not fit, so 8 warps of 16.
  static constexpr int kMTiles = kD == 64 ? 2 : 1;
  static constexpr int kWarps = kD == 64 && !kWholeKeys ? 4 : 8;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kWarpKeys = 16 * kMTiles;
  static constexpr int kKeys = kWarps * kWarpKeys;
  // Queries per tile: 32 keeps dK and dV (2 x 64 f32 registers a thread) and the scores without spills.
  static constexpr int kQueries = 32;
  // Two blocks per SM at head dim 64 (up to 255 registers a thread, 4 warps each); one at 128 or whole keys.
  static constexpr int kMinBlocks = kD == 64 && !kWholeKeys ? 2 : 1;
  static constexpr int kStride = kD + 8;
  static constexpr int kScoreStride = kQueries + 8;
  // The dQ product's k-steps unrolled: all 8 of a 128-key block; 4 of whole keys' 16 (all 16 spilled 36 bytes).
  static constexpr int kDqUnroll = kWholeKeys ? 4 : kKeys / 16;
  // k, v [kKeys], q, dout [2][kQueries] rows of bf16; dS^T [kKeys][kScoreStride] bf16; lse, delta [2][kQueries].
  static constexpr int kShared = 2 * ((2 * kKeys + 4 * kQueries) * kStride + kKeys * kScoreStride) + 4 * 4 * kQueries;
};

SELFE_DEVICE bool keyAttended(const int32_t* keyMask, int64_t b, int64_t lk, int64_t j) {
  return j < lk && (keyMask == nullptr || keyMask[b * lk + j] != 0);
}

// Copies rows [start, start + kRows) of one (batch, head) slice (row r at base + r * rowStride) into a shared
// tile of kD + 8 bf16 per row; rows at or past `length` are zero.
template <int kD, int kRows, int kThreads, class T>
SELFE_DEVICE void loadRows(uint16_t* tile, const T* base, int64_t rowStride, int64_t start, int64_t length) {
  constexpr int kChunks = kD / 8;  // 16-byte pieces per row
  for (int e = threadIndex(); e < kRows * kChunks; e += kThreads) {
    const int r = e / kChunks, c = e % kChunks;
    const int64_t position = start + r;
    const bool inside = position < length;
    copyAsync16(tile + r * (kD + 8) + c * 8, inside ? base + position * rowStride + c * 8 : base, inside);
  }
}

// Starts the copies of key tile `tile` of one (batch, head) slice into buffer `buffer`: K and V rows (zero at
// or past lk) into ks and vs, and each key's flag (1 where it takes part) into attended.
template <int kD, int kThreads, class T>
SELFE_DEVICE void loadKeyTile(uint16_t* ks, uint16_t* vs, float* attended, const T* kBase, const T* vBase, int64_t rowStride,
                              int64_t tile, int buffer, int64_t lk, const int32_t* keyMask, int64_t b) {
  loadRows<kD, kKeyTile, kThreads>(ks + buffer * kKeyTile * (kD + 8), kBase, rowStride, tile * kKeyTile, lk);
  loadRows<kD, kKeyTile, kThreads>(vs + buffer * kKeyTile * (kD + 8), vBase, rowStride, tile * kKeyTile, lk);
  const int tid = threadIndex();
  if (tid < kKeyTile) attended[buffer * kKeyTile + tid] = keyAttended(keyMask, b, lk, tile * kKeyTile + tid) ? 1.0f : 0.0f;
}

// Two adjacent outputs as one 32-bit store.
template <class T>
SELFE_DEVICE void storePair(T* at, float lo, float hi) {
  *reinterpret_cast<uint32_t*>(at) = packBf16x2(lo, hi);
}

// Score accumulators of n-tiles 2kk and 2kk+1 (a 16x16 block, rows = the warp's rows) as the A operand of the
// k-step kk: the C layout of two n-tiles is the A layout of one 16-wide k-step.
SELFE_DEVICE void scoresAsA(uint32_t (&a)[4], const float (&left)[4], const float (&right)[4]) {
  a[0] = packBf16x2(left[0], left[1]);
  a[1] = packBf16x2(left[2], left[3]);
  a[2] = packBf16x2(right[0], right[1]);
  a[3] = packBf16x2(right[2], right[3]);
}

// One query row's online-softmax step over a key tile (the forwards'): the row's max over the tile (base 2, this
// lane's part) is reduced over the quad of lanes that shares the row, and the running max m and sum l move to it
// when it passes m by more than `margin` (0: whenever it is larger). Returns the factor for the row's earlier
// output and sum (exactly 1 where m stayed); `base` is what the tile's scores are taken from. A margin makes the
// max lazy (FlashAttention-4's): most tiles then leave m, l and the output as they are, exact but for rounding,
// with every p at most 2^margin.
SELFE_DEVICE float rescaleRow(float tileMax, float& m, float& l, float& base, float margin = 0.0f) {
  tileMax = fmaxf(tileMax, shuffleXor(tileMax, 1));  // the 4 lanes of a quad share a row
  tileMax = fmaxf(tileMax, shuffleXor(tileMax, 2));
  float alpha = 1.0f;
  if (tileMax > m + margin) {  // false while the row has no key attended (both -inf)
    alpha = exp2Approx(m - tileMax);  // 0 for the first tile with a key (m -inf)
    m = tileMax;
    l *= alpha;
  }
  base = m == -INFINITY ? 0.0f : m;  // no key of the row attended yet: every p is exp2(-inf) = 0
  return alpha;
}

// A finished query row (the forwards'): the factor for its output (1 / its sum over the quad, 0 where no key
// was attended) and its lse in natural log (-inf where none was). All lanes of the quad must call it.
struct RowEnd {
  float inverse, lse;
};
SELFE_DEVICE RowEnd endRow(float l, float m) {
  float sum = l;
  sum += shuffleXor(sum, 1);
  sum += shuffleXor(sum, 2);
  // sum > 0 exactly when some key was attended (the row's maximum contributes exp2(0) = 1).
  const bool any = sum > 0.0f;
  return {any ? 1.0f / sum : 0.0f, any ? m * kLn2 + logf(sum) : -INFINITY};
}

// Query i's lse in base 2 for the backwards' P = exp2(S scale log2 e - lse): +inf where it takes no part (lse
// -inf: every key masked; or i past lq), so that p = exp2(-inf) = 0.
SELFE_DEVICE float lseBase2(const float* lse, int64_t bh, int64_t lq, int64_t i) {
  const float rowLse = i < lq ? lse[bh * lq + i] : -INFINITY;
  return rowLse == -INFINITY ? INFINITY : rowLse * kLog2e;
}

// The key kernels' per-query numbers for query tile `tile` of kQ rows: thread r < kQ stores query tile * kQ + r's
// lse (base 2, lseBase2) and delta (0 past lq) at lses[r] and deltas[r].
template <int kQ>
SELFE_DEVICE void loadQueryStats(float* lses, float* deltas, const float* lse, const float* delta, int64_t bh, int64_t lq,
                                 int64_t tile) {
  const int r = threadIndex();
  if (r >= kQ) return;
  const int64_t i = tile * kQ + r;
  lses[r] = lseBase2(lse, bh, lq, i);
  deltas[r] = i < lq ? delta[bh * lq + i] : 0.0f;
}

// out [B, Lq, H, kD], lse [B, H, Lq]; grid (ceil(Lq / kRows), batch * heads slice at bhOffset).
template <int kD, class T>
SELFE_KERNEL(ForwardTiling<kD>::kThreads, ForwardTiling<kD>::kMinBlocks)
forward(T* out, float* lse, const T* q, const T* k, const T* v, const int32_t* keyMask, int64_t bhOffset, int64_t heads,
        int64_t lq, int64_t lk, float scale) {
  using S = ForwardTiling<kD>;
  constexpr int kStride = S::kStride, kKeyTiles = kKeyTile / 8, kDimTiles = kD / 8, kM = S::kMTiles;
  SELFE_SHARED_MEMORY(shared);
  uint16_t* qs = reinterpret_cast<uint16_t*>(shared);
  uint16_t* ks = qs + S::kRows * kStride;
  uint16_t* vs = ks + 2 * kKeyTile * kStride;
  float* attended = reinterpret_cast<float*>(vs + 2 * kKeyTile * kStride);  // 1 where the key takes part

  const int tid = threadIndex(), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int64_t bh = bhOffset + blockIndexY(), b = bh / heads, h = bh % heads;
  const int64_t rowStride = heads * kD;
  const int64_t firstRow = static_cast<int64_t>(blockIndexX()) * S::kRows;
  const T* kBase = k + (b * lk * heads + h) * kD;
  const T* vBase = v + (b * lk * heads + h) * kD;
  const int64_t tiles = (lk + kKeyTile - 1) / kKeyTile;
  const auto loadKeys = [&](int64_t tile, int buffer) {
    loadKeyTile<kD, S::kThreads>(ks, vs, attended, kBase, vBase, rowStride, tile, buffer, lk, keyMask, b);
  };
  loadRows<kD, S::kRows, S::kThreads>(qs, q + (b * lq * heads + h) * kD, rowStride, firstRow, lq);
  if (tiles > 0) loadKeys(0, 0);
  commitAsync();

  const float scaleLog2 = scale * kLog2e;
  const LaneOffset aAt = rowsFirst(lane), bAt = colsFirst(lane);
  // Per m-tile mt (the warp's rows 16 mt..16 mt + 15): Q fragments, output accumulators, and for rows g and
  // g + 8 the running max (base 2) and partial sum.
  uint32_t qa[kM][kD / 16][4];
  float o[kM][kDimTiles][4] = {};
  float m[kM][2], l[kM][2] = {};
#pragma unroll
  for (int mt = 0; mt < kM; ++mt) m[mt][0] = m[mt][1] = -INFINITY;

  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int buffer = static_cast<int>(tile & 1);
    if (tile + 1 < tiles) loadKeys(tile + 1, buffer ^ 1);  // that buffer was released by the last blockSync
    commitAsync();
    waitAsync<1>();  // everything but the prefetch just issued has landed
    blockSync();
    if (tile == 0) {
#pragma unroll
      for (int mt = 0; mt < kM; ++mt)
#pragma unroll
        for (int kk = 0; kk < kD / 16; ++kk)
          ldmatrixX4(qa[mt][kk], qs + (warp * S::kWarpRows + mt * 16 + aAt.row) * kStride + kk * 16 + aAt.col);
    }

    // S = Q K^T for the warp's rows and the tile's 64 keys; each K fragment serves every m-tile.
    const uint16_t* kt = ks + buffer * kKeyTile * kStride;
    float s[kM][kKeyTiles][4] = {};
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk)
#pragma unroll
      for (int np = 0; np < kKeyTile / 16; ++np) {
        uint32_t bf[4];
        ldmatrixX4(bf, kt + (np * 16 + bAt.row) * kStride + kk * 16 + bAt.col);
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          mma(s[mt][2 * np], qa[mt][kk], bf[0], bf[1]);
          mma(s[mt][2 * np + 1], qa[mt][kk], bf[2], bf[3]);
        }
      }

    // Online softmax; element e of an n-tile is row g + 8 (e / 2), key 8 nt + 2t + e % 2.
    const float* flags = attended + buffer * kKeyTile;
    const bool partial = keyMask != nullptr || (tile + 1) * kKeyTile > lk;
#pragma unroll
    for (int mt = 0; mt < kM; ++mt) {
      float tileMax[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = s[mt][nt][e] * scaleLog2;
          if (partial && flags[nt * 8 + 2 * t + (e & 1)] == 0.0f) x = -INFINITY;
          s[mt][nt][e] = x;
          tileMax[e >> 1] = fmaxf(tileMax[e >> 1], x);
        }
      float base[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float alpha = rescaleRow(tileMax[r], m[mt][r], l[mt][r], base[r]);
#pragma unroll
        for (int nt = 0; nt < kDimTiles; ++nt) {
          o[mt][nt][2 * r] *= alpha;
          o[mt][nt][2 * r + 1] *= alpha;
        }
      }
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[mt][nt][e] = exp2Approx(s[mt][nt][e] - base[e >> 1]);
          l[mt][e >> 1] += s[mt][nt][e];
        }
    }

    // O += P V; each V fragment serves every m-tile.
    const uint16_t* vt = vs + buffer * kKeyTile * kStride;
#pragma unroll
    for (int kk = 0; kk < kKeyTile / 16; ++kk) {
      uint32_t pa[kM][4];
#pragma unroll
      for (int mt = 0; mt < kM; ++mt) scoresAsA(pa[mt], s[mt][2 * kk], s[mt][2 * kk + 1]);
#pragma unroll
      for (int dp = 0; dp < kD / 16; ++dp) {
        uint32_t bf[4];
        ldmatrixX4Trans(bf, vt + (kk * 16 + aAt.row) * kStride + dp * 16 + aAt.col);
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          mma(o[mt][2 * dp], pa[mt], bf[0], bf[1]);
          mma(o[mt][2 * dp + 1], pa[mt], bf[2], bf[3]);
        }
      }
    }
    blockSync();  // every warp is done with this buffer before the next prefetch overwrites it
  }

  T* outBase = out + (b * lq * heads + h) * kD;
#pragma unroll
  for (int mt = 0; mt < kM; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const RowEnd end = endRow(l[mt][r], m[mt][r]);
      const int64_t row = firstRow + warp * S::kWarpRows + mt * 16 + g + 8 * r;
      if (row >= lq) continue;
#pragma unroll
      for (int nt = 0; nt < kDimTiles; ++nt)
        storePair(outBase + row * rowStride + nt * 8 + 2 * t, o[mt][nt][2 * r] * end.inverse, o[mt][nt][2 * r + 1] * end.inverse);
      if (t == 0) lse[bh * lq + row] = end.lse;
    }
}

// dk, dv [B, Lk, H, kD] written (=); dq as kDq says: Atomic, dqAccum [B, Lq, H, kD] f32 accumulated (+=,
// unscaled; dq unused); Skip, left to backwardQueries (dq, dqAccum unused); Whole, dq [B, Lq, H, kD] written
// (=; lk <= kKeys, one block along x; dqAccum unused); delta [B, H, Lq] = rowsum(dout * out); grid
// (ceil(Lk / kKeys), batch * heads slice at bhOffset).
template <int kD, Dq kDq, class T>
SELFE_KERNEL(BackwardTiling<kD, kDq == Dq::Whole>::kThreads, BackwardTiling<kD, kDq == Dq::Whole>::kMinBlocks)
backward(T* dq, T* dk, T* dv, float* dqAccum, const T* dout, const T* q, const T* k, const T* v, const float* lse,
         const float* delta, const int32_t* keyMask, int64_t bhOffset, int64_t heads, int64_t lq, int64_t lk,
         float scale) {
  using S = BackwardTiling<kD, kDq == Dq::Whole>;
  constexpr int kQ = S::kQueries, kStride = S::kStride, kScoreStride = S::kScoreStride, kM = S::kMTiles;
  constexpr int kQueryTiles = kQ / 8, kDimTiles = kD / 8;
  SELFE_SHARED_MEMORY(shared);
  uint16_t* ks = reinterpret_cast<uint16_t*>(shared);
  uint16_t* vs = ks + S::kKeys * kStride;
  uint16_t* qs = vs + S::kKeys * kStride;   // [2][kQ]
  uint16_t* dos = qs + 2 * kQ * kStride;    // [2][kQ]
  uint16_t* dss = dos + 2 * kQ * kStride;   // dS^T [kKeys][kScoreStride]
  float* lses = reinterpret_cast<float*>(dss + S::kKeys * kScoreStride);  // [2][kQ], base 2, +inf: no gradient
  float* deltas = lses + 2 * kQ;                                           // [2][kQ]

  const int tid = threadIndex(), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int64_t bh = bhOffset + blockIndexY(), b = bh / heads, h = bh % heads;
  const int64_t rowStride = heads * kD;
  const int64_t firstKey = static_cast<int64_t>(blockIndexX()) * S::kKeys;
  const int64_t queryBase = (b * lq * heads + h) * kD, keyBase = (b * lk * heads + h) * kD;
  const int64_t tiles = (lq + kQ - 1) / kQ;
  const auto loadQueries = [&](int64_t tile, int buffer) {
    loadRows<kD, kQ, S::kThreads>(qs + buffer * kQ * kStride, q + queryBase, rowStride, tile * kQ, lq);
    loadRows<kD, kQ, S::kThreads>(dos + buffer * kQ * kStride, dout + queryBase, rowStride, tile * kQ, lq);
    loadQueryStats<kQ>(lses + buffer * kQ, deltas + buffer * kQ, lse, delta, bh, lq, tile);
  };
  loadRows<kD, S::kKeys, S::kThreads>(ks, k + keyBase, rowStride, firstKey, lk);
  loadRows<kD, S::kKeys, S::kThreads>(vs, v + keyBase, rowStride, firstKey, lk);
  if (tiles > 0) loadQueries(0, 0);
  commitAsync();

  const float scaleLog2 = scale * kLog2e;
  const LaneOffset aAt = rowsFirst(lane), bAt = colsFirst(lane);
  // Per m-tile mt (the warp's keys 16 mt..16 mt + 15): this lane's accumulator rows are keys key(mt) and
  // key(mt) + 8, and whether each takes part.
  const int warpKey = warp * S::kWarpKeys;
  bool live[kM][2];
#pragma unroll
  for (int mt = 0; mt < kM; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) live[mt][r] = keyAttended(keyMask, b, lk, firstKey + warpKey + mt * 16 + g + 8 * r);
  float dkAcc[kM][kDimTiles][4] = {}, dvAcc[kM][kDimTiles][4] = {};

  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int buffer = static_cast<int>(tile & 1);
    if (tile + 1 < tiles) loadQueries(tile + 1, buffer ^ 1);
    commitAsync();
    waitAsync<1>();
    blockSync();
    const uint16_t* qt = qs + buffer * kQ * kStride;
    const uint16_t* dot = dos + buffer * kQ * kStride;
    const float* tileLse = lses + buffer * kQ;
    const float* tileDelta = deltas + buffer * kQ;

    // S^T = K Q^T and dP^T = V dO^T: the warp's keys against the tile's queries; each Q or dO fragment serves
    // every m-tile.
    float s[kM][kQueryTiles][4] = {}, dp[kM][kQueryTiles][4] = {};
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      uint32_t ka[kM][4], va[kM][4];
#pragma unroll
      for (int mt = 0; mt < kM; ++mt) {
        ldmatrixX4(ka[mt], ks + (warpKey + mt * 16 + aAt.row) * kStride + kk * 16 + aAt.col);
        ldmatrixX4(va[mt], vs + (warpKey + mt * 16 + aAt.row) * kStride + kk * 16 + aAt.col);
      }
#pragma unroll
      for (int np = 0; np < kQ / 16; ++np) {
        uint32_t bf[4];
        ldmatrixX4(bf, qt + (np * 16 + bAt.row) * kStride + kk * 16 + bAt.col);
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          mma(s[mt][2 * np], ka[mt], bf[0], bf[1]);
          mma(s[mt][2 * np + 1], ka[mt], bf[2], bf[3]);
        }
        ldmatrixX4(bf, dot + (np * 16 + bAt.row) * kStride + kk * 16 + bAt.col);
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          mma(dp[mt][2 * np], va[mt], bf[0], bf[1]);
          mma(dp[mt][2 * np + 1], va[mt], bf[2], bf[3]);
        }
      }
    }

    // P^T = exp2(S^T scale log2 e - lse log2 e), dS^T = P^T (dP^T - delta); element e of m-tile mt: key
    // 16 mt + g + 8 (e / 2), query 8 nt + 2t + e % 2. A masked key passes no gradient.
#pragma unroll
    for (int mt = 0; mt < kM; ++mt)
#pragma unroll
      for (int nt = 0; nt < kQueryTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = nt * 8 + 2 * t + (e & 1);
          const float p = live[mt][e >> 1] ? exp2Approx(s[mt][nt][e] * scaleLog2 - tileLse[col]) : 0.0f;
          s[mt][nt][e] = p;
          dp[mt][nt][e] = p * (dp[mt][nt][e] - tileDelta[col]);
        }

    // dV += P^T dO, dK += dS^T Q (k-steps over the tile's queries); each dO or Q fragment serves every m-tile.
#pragma unroll
    for (int kk = 0; kk < kQ / 16; ++kk) {
      uint32_t pa[kM][4], da[kM][4];
#pragma unroll
      for (int mt = 0; mt < kM; ++mt) {
        scoresAsA(pa[mt], s[mt][2 * kk], s[mt][2 * kk + 1]);
        scoresAsA(da[mt], dp[mt][2 * kk], dp[mt][2 * kk + 1]);
      }
#pragma unroll
      for (int np = 0; np < kD / 16; ++np) {
        uint32_t bf[4];
        ldmatrixX4Trans(bf, dot + (kk * 16 + aAt.row) * kStride + np * 16 + aAt.col);
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          mma(dvAcc[mt][2 * np], pa[mt], bf[0], bf[1]);
          mma(dvAcc[mt][2 * np + 1], pa[mt], bf[2], bf[3]);
        }
        ldmatrixX4Trans(bf, qt + (kk * 16 + aAt.row) * kStride + np * 16 + aAt.col);
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          mma(dkAcc[mt][2 * np], da[mt], bf[0], bf[1]);
          mma(dkAcc[mt][2 * np + 1], da[mt], bf[2], bf[3]);
        }
      }
    }

    if constexpr (kDq != Dq::Skip) {
      // dQ of a tile: kQ / 16 m-tiles of 16 queries, split over the warps along head-dim columns.
      constexpr int kQueryMTiles = kQ / 16, kSplit = S::kWarps / kQueryMTiles, kDqTiles = kDimTiles / kSplit;
      const int qmt = warp % kQueryMTiles, dqFirst = (warp / kQueryMTiles) * kDqTiles;
      // dS^T to shared memory, [key][query], for the dQ product of every warp.
#pragma unroll
      for (int mt = 0; mt < kM; ++mt)
#pragma unroll
        for (int nt = 0; nt < kQueryTiles; ++nt)
#pragma unroll
          for (int r = 0; r < 2; ++r)
            *reinterpret_cast<uint32_t*>(dss + (warpKey + mt * 16 + g + 8 * r) * kScoreStride + nt * 8 + 2 * t) =
                packBf16x2(dp[mt][nt][2 * r], dp[mt][nt][2 * r + 1]);
      blockSync();

      // dQ (m-tile qmt, head-dim tiles dqFirst..) += dS K over the block's keys.
      float dqTile[kDqTiles][4] = {};
#pragma unroll S::kDqUnroll
      for (int kk = 0; kk < S::kKeys / 16; ++kk) {
        uint32_t dsa[4];
        ldmatrixX4Trans(dsa, dss + (kk * 16 + bAt.row) * kScoreStride + qmt * 16 + bAt.col);
#pragma unroll
        for (int np = 0; np < kDqTiles / 2; ++np) {
          uint32_t bf[4];
          ldmatrixX4Trans(bf, ks + (kk * 16 + aAt.row) * kStride + (dqFirst + 2 * np) * 8 + aAt.col);
          mma(dqTile[2 * np], dsa, bf[0], bf[1]);
          mma(dqTile[2 * np + 1], dsa, bf[2], bf[3]);
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int64_t i = tile * kQ + qmt * 16 + g + 8 * r;
        if (i >= lq) continue;
        const int64_t at = queryBase + i * rowStride + dqFirst * 8 + 2 * t;
#pragma unroll
        for (int nt = 0; nt < kDqTiles; ++nt) {
          if constexpr (kDq == Dq::Atomic)
            atomicAddF32x2(dqAccum + at + nt * 8, dqTile[nt][2 * r], dqTile[nt][2 * r + 1]);
          else
            storePair(dq + at + nt * 8, scale * dqTile[nt][2 * r], scale * dqTile[nt][2 * r + 1]);
        }
      }
    }
    blockSync();  // q, dout, lse, delta of this buffer (and dS^T) are consumed
  }

#pragma unroll
  for (int mt = 0; mt < kM; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int64_t j = firstKey + warpKey + mt * 16 + g + 8 * r;
      if (j >= lk) continue;
      T* dkRow = dk + keyBase + j * rowStride + 2 * t;
      T* dvRow = dv + keyBase + j * rowStride + 2 * t;
#pragma unroll
      for (int nt = 0; nt < kDimTiles; ++nt) {
        storePair(dkRow + nt * 8, scale * dkAcc[mt][nt][2 * r], scale * dkAcc[mt][nt][2 * r + 1]);
        storePair(dvRow + nt * 8, dvAcc[mt][nt][2 * r], dvAcc[mt][nt][2 * r + 1]);
      }
    }
}

template <int kD>
struct QueryBackwardTiling {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kRows = kWarps * 16;
  static constexpr int kStride = kD + 8;
  // q, dout [kRows], k and v [2][kKeyTile] rows of bf16, then [2][kKeyTile] key flags.
  static constexpr int kShared = 2 * (2 * kRows + 4 * kKeyTile) * kStride + 4 * 2 * kKeyTile;
};

// dq [B, Lq, H, kD] written (=): the run-to-run deterministic dq, for backward<kD, Dq::Skip>. A block owns kRows
// query rows (warp w rows 16w..16w+15, their Q and dO fragments in registers) and walks the 64-key tiles
// (double-buffered) in order, recomputing S = Q K^T and dP = dO V^T, P from lse and dS = P (dP - delta), and
// adding dQ += dS K in registers: every dq element is summed in one fixed order and written once. It repeats
// two of the key kernel's products (S, dP), the price of having no atomics. grid (ceil(Lq / kRows), batch *
// heads slice at bhOffset).
template <int kD, class T>
SELFE_KERNEL(QueryBackwardTiling<kD>::kThreads)
backwardQueries(T* dq, const T* dout, const T* q, const T* k, const T* v, const float* lse, const float* delta,
                const int32_t* keyMask, int64_t bhOffset, int64_t heads, int64_t lq, int64_t lk, float scale) {
  using S = QueryBackwardTiling<kD>;
  constexpr int kStride = S::kStride, kKeyTiles = kKeyTile / 8, kDimTiles = kD / 8;
  SELFE_SHARED_MEMORY(shared);
  uint16_t* qs = reinterpret_cast<uint16_t*>(shared);
  uint16_t* dos = qs + S::kRows * kStride;
  uint16_t* ks = dos + S::kRows * kStride;
  uint16_t* vs = ks + 2 * kKeyTile * kStride;
  float* attended = reinterpret_cast<float*>(vs + 2 * kKeyTile * kStride);  // 1 where the key takes part

  const int tid = threadIndex(), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int64_t bh = bhOffset + blockIndexY(), b = bh / heads, h = bh % heads;
  const int64_t rowStride = heads * kD;
  const int64_t firstRow = static_cast<int64_t>(blockIndexX()) * S::kRows;
  const int64_t queryBase = (b * lq * heads + h) * kD, keyBase = (b * lk * heads + h) * kD;
  const int64_t tiles = (lk + kKeyTile - 1) / kKeyTile;
  const auto loadKeys = [&](int64_t tile, int buffer) {
    loadKeyTile<kD, S::kThreads>(ks, vs, attended, k + keyBase, v + keyBase, rowStride, tile, buffer, lk, keyMask, b);
  };
  loadRows<kD, S::kRows, S::kThreads>(qs, q + queryBase, rowStride, firstRow, lq);
  loadRows<kD, S::kRows, S::kThreads>(dos, dout + queryBase, rowStride, firstRow, lq);
  if (tiles > 0) loadKeys(0, 0);
  commitAsync();

  // This lane's rows g and g + 8: lse in base 2 (+inf where every key is masked or past lq: p = 0, no
  // gradient) and delta.
  float rowLse[2], rowDelta[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t row = firstRow + warp * 16 + g + 8 * r;
    rowLse[r] = lseBase2(lse, bh, lq, row);
    rowDelta[r] = row < lq ? delta[bh * lq + row] : 0.0f;
  }

  const float scaleLog2 = scale * kLog2e;
  const LaneOffset aAt = rowsFirst(lane), bAt = colsFirst(lane);
  uint32_t qa[kD / 16][4], da[kD / 16][4];
  float acc[kDimTiles][4] = {};

  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int buffer = static_cast<int>(tile & 1);
    if (tile + 1 < tiles) loadKeys(tile + 1, buffer ^ 1);  // that buffer was released by the last blockSync
    commitAsync();
    waitAsync<1>();
    blockSync();
    if (tile == 0) {
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk) {
        ldmatrixX4(qa[kk], qs + (warp * 16 + aAt.row) * kStride + kk * 16 + aAt.col);
        ldmatrixX4(da[kk], dos + (warp * 16 + aAt.row) * kStride + kk * 16 + aAt.col);
      }
    }

    // S = Q K^T and dP = dO V^T for the warp's 16 rows and the tile's 64 keys.
    const uint16_t* kt = ks + buffer * kKeyTile * kStride;
    const uint16_t* vt = vs + buffer * kKeyTile * kStride;
    float s[kKeyTiles][4] = {}, dp[kKeyTiles][4] = {};
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk)
#pragma unroll
      for (int np = 0; np < kKeyTile / 16; ++np) {
        uint32_t bf[4];
        ldmatrixX4(bf, kt + (np * 16 + bAt.row) * kStride + kk * 16 + bAt.col);
        mma(s[2 * np], qa[kk], bf[0], bf[1]);
        mma(s[2 * np + 1], qa[kk], bf[2], bf[3]);
        ldmatrixX4(bf, vt + (np * 16 + bAt.row) * kStride + kk * 16 + bAt.col);
        mma(dp[2 * np], da[kk], bf[0], bf[1]);
        mma(dp[2 * np + 1], da[kk], bf[2], bf[3]);
      }

    // dS = P (dP - delta), P = exp2(S scale log2 e - lse log2 e); element e of an n-tile is row g + 8 (e / 2),
    // key 8 nt + 2t + e % 2. A masked key passes no gradient.
    const float* flags = attended + buffer * kKeyTile;
#pragma unroll
    for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const bool live = flags[nt * 8 + 2 * t + (e & 1)] != 0.0f;
        const float p = live ? exp2Approx(s[nt][e] * scaleLog2 - rowLse[r]) : 0.0f;
        dp[nt][e] = p * (dp[nt][e] - rowDelta[r]);
      }

    // dQ += dS K: K [key][d] is the right-hand operand [k][n], read transposed as V in the forward's P V.
#pragma unroll
    for (int kk = 0; kk < kKeyTile / 16; ++kk) {
      uint32_t dsa[4];
      scoresAsA(dsa, dp[2 * kk], dp[2 * kk + 1]);
#pragma unroll
      for (int np = 0; np < kD / 16; ++np) {
        uint32_t bf[4];
        ldmatrixX4Trans(bf, kt + (kk * 16 + aAt.row) * kStride + np * 16 + aAt.col);
        mma(acc[2 * np], dsa, bf[0], bf[1]);
        mma(acc[2 * np + 1], dsa, bf[2], bf[3]);
      }
    }
    blockSync();  // every warp is done with this buffer before the next prefetch overwrites it
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t row = firstRow + warp * 16 + g + 8 * r;
    if (row >= lq) continue;
    T* dqRow = dq + queryBase + row * rowStride + 2 * t;
#pragma unroll
    for (int nt = 0; nt < kDimTiles; ++nt) storePair(dqRow + nt * 8, scale * acc[nt][2 * r], scale * acc[nt][2 * r + 1]);
  }
}

}  // namespace selfe::cuda::flash
