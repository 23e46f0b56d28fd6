// Attention on warpgroup tensor cores (sm_90a wgmma), bf16 storage: the forward and the backward's key kernel
// (head dims 64 and 128) that the device option attentionKernels "auto" runs on an sm_90 GPU (attention.cu).
// Same contracts as attention_mma.cuh's forward and Dq::Atomic backward (softmax in base 2, lse stored in natural
// log, masked and missing keys out, a row with no key attended gives zeros and lse -inf); the forward's running
// max is lazy (rescaleRow with kLazyMax) and it needs a positive scale.
//
// Forward (head dims 64 and 128): a block is kGroups warpgroups over kGroups * 64 query rows; warpgroup w owns
// rows 64w..64w+63 of the block's.
// Q, K and V tiles sit in shared memory 128-byte swizzled (wgmma.cuh), K and V double-buffered through cp.async
// in 64-key tiles. Per tile: S = Q K^T as kD / 16 wgmma m64n64k16 with both operands from shared memory (Q and K
// K-major), the online softmax on the accumulators, then O += P V as 4 wgmma m64n{kD}k16 with P from registers
// (the S accumulators of two 8-key n-tiles are the A fragment of one 16-key k-step) and V read MN-major (its rows
// as stored). As in FlashAttention-3, S of tile j and P V of tile j - 1 are issued together and tile j's softmax
// is meant to run while the latter does; but ptxas puts the wait for P V ahead of the softmax's 2^x (the SASS on
// the H200), so only the row maxima overlap it, and the tensor cores are kept busy by the SM's other block. There
// is no producer warpgroup or TMA.
#pragma once
#include <cmath>
#include <cstdint>

#include "attention_mma.cuh"
#include "wgmma.cuh"

