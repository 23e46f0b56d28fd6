// The wgmma products the attention kernels use, each alone in a one-warpgroup kernel, with a float64 reference:
// run on the CPU emulator by test/native/cuda_emu/driver.cpp (family "wgmma") and on a GPU by
// test/native/wgmma_check.cu (scripts/gpu-check.sh). The emulator's wgmma and the kernels share one reading of
// the PTX ISA; these cases are where a GPU says whether that reading is right, product by product:
//   kMajor:     D[64][64] = A B^T, A [m][k] and B [n][k] from shared memory, both K-major (S = Q K^T; S^T, dP^T);
//   mnMajorN32: D[64][32] = A^T B[:, 32:64], A [k][m] and B [k][n] from shared memory, both MN-major, B's
//               descriptor 64 bytes into its rows (dQ = dS K, a warpgroup's half of the head dims);
//   registers:  D[64][64] = A B, A [m][k] from registers, B [k][n] MN-major (O += P V at head dim 64; dV, dK);
//   registersN128: the same with B [k][128], its columns 64..127 a column block further, the descriptor's leading
//               byte offset apart (O += P V at head dim 128).
// Inputs are row-major bf16 in global memory: A 64 x 64, B 64 x columns(c); K = 64 (4 k-steps); D is written
// row-major f32.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "cuda/attention_wgmma.cuh"
#include "cuda/mma_fragments.cuh"
#include "cuda/wgmma.cuh"
#include "selfe/dtype.h"

namespace selfe::wgmma_check {

enum class Case { kMajor, mnMajorN32, registers, registersN128 };
constexpr Case kCases[] = {Case::kMajor, Case::mnMajorN32, Case::registers, Case::registersN128};
constexpr int kTileBytes = cuda::flash::kColumnBlockBytes;  // a swizzled column block: 64 rows of 64 bf16
constexpr int kShared = 3 * kTileBytes + 1024;  // A's block, B's one or two, and room to put them on 1024

inline const char* name(Case c) {
  return c == Case::kMajor ? "wgmma m64n64k16, A and B K-major from shared memory"
         : c == Case::mnMajorN32 ? "wgmma m64n32k16, A and B MN-major from shared memory, B 64 bytes into its rows"
         : c == Case::registers  ? "wgmma m64n64k16, A from registers, B MN-major"
                                 : "wgmma m64n128k16, A from registers, B MN-major in two column blocks";
}
// D's columns, and B's (A is always 64 x 64).
inline int columns(Case c) { return c == Case::mnMajorN32 ? 32 : c == Case::registersN128 ? 128 : 64; }
inline int bColumns(Case c) { return c == Case::registersN128 ? 128 : 64; }

// Copies a row-major 64 x kColumns bf16 matrix into swizzled column blocks of 64, with the attention kernels'
// loader (cp.async), and waits for it; the caller fences and syncs.
template <int kColumns>
SELFE_DEVICE void toTile(unsigned char* tile, const uint16_t* matrix) {
  cuda::flash::loadSwizzledRows<kColumns, cuda::wgmma::kWarpgroupThreads>(tile, matrix, kColumns, 0, 64);
  cuda::commitAsync();
  cuda::waitAsync<0>();
}

// Row-major D from this thread's accumulators (register 4j + e: row 16 warp + g + 8 (e / 2), column 8j + 2t + e % 2).
template <int kN>
SELFE_DEVICE void store(float* d, const float (&acc)[kN / 2]) {
  const int tid = cuda::threadIndex(), warp = tid / 32, g = (tid % 32) / 4, t = tid % 4;
  for (int i = 0; i < kN / 2; ++i) d[(16 * warp + g + 8 * ((i % 4) / 2)) * kN + 8 * (i / 4) + 2 * t + i % 2] = acc[i];
}

// One block of 128 threads; a and b as the case says, d [64][columns(c)].
template <Case kCase>
SELFE_KERNEL(cuda::wgmma::kWarpgroupThreads, 1)
product(float* d, const uint16_t* a, const uint16_t* b) {
  namespace wg = cuda::wgmma;
  SELFE_SHARED_MEMORY(shared);
  unsigned char* aTile = shared + ((1024 - (wg::sharedAddress(shared) & 1023)) & 1023);
  unsigned char* bTile = aTile + kTileBytes;
  constexpr bool kFromRegisters = kCase == Case::registers || kCase == Case::registersN128;
  if (!kFromRegisters) toTile<64>(aTile, a);
  toTile<kCase == Case::registersN128 ? 128 : 64>(bTile, b);
  wg::fenceProxyAsync();
  cuda::blockSync();
  if constexpr (kCase == Case::kMajor) {
    float acc[32] = {};
    wg::fence();
    for (int kk = 0; kk < 4; ++kk)
      wg::Mma<64>::shared<false, false>(acc, wg::descriptor(aTile + 32 * kk, 16, 1024), wg::descriptor(bTile + 32 * kk, 16, 1024), kk > 0);
    wg::commit();
    wg::wait<0>();
    wg::fenceRegisters(acc);
    store<64>(d, acc);
  } else if constexpr (kCase == Case::mnMajorN32) {
    float acc[16] = {};
    wg::fence();
    for (int kk = 0; kk < 4; ++kk)
      wg::Mma<32>::shared<true, true>(acc, wg::descriptor(aTile + 2048 * kk, 1024, 1024), wg::descriptor(bTile + 2048 * kk + 64, 1024, 1024),
                                      kk > 0);
    wg::commit();
    wg::wait<0>();
    wg::fenceRegisters(acc);
    store<32>(d, acc);
  } else {
    constexpr int kN = kCase == Case::registersN128 ? 128 : 64;
    // A's fragment of k-step kk for warp w: rows 16w + g (+ 8), columns 16 kk + 2t (+ 1, + 8, + 9).
    const int tid = cuda::threadIndex(), warp = tid / 32, g = (tid % 32) / 4, t = tid % 4;
    uint32_t frag[4][4];
    for (int kk = 0; kk < 4; ++kk)
      for (int i = 0; i < 4; ++i) {
        const int row = 16 * warp + g + 8 * (i % 2), col = 16 * kk + 2 * t + 8 * (i / 2);
        frag[kk][i] = static_cast<uint32_t>(a[row * 64 + col]) | static_cast<uint32_t>(a[row * 64 + col + 1]) << 16;
      }
    float acc[kN / 2] = {};
    wg::fence();
    for (int kk = 0; kk < 4; ++kk)
      wg::Mma<kN>::template registers<true>(acc, frag[kk], wg::descriptor(bTile + 2048 * kk, kN == 64 ? 1024 : kTileBytes, 1024), kk > 0);
    wg::commit();
    wg::wait<0>();
    wg::fenceRegisters(acc);
    store<kN>(d, acc);
  }
}

// The product in float64 from the same bf16 inputs (as floats).
inline std::vector<double> expected(Case c, const std::vector<float>& a, const std::vector<float>& b) {
  const int n = columns(c);
  std::vector<double> d(static_cast<size_t>(64) * n, 0.0);
  for (int m = 0; m < 64; ++m)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < 64; ++k) {
        const double av = c == Case::mnMajorN32 ? a[k * 64 + m] : a[m * 64 + k];
        const double bv = c == Case::kMajor ? b[j * 64 + k] : c == Case::mnMajorN32 ? b[k * 64 + 32 + j] : b[k * bColumns(c) + j];
        d[static_cast<size_t>(m) * n + j] += av * bv;
      }
  return d;
}

