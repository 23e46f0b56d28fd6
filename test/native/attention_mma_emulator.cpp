// Runs the tensor-core attention kernels of native/cuda/attention_mma.cuh on the CPU and checks them against
// float64 attention. Built and run by test/kernels/attentionMma.test.ts (any C++17 compiler, no CUDA).
//
// Every CUDA thread of a block is a coroutine (ucontext) on one host thread, run round robin: each runs until
// it waits at blockSync or a warp collective. The warp-collective primitives of mma_fragments.cuh are emulated
// from the PTX ISA's definitions, independently of the lane mappings the kernels use: ldmatrix (section
// "ldmatrix": lanes 8q..8q+7 address the rows of matrix q; lane l gets row l/4, columns 2(l%4) and 2(l%4)+1,
// or with .trans column l/4, rows 2(l%4) and 2(l%4)+1) and mma.sync m16n8k16 with bf16 operands ("Matrix
// Fragments for mma.m16n8k16 with floating point type": A element a_i of lane l at row g + 8 [i in
// {2,3,6,7}], col 2t + (i & 1) + 8 [i >= 4]; B element b_i at row 2t + (i & 1) + 8 [i >= 2], col g; C element
// c_i at row g + 8 [i >= 2], col 2t + (i & 1); g = l / 4, t = l % 4). Shared-memory addresses are checked for
// alignment and bounds, cp.async reads for bounds, shared memory starts as NaNs, outputs are surrounded by
// guard values, and lanes that wait at different barriers are reported as a deadlock.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <ucontext.h>

#include "cuda/attention_mma.cuh"
#include "selfe/dtype.h"

namespace selfe::cuda::emulated {
namespace {

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "emulator: %s\n", message.c_str());
  std::exit(2);
}

void yieldLane();
long arrivals = 0;  // progress of the block's lanes, for deadlock detection

// Lanes arrive, then give way to the other lanes until the last one has arrived.
class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void wait() {
    const long generation = generation_;
    ++arrivals;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++generation_;
    } else {
      while (generation_ == generation) yieldLane();
    }
  }

 private:
  const int count_;
  int arrived_ = 0;
  long generation_ = 0;
};

struct Warp {
  Barrier sync{32};
  const uint16_t* rows[32];
  uint32_t a[32][4], b[32][2];
  float c[32][4], values[32];
};

struct Block {
  Block(int threads, size_t bytes, unsigned x, unsigned y)
      : all(threads), warps(static_cast<size_t>(threads / 32)), bytes(bytes), x(x), y(y) {
    shared = static_cast<unsigned char*>(std::aligned_alloc(128, (bytes + 127) / 128 * 128));
    std::memset(shared, 0xff, bytes);  // bf16 0xffff and f32 0xffffffff are NaNs: unloaded data shows
  }
  ~Block() { std::free(shared); }
  Barrier all;
  std::vector<Warp> warps;
  unsigned char* shared;
  size_t bytes;
  unsigned x, y;
};

Block* block = nullptr;
int thread = 0;  // the running lane's thread index in the block

// The lanes of a block are coroutines on one host thread, switched at every barrier (ucontext).
ucontext_t scheduler;
std::vector<ucontext_t> lanes;
void yieldLane() { swapcontext(&lanes[static_cast<size_t>(thread)], &scheduler); }

// Global memory a kernel may read: [begin, end) ranges registered by the test.
std::vector<std::pair<const unsigned char*, const unsigned char*>> readable;

Warp& warp() { return block->warps[static_cast<size_t>(thread / 32)]; }
int lane() { return thread % 32; }

void checkShared(const void* p, size_t bytes, size_t alignment, const char* what) {
  const auto* at = static_cast<const unsigned char*>(p);
  if (at < block->shared || at + bytes > block->shared + block->bytes)
    fail(std::string(what) + ": shared address outside the block's shared memory");
  if (reinterpret_cast<uintptr_t>(at) % alignment != 0) fail(std::string(what) + ": misaligned shared address");
}