namespace selfe::cuda::flash {

// A swizzled tile holds 64 rows of kD bf16 as kD / 64 column blocks, each 64 rows of 128 bytes (8 KB).
constexpr int kColumnBlockBytes = 64 * 128;

template <int kHeadDim>
struct WgmmaForwardTiling {
  static_assert(kHeadDim == 64 || kHeadDim == 128, "wgmma forward at head dims 64 and 128");
  static constexpr int kD = kHeadDim;
  static constexpr int kGroups = 2;  // warpgroups a block: both read each K and V tile
  static constexpr int kThreads = kGroups * wgmma::kWarpgroupThreads;
  // At head dim 64, two blocks an SM (so 128 registers a thread at most): while one block's warpgroups run their
  // softmax, the other's wgmma keep the tensor cores busy.
  static constexpr int kMinBlocks = kHeadDim == 64 ? 2 : 1;
  static constexpr int kRows = kGroups * 64;
  static constexpr int kKeys = 64;                                // keys a tile
  static constexpr int kTileBytes = kD / 64 * kColumnBlockBytes;  // 64 rows of kD bf16
  // Q [kGroups] tiles, K and V [2] tiles each, [2][kKeys] key flags, and 1024 bytes to put the tiles on 1024.
  static constexpr int kShared = (kGroups + 4) * kTileBytes + 2 * kKeys * 4 + 1024;
};

// Starts the copies of rows [start, start + 64) of one (batch, head) slice (row r at base + r * rowStride; zero
// at or past `length`) into a swizzled tile of 64 rows of kD bf16: 16-byte chunk c of a row goes to column
// block c / 8, chunk c % 8 of that block's 128-byte row, swizzled. The trip count is a constant, so the loop
// unrolls without the remainder handling a strided loop compiles to (an issue-bound forward's instructions).
template <int kD, int kThreads, class T>
SELFE_DEVICE void loadSwizzledRows(unsigned char* tile, const T* base, int64_t rowStride, int64_t start, int64_t length) {
  constexpr int kChunks = kD / 8;
  static_assert(64 * kChunks % kThreads == 0, "a whole number of 16-byte chunks a thread");
#pragma unroll
  for (int i = 0; i < 64 * kChunks / kThreads; ++i) {
    const int e = threadIndex() + i * kThreads;
    const int r = e / kChunks, c = e % kChunks;
    const int64_t position = start + r;
    const bool inside = position < length;
    copyAsync16(tile + (c / 8) * kColumnBlockBytes + wgmma::swizzled128(r, c % 8), inside ? base + position * rowStride + c * 8 : base,
                inside);
  }
}

// The forward's lazy running max (rescaleRow's margin, base 2): a p stays at most 2^8 = 256, no overflow in bf16
// or the f32 sums.
constexpr float kLazyMax = 8.0f;

// out [B, Lq, H, kD], lse [B, H, Lq]; grid (ceil(Lq / kRows), batch * heads slice at bhOffset).
template <int kHeadDim, class T>
SELFE_KERNEL(WgmmaForwardTiling<kHeadDim>::kThreads, WgmmaForwardTiling<kHeadDim>::kMinBlocks)
forwardWgmma(T* out, float* lse, const T* q, const T* k, const T* v, const int32_t* keyMask, int64_t bhOffset,
             int64_t heads, int64_t lq, int64_t lk, float scale) {
  using S = WgmmaForwardTiling<kHeadDim>;
  constexpr int kD = S::kD, kKeyTiles = S::kKeys / 8, kDimTiles = kD / 8, kTile = S::kTileBytes;
  SELFE_SHARED_MEMORY(shared);
  // The swizzle works on shared-space address bits, so every tile starts on 1024 bytes of that space.
  unsigned char* qs = shared + ((1024 - (wgmma::sharedAddress(shared) & 1023)) & 1023);
  unsigned char* ks = qs + S::kGroups * kTile;
  unsigned char* vs = ks + 2 * kTile;
  float* attended = reinterpret_cast<float*>(vs + 2 * kTile);  // 1 where the key takes part

  const int tid = threadIndex(), group = tid / wgmma::kWarpgroupThreads, warp = (tid / 32) % 4;
  const int lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int64_t bh = bhOffset + blockIndexY(), b = bh / heads, h = bh % heads;
  const int64_t rowStride = heads * kD;
  const int64_t firstRow = static_cast<int64_t>(blockIndexX()) * S::kRows;
  const T* kBase = k + (b * lk * heads + h) * kD;
  const T* vBase = v + (b * lk * heads + h) * kD;
  const int64_t tiles = (lk + S::kKeys - 1) / S::kKeys;
  // K tile `tile` (and its key flags) and V tile `tile` go to buffer tile % 2 of their own, on different schedules:
  // at the start of tile j, K tile j + 1 and V tile j are copied (below).
  const auto loadK = [&](int64_t tile) {
    const int buffer = static_cast<int>(tile & 1);
    loadSwizzledRows<kD, S::kThreads>(ks + buffer * kTile, kBase, rowStride, tile * S::kKeys, lk);
    if (tid < S::kKeys) attended[buffer * S::kKeys + tid] = keyAttended(keyMask, b, lk, tile * S::kKeys + tid) ? 1.0f : 0.0f;
  };
  const auto loadV = [&](int64_t tile) {
    loadSwizzledRows<kD, S::kThreads>(vs + (tile & 1) * kTile, vBase, rowStride, tile * S::kKeys, lk);
  };
  for (int w = 0; w < S::kGroups; ++w)
    loadSwizzledRows<kD, S::kThreads>(qs + w * kTile, q + (b * lq * heads + h) * kD, rowStride, firstRow + 64 * w, lq);
  if (tiles > 0) loadK(0);
  commitAsync();

  // Softmax in base 2 with the scale folded into one fma a score: the kernel runs only for scale > 0 (attention.cu),
  // so a row's largest raw score is its largest scaled one.
  const float scaleLog2 = scale * kLog2e;
  const unsigned char* qTile = qs + group * kTile;
  // Output accumulators (register 4 nt + e: row g + 8 (e / 2) of the warp's 16, dim 8 nt + 2t + e % 2) and, for
  // rows g and g + 8, the running max (base 2) and partial sum.
  float o[4 * kDimTiles] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  // Register 4 nt + e of S: row g + 8 (e / 2), key 8 nt + 2t + e % 2 of the tile.
  using Scores = float[4 * kKeyTiles];
  // P of a tile as the A fragments of its O += P V (k-step kk: keys 16 kk..16 kk + 15).
  using Probabilities = uint32_t[S::kKeys / 16][4];

  // The start of tile `tile`: its K (and V tile - 1) landed and visible to all, every warpgroup done with the
  // tile before (S of tile - 1 and O += P V of tile - 2 retired), so K tile + 1 and V tile go to those buffers.
  const auto beginTile = [&](int64_t tile) {
    waitAsync<0>();  // the copies of the tile before's start, the only ones in flight
    wgmma::fenceProxyAsync();
    blockSync();
    if (tile + 1 < tiles) loadK(tile + 1);
    loadV(tile);
    commitAsync();
  };
  // S = Q K^T of the tile in K buffer `buffer`: k-steps of 16 dims, each 32 bytes further along a column
  // block's swizzled rows; the first k-step overwrites `scores` (so they need no zeros). Committed, not waited for.
  const auto issueScores = [&](Scores& scores, int buffer) {
    const unsigned char* kt = ks + buffer * kTile;
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      const int at = (kk / 4) * kColumnBlockBytes + 32 * (kk % 4);
      wgmma::Mma<64>::shared<false, false>(scores, wgmma::descriptor(qTile + at, 16, 1024), wgmma::descriptor(kt + at, 16, 1024),
                                           kk > 0 ? 1 : 0);
    }
    wgmma::commit();
  };
  // O += P V of the tile in V buffer `buffer`: k-step kk is keys 16 kk..16 kk + 15, rows 2048 bytes further; V's
  // dims 64 at a time in column blocks, the leading byte offset apart (unused at head dim 64, where it is set like
  // the stride, so that either reading of the two offsets' roles gives the same product). Committed, not waited
  // for: `p` must not change until it retires.
  const auto issueValues = [&](const Probabilities& p, int buffer) {
    const unsigned char* vt = vs + buffer * kTile;
    constexpr uint32_t kNextDims = kD == 64 ? 1024 : kColumnBlockBytes;
    wgmma::fenceRegisters(o);
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < S::kKeys / 16; ++kk)
      wgmma::Mma<kD>::template registers<true>(o, p[kk], wgmma::descriptor(vt + 2048 * kk, kNextDims, 1024), 1);
    wgmma::commit();
  };
  // O's rows times the factors the last softmax returned, before the next O += P V adds to them; skipped by a
  // warp where every factor is 1 (most tiles, kLazyMax).
  const auto rescaleOutput = [&](const float (&alpha)[2]) {
    if (!anyInWarp(alpha[0] != 1.0f || alpha[1] != 1.0f)) return;
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
      for (int nt = 0; nt < kDimTiles; ++nt) {
        o[4 * nt + 2 * r] *= alpha[r];
        o[4 * nt + 2 * r + 1] *= alpha[r];
      }
  };
  // The online softmax of tile `tile`'s retired raw scores: m and l move on, P goes to `p`; returns in `alpha` the
  // factor for each row's earlier output, applied before the tile's O += P V.
  const auto softmax = [&](Scores& scores, int64_t tile, Probabilities& p, float (&alpha)[2]) {
    const float* flags = attended + (tile & 1) * S::kKeys;
    const bool partial = keyMask != nullptr || (tile + 1) * S::kKeys > lk;
    float tileMax[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (partial && flags[nt * 8 + 2 * t + (e & 1)] == 0.0f) scores[4 * nt + e] = -INFINITY;
        tileMax[e >> 1] = fmaxf(tileMax[e >> 1], scores[4 * nt + e]);
      }
    float base[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) alpha[r] = rescaleRow(tileMax[r] * scaleLog2, m[r], l[r], base[r], kLazyMax);
#pragma unroll
    for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        scores[4 * nt + e] = exp2Approx(fmaf(scores[4 * nt + e], scaleLog2, -base[e >> 1]));
        l[e >> 1] += scores[4 * nt + e];
      }
    // n-tiles 2 kk and 2 kk + 1 (registers 8 kk..8 kk + 7) as the A fragment of k-step kk (scoresAsA's packing).