// Whether `actual` matches (f32 sums of exact bf16 products: 1e-4 of the largest |D| is ample); prints why not.
inline bool matches(Case c, const std::vector<double>& want, const float* actual) {
  double scale = 1e-30, worst = 0;
  size_t at = 0;
  for (double x : want) scale = std::fmax(scale, std::fabs(x));
  for (size_t i = 0; i < want.size(); ++i) {
    const double error = std::isfinite(actual[i]) ? std::fabs(actual[i] - want[i]) : INFINITY;
    if (!(error <= worst)) {
      worst = error;
      at = i;
    }
  }
  const bool ok = worst <= 1e-4 * scale;
  std::printf("%s %s: max |error| %.3g of max |D| %.3g%s\n", ok ? "ok" : "FAILED", name(c), worst, scale,
              ok ? "" : " (see the first wrong element below)");
  if (!ok) std::printf("  D[%zu][%zu] is %.6g, expected %.6g\n", at / columns(c), at % columns(c), actual[at], want[at]);
  return ok;
}

// Runs every case on random bf16 inputs: run(c, d, a, b) launches case c's kernel on a and b (bf16 bits, 64 x 64
// and 64 x bColumns(c), host memory) and leaves D in d (host memory). Returns the number of cases that failed.
template <class Run>
int checkAll(Run run) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  int failures = 0;
  for (Case c : kCases) {
    std::vector<uint16_t> a(64 * 64), b(static_cast<size_t>(64) * bColumns(c));
    std::vector<float> aValues(a.size()), bValues(b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      a[i] = bf16FromFloat(normal(rng)).bits;
      aValues[i] = floatFromBf16(bf16{a[i]});
    }
    for (size_t i = 0; i < b.size(); ++i) {
      b[i] = bf16FromFloat(normal(rng)).bits;
      bValues[i] = floatFromBf16(bf16{b[i]});
    }
    std::vector<float> d(static_cast<size_t>(64) * columns(c), NAN);
    run(c, d.data(), a.data(), b.data());
    if (!matches(c, expected(c, aValues, bValues), d.data())) ++failures;
  }
  return failures;
}

}  // namespace selfe::wgmma_check