float widen(uint16_t bits) { return floatFromBf16(bf16{bits}); }
uint16_t half(uint32_t reg, int which) { return static_cast<uint16_t>(which == 0 ? reg & 0xffffu : reg >> 16); }

}  // namespace

unsigned char* sharedMemory() { return block->shared; }
int threadIndex() { return thread; }
unsigned blockIndexX() { return block->x; }
unsigned blockIndexY() { return block->y; }
void syncThreads() { block->all.wait(); }

void ldmatrixX4(uint32_t (&r)[4], const uint16_t* row, bool transposed) {
  checkShared(row, 16, 16, "ldmatrix");
  Warp& w = warp();
  const int l = lane();
  w.rows[l] = row;
  w.sync.wait();
  for (int q = 0; q < 4; ++q) {
    uint16_t lo, hi;
    if (!transposed) {
      const uint16_t* source = w.rows[8 * q + l / 4];
      lo = source[2 * (l % 4)];
      hi = source[2 * (l % 4) + 1];
    } else {
      lo = w.rows[8 * q + 2 * (l % 4)][l / 4];
      hi = w.rows[8 * q + 2 * (l % 4) + 1][l / 4];
    }
    r[q] = static_cast<uint32_t>(lo) | static_cast<uint32_t>(hi) << 16;
  }
  w.sync.wait();
}

void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  Warp& w = warp();
  const int l = lane();
  for (int i = 0; i < 4; ++i) w.a[l][i] = a[i];
  w.b[l][0] = b0;
  w.b[l][1] = b1;
  for (int i = 0; i < 4; ++i) w.c[l][i] = d[i];
  w.sync.wait();
  float A[16][16], B[16][8], C[16][8];
  for (int src = 0; src < 32; ++src) {
    const int g = src >> 2, t = src % 4;
    for (int i = 0; i < 8; ++i) {
      const int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
      const int col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
      A[row][col] = widen(half(w.a[src][i / 2], i % 2));
    }
    for (int i = 0; i < 4; ++i) B[t * 2 + (i & 1) + (i >= 2 ? 8 : 0)][g] = widen(half(w.b[src][i / 2], i % 2));
    for (int i = 0; i < 4; ++i) C[i < 2 ? g : g + 8][t * 2 + (i & 1)] = w.c[src][i];
  }
  const int g = l >> 2, t = l % 4;
  for (int i = 0; i < 4; ++i) {
    const int row = i < 2 ? g : g + 8, col = t * 2 + (i & 1);
    float sum = C[row][col];
    for (int kk = 0; kk < 16; ++kk) sum += A[row][kk] * B[kk][col];  // bf16 products are exact in f32
    d[i] = sum;
  }
  w.sync.wait();
}

float shuffleXor(float value, int laneMask) {
  Warp& w = warp();
  const int l = lane();
  w.values[l] = value;
  w.sync.wait();
  const float other = w.values[l ^ laneMask];
  w.sync.wait();
  return other;
}

void copyAsync16(void* shared, const void* global, bool inside) {
  checkShared(shared, 16, 16, "cp.async");
  if (!inside) {
    std::memset(shared, 0, 16);
    return;
  }
  const auto* from = static_cast<const unsigned char*>(global);
  bool ok = false;
  for (const auto& [begin, end] : readable) ok = ok || (from >= begin && from + 16 <= end);
  if (!ok) fail("cp.async: global read outside every input");
  if (reinterpret_cast<uintptr_t>(from) % 16 != 0) fail("cp.async: misaligned global address");
  std::memcpy(shared, from, 16);
}

void atomicAddF32(float* address, float value) { *address += value; }

uint32_t packBf16x2(float lo, float hi) {
  return static_cast<uint32_t>(bf16FromFloat(lo).bits) | static_cast<uint32_t>(bf16FromFloat(hi).bits) << 16;
}

// Runs kernel() as every thread of every block of the grid, one block at a time.
const std::function<void()>* launched = nullptr;
bool* finished = nullptr;