#pragma unroll
    for (int kk = 0; kk < S::kKeys / 16; ++kk)
#pragma unroll
      for (int i = 0; i < 4; ++i) p[kk][i] = packBf16x2(scores[8 * kk + 2 * i], scores[8 * kk + 2 * i + 1]);
  };

  // FlashAttention-3's overlap within a warpgroup: at tile j, S of tile j and O += P V of tile j - 1 are issued
  // together (O rescaled in between, while S runs), and tile j's softmax runs while the latter does. Tile 0 has
  // no O += P V before it: it is the loop's first turn written out, so that no wgmma and its wait sit under a
  // condition (ptxas would serialize the kernel's wgmma: test/kernels/ptxasReport.test.ts).
  Probabilities p;
  float alpha[2] = {1.0f, 1.0f};
  if (tiles > 0) {
    beginTile(0);
    Scores scores;
    issueScores(scores, 0);
    wgmma::wait<0>();
    wgmma::fenceRegisters(scores);
    softmax(scores, 0, p, alpha);  // o is still zero: alpha has nothing to scale
  }
  for (int64_t tile = 1; tile < tiles; ++tile) {
    const int buffer = static_cast<int>(tile & 1);
    beginTile(tile);
    Scores scores;
    issueScores(scores, buffer);
    rescaleOutput(alpha);
    issueValues(p, buffer ^ 1);
    wgmma::wait<1>();
    wgmma::fenceRegisters(scores);
    Probabilities next;
    softmax(scores, tile, next, alpha);
    wgmma::fenceRegisters(next);  // the softmax ahead of the wait in nvcc's output (ptxas moves the wait up: above)
    wgmma::wait<0>();
    wgmma::fenceRegisters(o);
    // Without it, nvcc writes the next P into this P's registers while O += P V still reads them (and ptxas then
    // serializes every wgmma: C7513).
    wgmma::fenceRegisters(p);
#pragma unroll
    for (int kk = 0; kk < S::kKeys / 16; ++kk)
#pragma unroll
      for (int i = 0; i < 4; ++i) p[kk][i] = next[kk][i];
  }
  if (tiles > 0) {
    waitAsync<0>();  // the last V tile
    wgmma::fenceProxyAsync();
    blockSync();
    rescaleOutput(alpha);
    issueValues(p, static_cast<int>((tiles - 1) & 1));
    wgmma::wait<0>();
    wgmma::fenceRegisters(o);
  }

  T* outBase = out + (b * lq * heads + h) * kD;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const RowEnd end = endRow(l[r], m[r]);
    const int64_t row = firstRow + 64 * group + 16 * warp + g + 8 * r;
    if (row >= lq) continue;
#pragma unroll
    for (int nt = 0; nt < kDimTiles; ++nt)
      storePair(outBase + row * rowStride + nt * 8 + 2 * t, o[4 * nt + 2 * r] * end.inverse, o[4 * nt + 2 * r + 1] * end.inverse);
    if (t == 0) lse[bh * lq + row] = end.lse;
  }
}


template <int kHeadDim>
struct WgmmaBackwardTiling {
  static_assert(kHeadDim == 64 || kHeadDim == 128, "wgmma backward at head dims 64 and 128");
  static constexpr int kD = kHeadDim;
  static constexpr int kGroups = 2;  // warpgroups a block, 64 keys each
  static constexpr int kThreads = kGroups * wgmma::kWarpgroupThreads;
  static constexpr int kKeys = kGroups * 64;
  static constexpr int kQueries = 64;                             // queries a tile
  static constexpr int kTileBytes = kD / 64 * kColumnBlockBytes;  // 64 rows of kD bf16
  static constexpr int kScoreTileBytes = kColumnBlockBytes;        // 64 keys' rows of kQueries bf16 (dS^T)
  static constexpr int kDqDims = kD / kGroups;                    // dQ's head-dim columns a warpgroup adds
  // K, V [kKeys] rows, Q, dO [2][kQueries] rows, dS^T [2][kKeys] rows of kQueries, all 128-byte swizzled; lse,
  // delta [2][kQueries] floats; and 1024 bytes to put the tiles on 1024.
  static constexpr int kShared = (2 * kGroups + 4) * kTileBytes + 2 * kGroups * kScoreTileBytes + 4 * 4 * kQueries + 1024;
};