void runLane() {
  (*launched)();
  finished[thread] = true;
  swapcontext(&lanes[static_cast<size_t>(thread)], &scheduler);
}

void runBlock(Block& b, int threads, std::vector<std::vector<char>>& stacks) {
  block = &b;
  lanes.assign(static_cast<size_t>(threads), ucontext_t{});
  for (int i = 0; i < threads; ++i) {
    ucontext_t& context = lanes[static_cast<size_t>(i)];
    finished[i] = false;
    getcontext(&context);
    context.uc_stack.ss_sp = stacks[static_cast<size_t>(i)].data();
    context.uc_stack.ss_size = stacks[static_cast<size_t>(i)].size();
    context.uc_link = nullptr;
    makecontext(&context, runLane, 0);
  }
  for (int remaining = threads; remaining > 0;) {
    remaining = 0;
    const long before = arrivals;
    for (int i = 0; i < threads; ++i)
      if (!finished[i]) {
        thread = i;
        swapcontext(&scheduler, &lanes[static_cast<size_t>(i)]);
        remaining += finished[i] ? 0 : 1;
      }
    if (remaining > 0 && arrivals == before) fail("deadlock: threads wait at different barriers or collectives");
  }
}

void launch(unsigned gridX, unsigned gridY, int threads, size_t sharedBytes, const std::function<void()>& kernel) {
  std::vector<std::vector<char>> stacks(static_cast<size_t>(threads), std::vector<char>(256 << 10));
  std::unique_ptr<bool[]> done(new bool[static_cast<size_t>(threads)]);
  launched = &kernel;
  finished = done.get();
  for (unsigned y = 0; y < gridY; ++y)
    for (unsigned x = 0; x < gridX; ++x) {
      Block b(threads, sharedBytes, x, y);
      runBlock(b, threads, stacks);
    }
}

}  // namespace selfe::cuda::emulated

namespace {

using selfe::bf16;
using selfe::bf16FromFloat;
using selfe::floatFromBf16;
namespace emulated = selfe::cuda::emulated;
namespace flash = selfe::cuda::flash;

// A device array: the data between guard zones that must stay untouched.
template <class E>
struct Buffer {
  static constexpr size_t kGuard = 64;
  std::vector<E> storage;
  E guard;
  Buffer(size_t n, E fill, E guardValue) : storage(n + 2 * kGuard, fill), guard(guardValue) {
    for (size_t i = 0; i < kGuard; ++i) storage[i] = storage[storage.size() - 1 - i] = guard;
  }
  E* data() { return storage.data() + kGuard; }
  size_t size() const { return storage.size() - 2 * kGuard; }
  void readableByKernels() {
    const auto* begin = reinterpret_cast<const unsigned char*>(data());
    emulated::readable.emplace_back(begin, begin + size() * sizeof(E));
  }
  bool guardsIntact() const {
    for (size_t i = 0; i < kGuard; ++i)
      if (std::memcmp(&storage[i], &guard, sizeof(E)) != 0 || std::memcmp(&storage[storage.size() - 1 - i], &guard, sizeof(E)) != 0)
        return false;
    return true;
  }
};

struct Problem {
  const char* name;
  int batch, heads, lq, lk, d;
  bool masked;    // batch 0 attends every key, batch 1 a random half, batch 2 none
  int sliceY;     // (batch, head) pairs per launch, as the launcher slices grids past 65535
};

int failures = 0;

void expectClose(const char* problem, const char* what, const std::vector<double>& expected,
                 const std::function<double(size_t)>& actual, double relativeToRms, double rtol) {
  double sq = 0;
  for (double e : expected) sq += std::isfinite(e) ? e * e : 0;
  const double rms = std::sqrt(sq / std::max<size_t>(1, expected.size()));
  const double atol = relativeToRms * std::max(rms, 1e-3);
  double worst = 0;
  size_t where = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double a = actual(i), e = expected[i];
    if (a == e) continue;  // equal infinities too
    const double excess = std::fabs(a - e) - (atol + rtol * std::fabs(e));
    if (!(excess <= 0) && !(excess < worst)) {
      worst = std::isnan(excess) ? INFINITY : excess;
      where = i;
    }
  }
  double maxError = 0, usage = 0;  // usage: the largest |error| / (atol + rtol |expected|)
  for (size_t i = 0; i < expected.size(); ++i)
    if (std::isfinite(expected[i])) {
      const double error = std::fabs(actual(i) - expected[i]);
      maxError = std::max(maxError, error);
      usage = std::max(usage, error / (atol + rtol * std::fabs(expected[i])));
    }
  std::printf("  %-4s max |error| %.3g, rms of expected %.3g, %.0f%% of the tolerance%s\n", what, maxError, rms,
              100 * usage, worst > 0 ? "  FAILED" : "");
  if (worst > 0) {
    ++failures;
    std::printf("    %s %s: element %zu is %.6g, expected %.6g\n", problem, what, where, actual(where), expected[where]);
  }
}