// The key side of attention's backward at head dims 64 and 128 on warpgroup tensor cores, dq added unscaled with
// atomics into an f32 workspace (flash::backward's Dq::Atomic contract: dk, dv written; dqAccum [B, Lq, H, kD] +=;
// grid (ceil(Lk / kKeys), batch * heads slice at bhOffset)). Warpgroup w owns keys 64w..64w+63 of the block's 128
// and walks the 64-query tiles: S^T = K Q^T and dP^T = V dO^T (wgmma, operands in shared memory), P^T from lse and
// dS^T = P^T (dP^T - delta) in registers, dV += P^T dO and dK += dS^T Q (A from registers, dO and Q read
// MN-major); dS^T goes to shared memory, and warpgroup w adds dQ's head-dim columns kDqDims w..kDqDims (w + 1) - 1
// = dS K over all 128 keys (dS read MN-major from dS^T, K MN-major), one m64n{kDqDims} product chain a tile. A
// tile's chain is issued at the start of the next tile (so dS^T is double-buffered: a tile writes the buffer the
// tile before last read); at head dim 64 its atomics go out while that tile's S^T and dP^T run, at 128 before
// them (kOverlapDq), where S^T and dP^T also come in two parts of 32 queries (kParts).
template <int kHeadDim, class T>
SELFE_KERNEL(WgmmaBackwardTiling<kHeadDim>::kThreads, 1)
backwardWgmma(T* dk, T* dv, float* dqAccum, const T* dout, const T* q, const T* k, const T* v, const float* lse,
              const float* delta, const int32_t* keyMask, int64_t bhOffset, int64_t heads, int64_t lq, int64_t lk,
              float scale) {
  using S = WgmmaBackwardTiling<kHeadDim>;
  constexpr int kD = S::kD, kQ = S::kQueries, kTile = S::kTileBytes, kDimTiles = kD / 8;
  constexpr int kScores = S::kScoreTileBytes, kDqDims = S::kDqDims;
  // Whether a tile's dQ atomics go out while the next tile's S^T and dP^T run. At head dim 128 the dQ accumulators
  // would then be live beside S^T, dP^T, dK and dV (224 floats): ptxas spilled at the 255-register cap. There the
  // chain is waited for and its atomics sent before S^T and dP^T are issued.
  constexpr bool kOverlapDq = kD == 64;
  // A tile's S^T and dP^T are computed in kParts parts of kPartQueries queries, each part's dV and dK products
  // issued before the next part's S^T and dP^T: at head dim 128 whole ones (64 floats) beside dK and dV (128) and
  // the A fragments still in flight spilled too.
  constexpr int kParts = kD == 64 ? 1 : 2, kPartQueries = kQ / kParts, kPartTiles = kPartQueries / 8, kPartSteps = kPartQueries / 16;
  SELFE_SHARED_MEMORY(shared);
  unsigned char* ks = shared + ((1024 - (wgmma::sharedAddress(shared) & 1023)) & 1023);  // on 1024, as forwardWgmma
  unsigned char* vs = ks + S::kGroups * kTile;
  unsigned char* qs = vs + S::kGroups * kTile;    // [2]
  unsigned char* dos = qs + 2 * kTile;            // [2]
  unsigned char* dss = dos + 2 * kTile;           // dS^T [2], [key][query]
  float* lses = reinterpret_cast<float*>(dss + 2 * S::kGroups * kScores);  // [2][kQ], base 2, +inf: no gradient
  float* deltas = lses + 2 * kQ;                                        // [2][kQ]

  const int tid = threadIndex(), group = tid / wgmma::kWarpgroupThreads, warp = (tid / 32) % 4;
  const int lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int64_t bh = bhOffset + blockIndexY(), b = bh / heads, h = bh % heads;
  const int64_t rowStride = heads * kD;
  const int64_t firstKey = static_cast<int64_t>(blockIndexX()) * S::kKeys;
  const int64_t queryBase = (b * lq * heads + h) * kD, keyBase = (b * lk * heads + h) * kD;
  const int64_t tiles = (lq + kQ - 1) / kQ;
  const auto loadQueries = [&](int64_t tile, int buffer) {
    loadSwizzledRows<kD, S::kThreads>(qs + buffer * kTile, q + queryBase, rowStride, tile * kQ, lq);
    loadSwizzledRows<kD, S::kThreads>(dos + buffer * kTile, dout + queryBase, rowStride, tile * kQ, lq);
    loadQueryStats<kQ>(lses + buffer * kQ, deltas + buffer * kQ, lse, delta, bh, lq, tile);
  };
  for (int w = 0; w < S::kGroups; ++w) {
    loadSwizzledRows<kD, S::kThreads>(ks + w * kTile, k + keyBase, rowStride, firstKey + 64 * w, lk);
    loadSwizzledRows<kD, S::kThreads>(vs + w * kTile, v + keyBase, rowStride, firstKey + 64 * w, lk);
  }
  if (tiles > 0) loadQueries(0, 0);
  commitAsync();

  const float scaleLog2 = scale * kLog2e;
  // This thread's accumulator rows: keys 64 group + 16 warp + g + 8 r of the block's, and whether each takes part.
  const int rowKey = 64 * group + 16 * warp + g;
  bool live[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) live[r] = keyAttended(keyMask, b, lk, firstKey + rowKey + 8 * r);
  const unsigned char* kOwn = ks + group * kTile;
  const unsigned char* vOwn = vs + group * kTile;
  float dkAcc[4 * kDimTiles] = {}, dvAcc[4 * kDimTiles] = {};
  // dQ columns kDqDims group.. of query tile `tile` = dS K over the block's 128 keys (k-step kk: keys 16 kk..16 kk
  // + 15, rows 16 (kk % 4) of K tile kk / 4) into dqTile, and their atomics once retired. Register 4 nt + e: query
  // 16 warp + g + 8 (e / 2) of the tile, dim kDqDims group + 8 nt + 2t + e % 2.
  float dqTile[4 * (kDqDims / 8)];
  const auto issueDq = [&](int64_t tile) {
    // 64 bytes into the rows at head dim 64, column block `group` at 128 (written per case: a general modulo
    // form changed the d = 64 kernel's schedule).
    const unsigned char* kDqColumns = ks + (kD == 64 ? 2 * kDqDims * group : group * kColumnBlockBytes);
    const unsigned char* dst = dss + (tile & 1) * S::kGroups * kScores;  // tile -1: buffer 1
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < S::kKeys / 16; ++kk)
      wgmma::Mma<kDqDims>::template shared<true, true>(dqTile, wgmma::descriptor(dst + 2048 * kk, 1024, 1024),
                                                       wgmma::descriptor(kDqColumns + (kk / 4) * kTile + 2048 * (kk % 4), 1024, 1024),
                                                       kk > 0 ? 1 : 0);
    wgmma::commit();
  };
  const auto addDq = [&](int64_t tile) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int64_t i = tile * kQ + 16 * warp + g + 8 * r;
      if (i >= lq) continue;
      float* row = dqAccum + queryBase + i * rowStride + kDqDims * group + 2 * t;
#pragma unroll
      for (int nt = 0; nt < kDqDims / 8; ++nt) atomicAddF32x2(row + 8 * nt, dqTile[4 * nt + 2 * r], dqTile[4 * nt + 2 * r + 1]);
    }
  };

  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int buffer = static_cast<int>(tile & 1);
    waitAsync<0>();  // this tile's copies, the only ones in flight
    wgmma::fenceProxyAsync();
    // The tile's q, dout, lse and delta have landed, and every thread is done with the tile before: its dS^T is
    // whole, and the other buffer is free for the prefetch.
    blockSync();
    if (tile + 1 < tiles) {
      loadQueries(tile + 1, buffer ^ 1);
      commitAsync();
    }
    const unsigned char* qt = qs + buffer * kTile;
    const unsigned char* dot = dos + buffer * kTile;
    const float* tileLse = lses + buffer * kQ;
    const float* tileDelta = deltas + buffer * kQ;

    // The tile before's dQ chain first, then S^T = K Q^T and dP^T = V dO^T for the warpgroup's keys (kD / 16
    // k-steps of 16 dims, each 32 bytes further along a column block's swizzled rows; all operands K-major); at head
    // dim 64 the dQ atomics go out while S^T and dP^T are computed. At the first tile the chain and its wait run
    // too, on the unwritten buffer, their result unused: with both under a condition, ptxas serializes every wgmma
    // of the kernel (C7514, test/kernels/ptxasReport.test.ts).
    issueDq(tile - 1);
    if constexpr (!kOverlapDq) {
      wgmma::wait<0>();
      wgmma::fenceRegisters(dqTile);
      if (tile > 0) addDq(tile - 1);
    }
    // Each part's P^T and dS^T as the A fragments of its dV and dK products (k-step kk: queries 16 kk.. of the part).
    uint32_t pa[kParts][kPartSteps][4], da[kParts][kPartSteps][4];