void run(const Problem& p, uint32_t seed) {
  std::printf("%s: B=%d H=%d Lq=%d Lk=%d d=%d%s\n", p.name, p.batch, p.heads, p.lq, p.lk, p.d, p.masked ? ", masked" : "");
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  const int B = p.batch, H = p.heads, Lq = p.lq, Lk = p.lk, D = p.d;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const auto rounded = [&](size_t n) {
    std::vector<double> x(n);
    for (auto& e : x) e = floatFromBf16(bf16FromFloat(normal(rng)));
    return x;
  };
  const size_t nq = static_cast<size_t>(B) * Lq * H * D, nk = static_cast<size_t>(B) * Lk * H * D;
  const std::vector<double> q = rounded(nq), k = rounded(nk), v = rounded(nk), dout = rounded(nq);
  std::vector<int32_t> mask(static_cast<size_t>(B) * Lk, 1);
  if (p.masked)
    for (int b = 1; b < B; ++b)
      for (int j = 0; j < Lk; ++j) mask[static_cast<size_t>(b) * Lk + j] = b == 1 ? static_cast<int32_t>(rng() % 2) : 0;
  const auto at = [&](int b, int i, int h, int L) { return ((static_cast<size_t>(b) * L + i) * H + h) * D; };
  const auto attends = [&](int b, int j) { return mask[static_cast<size_t>(b) * Lk + j] != 0; };

  // float64 reference; out rounded to bf16 as stored, and delta taken from it, as the backends do.
  const auto toBf16 = [](double x) { return static_cast<double>(floatFromBf16(bf16FromFloat(static_cast<float>(x)))); };
  std::vector<double> out(nq, 0), lse(static_cast<size_t>(B) * H * Lq), dq(nq, 0), dk(nk, 0), dv(nk, 0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < Lq; ++i) {
        std::vector<double> s(Lk, -INFINITY);
        double mx = -INFINITY;
        for (int j = 0; j < Lk; ++j)
          if (attends(b, j)) {
            double dot = 0;
            for (int c = 0; c < D; ++c) dot += q[at(b, i, h, Lq) + c] * k[at(b, j, h, Lk) + c];
            s[j] = scale * dot;
            mx = std::max(mx, s[j]);
          }
        double& rowLse = lse[(static_cast<size_t>(b) * H + h) * Lq + i];
        if (mx == -INFINITY) {
          rowLse = -INFINITY;
          continue;
        }
        double sum = 0;
        for (int j = 0; j < Lk; ++j) sum += attends(b, j) ? std::exp(s[j] - mx) : 0.0;
        rowLse = mx + std::log(sum);
        for (int j = 0; j < Lk; ++j) {
          if (!attends(b, j)) continue;
          const double pj = std::exp(s[j] - rowLse);
          for (int c = 0; c < D; ++c) out[at(b, i, h, Lq) + c] += pj * v[at(b, j, h, Lk) + c];
        }
      }
  std::vector<double> storedOut(nq);
  for (size_t i = 0; i < nq; ++i) storedOut[i] = floatFromBf16(bf16FromFloat(static_cast<float>(out[i])));
  std::vector<float> delta(static_cast<size_t>(B) * H * Lq);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < Lq; ++i) {
        double sum = 0;
        for (int c = 0; c < D; ++c) sum += dout[at(b, i, h, Lq) + c] * storedOut[at(b, i, h, Lq) + c];
        delta[(static_cast<size_t>(b) * H + h) * Lq + i] = static_cast<float>(sum);
        const double rowLse = static_cast<float>(lse[(static_cast<size_t>(b) * H + h) * Lq + i]);
        if (rowLse == -INFINITY) continue;
        for (int j = 0; j < Lk; ++j) {
          if (!attends(b, j)) continue;
          double s = 0, dp = 0;
          for (int c = 0; c < D; ++c) {
            s += q[at(b, i, h, Lq) + c] * k[at(b, j, h, Lk) + c];
            dp += dout[at(b, i, h, Lq) + c] * v[at(b, j, h, Lk) + c];
          }
          // P and dS enter their products as bf16 (FlashAttention-2's precision): rounded here the same way.
          const double pij = toBf16(std::exp(scale * s - rowLse));
          const double ds = toBf16(std::exp(scale * s - rowLse) * (dp - sum));
          for (int c = 0; c < D; ++c) {
            dq[at(b, i, h, Lq) + c] += scale * ds * k[at(b, j, h, Lk) + c];
            dk[at(b, j, h, Lk) + c] += scale * ds * q[at(b, i, h, Lq) + c];
            dv[at(b, j, h, Lk) + c] += pij * dout[at(b, i, h, Lq) + c];
          }
        }
      }

  // Device arrays.
  const bf16 nan{0x7fc1}, zero{0};
  const auto device = [&](const std::vector<double>& x) {
    Buffer<bf16> buffer(x.size(), zero, nan);
    for (size_t i = 0; i < x.size(); ++i) buffer.data()[i] = bf16FromFloat(static_cast<float>(x[i]));
    return buffer;
  };
  Buffer<bf16> qd = device(q), kd = device(k), vd = device(v), doutd = device(dout);
  Buffer<int32_t> maskd(mask.size(), 0, -7);
  std::copy(mask.begin(), mask.end(), maskd.data());
  Buffer<float> lsed(lse.size(), 0, -7.0f), deltad(delta.size(), 0, -7.0f);
  for (size_t i = 0; i < lse.size(); ++i) lsed.data()[i] = static_cast<float>(lse[i]);
  std::copy(delta.begin(), delta.end(), deltad.data());
  // What the kernels copy with cp.async (the rest they read with plain loads).
  emulated::readable.clear();
  qd.readableByKernels();
  kd.readableByKernels();
  vd.readableByKernels();
  doutd.readableByKernels();
  const int32_t* maskPtr = p.masked ? maskd.data() : nullptr;
  const float fscale = static_cast<float>(scale);

  Buffer<bf16> outd(nq, nan, bf16{0x7fc2});
  Buffer<float> lseOut(lse.size(), NAN, -7.0f);
  Buffer<bf16> dkd(nk, nan, bf16{0x7fc2}), dvd(nk, nan, bf16{0x7fc2});
  Buffer<float> dqSums(nq, 0.0f, -7.0f);

  const int pairs = B * H;
  const auto forwardFor = [&](auto dim) {
    constexpr int kD = decltype(dim)::value;
    using S = flash::ForwardTiling<kD>;
    for (int offset = 0; offset < pairs; offset += p.sliceY)
      emulated::launch((Lq + S::kRows - 1) / S::kRows, std::min(p.sliceY, pairs - offset), S::kThreads, S::kShared, [&] {
        flash::forward<kD, bf16>(outd.data(), lseOut.data(), qd.data(), kd.data(), vd.data(), maskPtr, offset, H, Lq, Lk, fscale);
      });
  };
  const auto backwardFor = [&](auto dim) {
    constexpr int kD = decltype(dim)::value;
    using S = flash::BackwardTiling<kD>;
    for (int offset = 0; offset < pairs; offset += p.sliceY)
      emulated::launch((Lk + S::kKeys - 1) / S::kKeys, std::min(p.sliceY, pairs - offset), S::kThreads, S::kShared, [&] {
        flash::backward<kD, bf16>(dkd.data(), dvd.data(), dqSums.data(), doutd.data(), qd.data(), kd.data(), vd.data(),
                                  lsed.data(), deltad.data(), maskPtr, offset, H, Lq, Lk, fscale);
      });
  };
  if (D == 64) forwardFor(std::integral_constant<int, 64>{});
  else forwardFor(std::integral_constant<int, 128>{});
  if (D == 64) backwardFor(std::integral_constant<int, 64>{});
  else backwardFor(std::integral_constant<int, 128>{});

  const auto wide = [](Buffer<bf16>& x) { return [&x](size_t i) { return static_cast<double>(floatFromBf16(x.data()[i])); }; };
  expectClose(p.name, "out", out, wide(outd), 2e-2, 2e-2);  // as test/gpu applies to bf16
  expectClose(p.name, "lse", lse, [&](size_t i) { return static_cast<double>(lseOut.data()[i]); }, 1e-5, 1e-5);
  // Against exact attention, the forward gets the GPU suite's bf16 tolerance; the gradients, computed from the
  // same bf16 P and dS, a tenth of it (what remains: f32 sums in another order, bf16 outputs).
  expectClose(p.name, "dq", dq, [&](size_t i) { return scale * dqSums.data()[i]; }, 2e-3, 2e-3);
  expectClose(p.name, "dk", dk, wide(dkd), 2e-3, 1e-2);
  expectClose(p.name, "dv", dv, wide(dvd), 2e-3, 1e-2);
  // Exactly zero where nothing flows: rows with every key masked (out, dq) and masked keys (dk, dv).
  bool exact = true;
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      for (int i = 0; i < Lq; ++i)
        if (lse[(static_cast<size_t>(b) * H + h) * Lq + i] == -INFINITY)
          for (int c = 0; c < D; ++c)
            exact = exact && floatFromBf16(outd.data()[at(b, i, h, Lq) + c]) == 0.0f && dqSums.data()[at(b, i, h, Lq) + c] == 0.0f;
      for (int j = 0; j < Lk; ++j)
        if (!attends(b, j))
          for (int c = 0; c < D; ++c)
            exact = exact && floatFromBf16(dkd.data()[at(b, j, h, Lk) + c]) == 0.0f && floatFromBf16(dvd.data()[at(b, j, h, Lk) + c]) == 0.0f;
    }
  if (!exact) {
    ++failures;
    std::printf("  FAILED: a fully masked row or a masked key got a nonzero value\n");
  }
  if (!outd.guardsIntact() || !lseOut.guardsIntact() || !dkd.guardsIntact() || !dvd.guardsIntact() || !dqSums.guardsIntact()) {
    ++failures;
    std::printf("  FAILED: a kernel wrote outside its output\n");
  }
}

}  // namespace

int main() {
  // Tails in every direction (Lq, Lk not multiples of the tiles), Lq != Lk, several batches and heads, masks
  // (including a batch with no key), keys fewer than one tile, grids launched in (batch, head) slices.
  const Problem problems[] = {
      {"head dim 64, masked, tails", 3, 2, 150, 130, 64, true, 4},
      {"head dim 64, one short query tile, many keys", 1, 2, 5, 200, 64, false, 1},
      {"head dim 128, tails, no mask", 2, 2, 70, 90, 128, false, 3},
      {"head dim 128, masked, fewer keys than a tile", 3, 1, 40, 20, 128, true, 2},
  };
  uint32_t seed = 1;
  for (const Problem& p : problems) run(p, seed++);
  if (failures > 0) {
    std::printf("%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}