#pragma unroll
    for (int part = 0; part < kParts; ++part) {
      // The part's queries: rows kPartQueries part.. of the Q and dO tiles, 128 bytes a row in each column block.
      const int partRows = kPartQueries * part * 128;
      float s[4 * kPartTiles], dp[4 * kPartTiles];  // the first k-step overwrites them
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk) {
        const int at = (kk / 4) * kColumnBlockBytes + 32 * (kk % 4);
        wgmma::Mma<kPartQueries>::template shared<false, false>(s, wgmma::descriptor(kOwn + at, 16, 1024),
                                                                wgmma::descriptor(qt + partRows + at, 16, 1024), kk > 0 ? 1 : 0);
      }
#pragma unroll
      for (int kk = 0; kk < kD / 16; ++kk) {
        const int at = (kk / 4) * kColumnBlockBytes + 32 * (kk % 4);
        wgmma::Mma<kPartQueries>::template shared<false, false>(dp, wgmma::descriptor(vOwn + at, 16, 1024),
                                                                wgmma::descriptor(dot + partRows + at, 16, 1024), kk > 0 ? 1 : 0);
      }
      wgmma::commit();
      if constexpr (kOverlapDq) {
        wgmma::wait<1>();
        wgmma::fenceRegisters(dqTile);
        if (tile > 0) addDq(tile - 1);
      }
      // Also retires the part before's dV and dK products, which ran beside these: their A fragments stay live (so
      // unshared with the values computed meanwhile) until here.
      wgmma::wait<0>();
      wgmma::fenceRegisters(s);
      wgmma::fenceRegisters(dp);
      if (part > 0) {
        wgmma::fenceRegisters(pa[part - 1]);
        wgmma::fenceRegisters(da[part - 1]);
        wgmma::fenceRegisters(dvAcc);
        wgmma::fenceRegisters(dkAcc);
      }

      // P^T = exp2(S^T scale log2 e - lse log2 e), dS^T = P^T (dP^T - delta); register 4 nt + e: key row
      // g + 8 (e / 2), query kPartQueries part + 8 nt + 2t + e % 2 of the tile. A masked key passes no gradient.
#pragma unroll
      for (int nt = 0; nt < kPartTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = kPartQueries * part + nt * 8 + 2 * t + (e & 1);
          const float p = live[e >> 1] ? exp2Approx(s[4 * nt + e] * scaleLog2 - tileLse[col]) : 0.0f;
          s[4 * nt + e] = p;
          dp[4 * nt + e] = p * (dp[4 * nt + e] - tileDelta[col]);
        }
      // Query n-tiles 2 kk and 2 kk + 1 of the part as the A fragments of its k-step kk.
#pragma unroll
      for (int kk = 0; kk < kPartSteps; ++kk)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          pa[part][kk][i] = packBf16x2(s[8 * kk + 2 * i], s[8 * kk + 2 * i + 1]);
          da[part][kk][i] = packBf16x2(dp[8 * kk + 2 * i], dp[8 * kk + 2 * i + 1]);
        }

      // dV += P^T dO and dK += dS^T Q: k-step kk of the part is queries kPartQueries part + 16 kk.., rows 2048
      // bytes further; dO's and Q's dims 64 at a time in column blocks, the leading byte offset apart (as
      // forwardWgmma's O += P V reads V).
      constexpr uint32_t kNextDims = kD == 64 ? 1024 : kColumnBlockBytes;
      wgmma::fenceRegisters(dvAcc);
      wgmma::fenceRegisters(dkAcc);
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < kPartSteps; ++kk)
        wgmma::Mma<kD>::template registers<true>(dvAcc, pa[part][kk], wgmma::descriptor(dot + partRows + 2048 * kk, kNextDims, 1024), 1);
#pragma unroll
      for (int kk = 0; kk < kPartSteps; ++kk)
        wgmma::Mma<kD>::template registers<true>(dkAcc, da[part][kk], wgmma::descriptor(qt + partRows + 2048 * kk, kNextDims, 1024), 1);
      wgmma::commit();

      // dS^T to its buffer while those run: key row rowKey + 8 r, queries 8 nt + 2t and + 1 of the part (chunk
      // kPartTiles part + nt). At head dim 128 taken from the packed A fragments (register 2 (nt % 2) + r of
      // k-step nt / 2), so that dP^T's floats die at the packing; at 64 packed again from them, which keeps that
      // kernel's SASS as it was measured on the H200 (the same instructions in the same order). The buffer's last
      // readers, the dQ chains of the tile before last, retired before this tile's blockSync.
      unsigned char* dst = dss + buffer * S::kGroups * kScores;
#pragma unroll
      for (int nt = 0; nt < kPartTiles; ++nt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int row = rowKey + 8 * r;
          const uint32_t ds = kParts == 1 ? packBf16x2(dp[4 * nt + 2 * r], dp[4 * nt + 2 * r + 1]) : da[part][nt / 2][2 * (nt % 2) + r];
          *reinterpret_cast<uint32_t*>(dst + wgmma::swizzled128(row, kPartTiles * part + nt) + 4 * t) = ds;
        }
    }
    wgmma::wait<0>();
    wgmma::fenceRegisters(dvAcc);
    wgmma::fenceRegisters(dkAcc);
  }
  if (tiles > 0) {
    wgmma::fenceProxyAsync();
    blockSync();  // the last tile's dS^T is whole
    issueDq(tiles - 1);
    wgmma::wait<0>();
    wgmma::fenceRegisters(dqTile);
    addDq(tiles - 1);
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t j = firstKey + rowKey + 8 * r;
    if (j >= lk) continue;
    T* dkRow = dk + keyBase + j * rowStride + 2 * t;
    T* dvRow = dv + keyBase + j * rowStride + 2 * t;
#pragma unroll
    for (int nt = 0; nt < kDimTiles; ++nt) {
      storePair(dkRow + nt * 8, scale * dkAcc[4 * nt + 2 * r], scale * dkAcc[4 * nt + 2 * r + 1]);
      storePair(dvRow + nt * 8, dvAcc[4 * nt + 2 * r], dvAcc[4 * nt + 2 * r + 1]);
    }
  }
}

}  // namespace selfe::cuda::flash
