// CPU multi-head softmax attention (see selfe/kernels/attention.h), in float on SIMD register tiles.
//
// Work is split into tasks of one (batch, head) (the forward also splits a head's query rows when there are
// too few heads to fill the pool). A task gathers its head's attended keys (and, block by block, its query
// rows) into contiguous zero-padded scratch and runs small matrix products on it: scores = scale Q Kᵀ,
// softmax, out = P V; the backward recomputes P from lse, then dP = dO Vᵀ, dS = P (dP - Δ), dQ = scale dS K,
// dK = scale dSᵀ Q, dV = Pᵀ dO. Every output element is summed by one task in an order fixed by the shapes
// alone (dK and dV belong to the task of their head), so results do not depend on the number of threads.
// Masked keys are dropped when gathering, so they contribute nothing, NaN included, as in the exact form.
// Sums are in float (the exact form kept double): against a float64 reference the error is ~1e-7..1e-6 of
// each tensor's largest element. exp and ln are vectorised polynomials (within 2 ulp) that keep NaN.
#include "selfe/kernels/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "pool.h"

#if defined(__FMA__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

// The SIMD helpers below pass 32-byte vectors by value; they are internal and inlined, so GCC's note that
// this ABI differs without AVX (SELFE_NATIVE_ARCH=OFF builds) concerns no real interface.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace selfe::cpu {

namespace {

// --- SIMD vectors (GCC/Clang vector extensions; lowered to whatever the target has) ---------------------
constexpr int64_t kLanes = 8;
typedef float Vec __attribute__((vector_size(32)));
typedef int32_t VecI __attribute__((vector_size(32)));
typedef uint32_t VecU __attribute__((vector_size(32)));

// Register tile of the products: kRows output rows by kMaxVecs vectors of columns. AVX-512VL has 32 vector
// registers, AVX2 16.
#if defined(__AVX512F__) && defined(__AVX512VL__)
constexpr int kRows = 6;
constexpr int kMaxVecs = 4;
#else
constexpr int kRows = 4;
constexpr int kMaxVecs = 3;
#endif

inline Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof v); }
inline Vec splat(float x) { return Vec{x, x, x, x, x, x, x, x}; }
// a * b + c, rounded once where the target has FMA. Spelled out rather than left to -ffp-contract, which
// fuses a * b + c in some inlined copies of a loop and not others: a row's result would then depend on
// where its tile starts, and so on the thread count.
inline Vec fmadd(Vec a, Vec b, Vec c) {
#if defined(__FMA__) && (defined(__x86_64__) || defined(__i386__))
  return _mm256_fmadd_ps(a, b, c);
#elif defined(__FMA__) || defined(__ARM_FEATURE_FMA)
  Vec r;
  for (int l = 0; l < kLanes; ++l) r[l] = __builtin_fmaf(a[l], b[l], c[l]);
  return r;
#else
  return a * b + c;
#endif
}
template <class To, class From>
inline To bits(From from) {
  static_assert(sizeof(To) == sizeof(From));
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}

constexpr float kInf = std::numeric_limits<float>::infinity();

// e^x per lane, within 2 ulp (Cephes' expf polynomial on x - n ln2) for x in [-87.3, 88]; under that range
// it gives 0, over it e^88 (attention only takes e^x of x <= 0, up to rounding), and a NaN stays NaN.
inline Vec expVec(Vec x) {
  const Vec lo = splat(-87.3f), hi = splat(88.0f);
  // Clamped so that a NaN passes through (the vmaxps / vminps pattern: a NaN x compares false).
  Vec xc = lo > x ? lo : x;
  xc = hi < xc ? hi : xc;
  const Vec magic = splat(12582912.0f);           // 1.5 * 2^23: adding it rounds to an integer in the low bits
  const Vec t = fmadd(xc, splat(1.44269504088896341f), magic);
  const Vec n = t - magic;
  Vec r = fmadd(n, splat(-0.693359375f), xc);
  r = fmadd(n, splat(2.12194440e-4f), r);
  Vec p = splat(1.9875691500e-4f);
  p = fmadd(p, r, splat(1.3981999507e-3f));
  p = fmadd(p, r, splat(8.3334519073e-3f));
  p = fmadd(p, r, splat(4.1665795894e-2f));
  p = fmadd(p, r, splat(1.6666665459e-1f));
  p = fmadd(p, r, splat(5.0000001201e-1f));
  const Vec y = fmadd(p, r * r, r) + 1.0f;
  const VecU exponent = ((bits<VecU>(t) - bits<VecU>(magic)) + 127u) << 23;  // 2^n
  const Vec result = y * bits<Vec>(exponent);
  return x < lo ? Vec{} : result;
}

// The sum of the lanes, in a fixed (pairwise) order.
inline float horizontalSum(Vec v) {
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

// Two-vector shuffle: lane i of the result is lane idx_i of the 16-lane concatenation of a and b.
#if defined(__clang__)
#define SELFE_SHUFFLE(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SELFE_SHUFFLE(a, b, ...) __builtin_shuffle(a, b, VecI{__VA_ARGS__})
#endif

// Transposes an 8 x 8 block in place (the AVX unpack / shuffle / permute sequence).
inline void transpose8(Vec (&r)[8]) {
  Vec t[8], s[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = SELFE_SHUFFLE(r[2 * i], r[2 * i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[2 * i + 1] = SELFE_SHUFFLE(r[2 * i], r[2 * i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      s[4 * i + 2 * j] = SELFE_SHUFFLE(t[4 * i + j], t[4 * i + j + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      s[4 * i + 2 * j + 1] = SELFE_SHUFFLE(t[4 * i + j], t[4 * i + j + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int i = 0; i < 4; ++i) {
    r[i] = SELFE_SHUFFLE(s[i], s[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    r[i + 4] = SELFE_SHUFFLE(s[i], s[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// ln x per lane, within 2 ulp (Cephes' logf polynomial) for positive normal x; a NaN stays NaN. Zero,
// subnormal, negative and infinite x are not handled: attention takes the log of row sums, which are at least
// 1 (the row max contributes e^0) or NaN.
inline Vec logVec(Vec x) {
  const VecU u = bits<VecU>(x);
  const VecI exponent = bits<VecI>((u >> 23) & 0xffu) - 126;               // x = m 2^exponent, m in [0.5, 1)
  const Vec m = bits<Vec>((u & 0x807fffffu) | 0x3f000000u);
  const VecI below = m < splat(0.707106781186547524f);                   // then use 2m in [0.707, 1.414)
  const Vec e = __builtin_convertvector(exponent + below, Vec);           // (a true mask is -1)
  const Vec f = (below ? m + m : m) - 1.0f;
  const Vec z = f * f;
  Vec p = splat(7.0376836292e-2f);
  p = fmadd(p, f, splat(-1.1514610310e-1f));
  p = fmadd(p, f, splat(1.1676998740e-1f));
  p = fmadd(p, f, splat(-1.2420140846e-1f));
  p = fmadd(p, f, splat(1.4249322787e-1f));
  p = fmadd(p, f, splat(-1.6668057665e-1f));
  p = fmadd(p, f, splat(2.0000714765e-1f));
  p = fmadd(p, f, splat(-2.4999993993e-1f));
  p = fmadd(p, f, splat(3.3333331174e-1f));
  Vec y = p * f * z;
  y = fmadd(e, splat(-2.12194440e-4f), y);
  y = fmadd(z, splat(-0.5f), y);
  const Vec result = fmadd(e, splat(0.693359375f), f + y);
  return x != x ? x : result;
}

// --- Small matrix products ------------------------------------------------------------------------------
// C[m, n] = alpha * A B, or C += alpha * A B: A(i, p) = a[i * aRow + p * aCol] (so either A or Aᵀ may be
// stored row-major), B row-major [depth, ldb]; n is a multiple of kLanes. Each element is one sum over p in
// increasing order.
struct Product {
  float* c;
  int64_t ldc;
  const float* a;
  int64_t aRow, aCol;
  const float* b;
  int64_t ldb, depth;
  float alpha;
};

template <int R, int V, bool kAccumulate>
inline void tile(const Product& x, int64_t row, int64_t col) {
  Vec acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = Vec{};
  const float* a = x.a + row * x.aRow;
  const float* b = x.b + col;
  for (int64_t p = 0; p < x.depth; ++p) {
    Vec bv[V];
    for (int v = 0; v < V; ++v) bv[v] = load(b + p * x.ldb + v * kLanes);
    for (int r = 0; r < R; ++r) {
      const Vec av = splat(a[r * x.aRow + p * x.aCol]);
      for (int v = 0; v < V; ++v) acc[r][v] = fmadd(av, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) {
      float* c = x.c + (row + r) * x.ldc + col + v * kLanes;
      store(c, kAccumulate ? fmadd(acc[r][v], splat(x.alpha), load(c)) : acc[r][v] * x.alpha);
    }
}

// The last m % kRows rows, one tile of that height.
template <int R, int V, bool kAccumulate>
inline void tailRows(const Product& x, int64_t row, int64_t left, int64_t col) {
  if constexpr (R > 0) {
    if (left == R) return tile<R, V, kAccumulate>(x, row, col);
    tailRows<R - 1, V, kAccumulate>(x, row, left, col);
  }
}

template <int V, bool kAccumulate>
void columnBlock(const Product& x, int64_t m, int64_t col) {
  int64_t row = 0;
  for (; row + kRows <= m; row += kRows) tile<kRows, V, kAccumulate>(x, row, col);
  tailRows<kRows - 1, V, kAccumulate>(x, row, m - row, col);
}

template <bool kAccumulate>
void product(const Product& x, int64_t m, int64_t n) {
  int64_t col = 0;
  for (; col + kMaxVecs * kLanes <= n; col += kMaxVecs * kLanes) columnBlock<kMaxVecs, kAccumulate>(x, m, col);
  switch ((n - col) / kLanes) {
    case 1: columnBlock<1, kAccumulate>(x, m, col); break;
    case 2: columnBlock<2, kAccumulate>(x, m, col); break;
    case 3: if constexpr (kMaxVecs > 3) columnBlock<3, kAccumulate>(x, m, col); break;
    default: break;
  }
}

// --- Shapes and scratch ---------------------------------------------------------------------------------
int64_t roundUp(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

// Attended keys of each batch, in order: index[b * lk + t] for t < count[b].
struct KeyLists {
  std::vector<int64_t> index, count;
  KeyLists(const int32_t* mask, int64_t batch, int64_t lk)
      : index(static_cast<size_t>(batch * lk)), count(static_cast<size_t>(batch)) {
    for (int64_t b = 0; b < batch; ++b) {
      int64_t n = 0;
      for (int64_t j = 0; j < lk; ++j)
        if (mask == nullptr || mask[b * lk + j] != 0) index[b * lk + n++] = j;
      count[b] = n;
    }
  }
};

// Most query rows per inner block: the score block (rows x padded keys) stays within about 32 KiB.
int64_t maxQueryBlock(int64_t lkPadded) {
  const int64_t rows = (int64_t{8192} / std::max<int64_t>(1, lkPadded)) / kRows * kRows;
  return std::clamp<int64_t>(rows, kRows, 128);
}

// Rows per block when n rows are cut into blocks of at most maxBlock: as even as the tile height allows
// (80 rows go as one block, not 64 + 16).
int64_t evenBlock(int64_t n, int64_t maxBlock) {
  const int64_t blocks = std::max<int64_t>(1, (n + maxBlock - 1) / maxBlock);
  return std::min(maxBlock, roundUp((n + blocks - 1) / blocks, kRows));
}

// Float scratch, one 64-byte aligned slab per worker, allocated before the parallel loop (whose body must
// not throw). Left uninitialised: every piece of a slab is written before it is read.
class Slabs {
 public:
  Slabs(int64_t workers, int64_t floatsPerSlab)
      : perSlab_(roundUp(floatsPerSlab, 16)), storage_(new float[static_cast<size_t>(workers * perSlab_ + 16)]) {}
  float* slab(int64_t w) {
    const auto base = reinterpret_cast<uintptr_t>(storage_.get());
    return reinterpret_cast<float*>((base + 63) & ~uintptr_t{63}) + w * perSlab_;
  }

 private:
  int64_t perSlab_;
  std::unique_ptr<float[]> storage_;
};

// Offsets (in floats) of the pieces of one worker's scratch, each rounded up to 16 floats so that all stay
// 64-byte aligned; total is the slab size.
struct Layout {
  int64_t total = 0;
  int64_t add(int64_t n) {
    const int64_t at = total;
    total += roundUp(n, 16);
    return at;
  }
};

// Runs task(worker, t) for t in [0, tasks) on the pool, worker in [0, workers) naming the scratch to use.
// Tasks are handed out in small runs (about 16 per worker in all), so uneven ones (masked batches are
// cheaper) still balance; a task's result does not depend on which worker runs it.
template <class Task>
void runTasks(Stream pool, int64_t tasks, int64_t workers, Task&& task) {
  const int64_t run = std::max<int64_t>(1, tasks / (16 * workers));
  std::atomic<int64_t> next{0};
  pool.parallelFor(workers, 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w)
      for (int64_t t0 = next.fetch_add(run, std::memory_order_relaxed); t0 < tasks;
           t0 = next.fetch_add(run, std::memory_order_relaxed))
        for (int64_t t = t0; t < std::min(tasks, t0 + run); ++t) task(w, t);
  });
}

// Copies width floats (dst[e] = alpha * src[e]).
inline void copyRow(float* dst, const float* src, int64_t width, float alpha = 1.0f) {
  int64_t e = 0;
  for (; e + kLanes <= width; e += kLanes) store(dst + e, load(src + e) * alpha);
  for (; e < width; ++e) dst[e] = src[e] * alpha;
}

// Gathers rows src + index[t] * stride (width floats each) into dst [rows, ld]: zeros past width, and whole
// zero rows from n to rows. ld is a multiple of kLanes.
void gatherRows(float* dst, int64_t ld, const float* src, int64_t stride, const int64_t* index, int64_t n,
                int64_t rows, int64_t width) {
  for (int64_t t = 0; t < rows; ++t) {
    float* d = dst + t * ld;
    int64_t e = 0;
    if (t < n) {
      const float* s = src + index[t] * stride;
      for (; e + kLanes <= width; e += kLanes) store(d + e, load(s + e));
      if (e < width) {
        Vec tail = Vec{};
        for (int64_t l = 0; l < width - e; ++l) tail[l] = s[e + l];
        store(d + e, tail);
        e += kLanes;
      }
    }
    for (; e < ld; e += kLanes) store(d + e, Vec{});
  }
}

// dst[d, t] = src[t, d] for d < width, t < rows: src [rows, ldSrc], dst [width, ldDst]; rows, ldSrc and
// ldDst are multiples of kLanes, and so is width rounded up (ldSrc covers it).
void transpose(float* dst, int64_t ldDst, const float* src, int64_t ldSrc, int64_t rows, int64_t width) {
  for (int64_t t = 0; t < rows; t += kLanes)
    for (int64_t d = 0; d < width; d += kLanes) {
      Vec block[8];
      for (int i = 0; i < 8; ++i) block[i] = load(src + (t + i) * ldSrc + d);
      transpose8(block);
      for (int i = 0; i < 8 && d + i < width; ++i) store(dst + (d + i) * ldDst + t, block[i]);
    }
}

void zeroRows(float* dst, int64_t stride, int64_t rows, int64_t width) {
  for (int64_t r = 0; r < rows; ++r) std::fill(dst + r * stride, dst + r * stride + width, 0.0f);
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* key_mask,
                       int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t head_dim, float scale,
                       Stream pool) {
  if (batch <= 0 || heads <= 0 || lq <= 0) return;
  const KeyLists keys(key_mask, batch, lk);
  const int64_t stride = heads * head_dim;  // between consecutive rows of one head
  const int64_t dp = roundUp(head_dim, kLanes), lkp = roundUp(lk, kLanes), maxBlock = maxQueryBlock(lkp);
  // Enough tasks to keep every thread busy: with few heads, each head's query rows are split as well.
  const int64_t headCount = batch * heads, wanted = int64_t{4} * pool.threads();
  const int64_t splits = headCount >= wanted ? 1 : std::clamp<int64_t>(wanted / headCount, 1, (lq + 15) / 16);
  const int64_t rowsPerTask = (lq + splits - 1) / splits, tasksPerHead = (lq + rowsPerTask - 1) / rowsPerTask;
  const int64_t tasks = headCount * tasksPerHead, workers = std::min<int64_t>(pool.threads(), tasks);
  const int64_t block = evenBlock(rowsPerTask, maxBlock);
  Layout layout;
  const int64_t ksAt = layout.add(lkp * dp);                // [ap, dp] keys (zero rows past `attended`)
  const int64_t ktAt = layout.add(dp * lkp);                // [head_dim, ap] keys, transposed
  const int64_t vsAt = layout.add(lk * dp);                 // [attended, dp] values
  const int64_t qsAt = layout.add(block * dp);              // [rows, dp] query block
  const int64_t psAt = layout.add(block * lkp);             // [rows, ap] scores, then unnormalised probabilities
  const int64_t osAt = layout.add(block * dp);              // [rows, dp] unnormalised output block
  const int64_t rowMaxesAt = layout.add(roundUp(block, kLanes));  // [rows] score max
  const int64_t rowScaleAt = layout.add(roundUp(block, kLanes));  // [rows] row sum, then 1 / row sum
  Slabs slabs(workers, layout.total);

  runTasks(pool, tasks, workers, [&](int64_t worker, int64_t task) {
    const int64_t bh = task / tasksPerHead, b = bh / heads, h = bh % heads;
    const int64_t rowBegin = task % tasksPerHead * rowsPerTask, rowEnd = std::min(lq, rowBegin + rowsPerTask);
    const float* qHead = q + b * lq * stride + h * head_dim;
    float* outHead = out + b * lq * stride + h * head_dim;
    float* lseHead = lse + bh * lq;
    const int64_t attended = keys.count[b];
    if (attended == 0) {
      zeroRows(outHead + rowBegin * stride, stride, rowEnd - rowBegin, head_dim);
      std::fill(lseHead + rowBegin, lseHead + rowEnd, -kInf);
      return;
    }
    const int64_t* keyIndex = keys.index.data() + b * lk;
    const int64_t ap = roundUp(attended, kLanes);  // score columns computed (past `attended`: masked off)
    float* slab = slabs.slab(worker);
    float *ks = slab + ksAt, *kt = slab + ktAt, *vs = slab + vsAt, *qs = slab + qsAt, *ps = slab + psAt;
    float *os = slab + osAt, *rowMaxes = slab + rowMaxesAt, *rowScale = slab + rowScaleAt;
    const int64_t keyOffset = b * lk * stride + h * head_dim;
    gatherRows(ks, dp, k + keyOffset, stride, keyIndex, attended, ap, head_dim);
    transpose(kt, ap, ks, dp, ap, head_dim);
    gatherRows(vs, dp, v + keyOffset, stride, keyIndex, attended, attended, head_dim);

    // Score vectors [0, full) are all attended; the one after (if any) only in its tailLive lanes.
    const int64_t full = attended / kLanes * kLanes;
    const int32_t tailCount = static_cast<int32_t>(attended - full);
    const VecI tailLive = VecI{0, 1, 2, 3, 4, 5, 6, 7} < VecI{tailCount, tailCount, tailCount, tailCount, tailCount,
                                                              tailCount, tailCount, tailCount};
    for (int64_t i0 = rowBegin; i0 < rowEnd; i0 += block) {
      const int64_t rows = std::min(block, rowEnd - i0);
      for (int64_t r = 0; r < rows; ++r) copyRow(qs + r * dp, qHead + (i0 + r) * stride, head_dim);
      product<false>(Product{ps, ap, qs, dp, 1, kt, ap, head_dim, scale}, rows, ap);
      for (int64_t r = 0; r < rows; ++r) {
        float* row = ps + r * ap;
        // Row max over attended keys; like std::max, a NaN score does not become the max (it reaches the
        // sum through exp, so the row comes out NaN). The last vector is masked past `attended`.
        Vec maxLanes = splat(-kInf);
        for (int64_t j = 0; j < full; j += kLanes) {
          const Vec s = load(row + j);
          maxLanes = s > maxLanes ? s : maxLanes;
        }
        if (full < ap) {
          const Vec s = tailLive ? load(row + full) : splat(-kInf);
          maxLanes = s > maxLanes ? s : maxLanes;
        }
        float rowMax = -kInf;
        for (int l = 0; l < kLanes; ++l) rowMax = std::max(rowMax, maxLanes[l]);
        Vec sumLanes = Vec{};
        for (int64_t j = 0; j < full; j += kLanes) {
          const Vec e = expVec(load(row + j) - rowMax);
          store(row + j, e);
          sumLanes += e;
        }
        if (full < ap) {
          const Vec e = tailLive ? expVec(load(row + full) - rowMax) : Vec{};
          store(row + full, e);
          sumLanes += e;
        }
        rowMaxes[r] = rowMax;
        rowScale[r] = horizontalSum(sumLanes);
      }
      // lse = max + ln(sum) and 1 / sum, a vector of rows at a time (lanes past `rows` computed on 1s).
      std::fill(rowScale + rows, rowScale + roundUp(rows, kLanes), 1.0f);
      std::fill(rowMaxes + rows, rowMaxes + roundUp(rows, kLanes), 0.0f);
      for (int64_t r0 = 0; r0 < rows; r0 += kLanes) {
        const Vec sum = load(rowScale + r0), rowLse = load(rowMaxes + r0) + logVec(sum);
        store(rowScale + r0, 1.0f / sum);
        for (int64_t r = r0; r < std::min(rows, r0 + kLanes); ++r) lseHead[i0 + r] = rowLse[r - r0];
      }
      product<false>(Product{os, dp, ps, ap, 1, vs, dp, attended, 1.0f}, rows, dp);
      for (int64_t r = 0; r < rows; ++r) copyRow(outHead + (i0 + r) * stride, os + r * dp, head_dim, rowScale[r]);
    }
  });
}

// Writes (=) dq, dk, dv. One task per (batch, head) owns all of that head's rows of dq, dk and dv.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const int32_t* key_mask, int64_t batch,
                        int64_t heads, int64_t lq, int64_t lk, int64_t head_dim, float scale, Stream pool) {
  if (batch <= 0 || heads <= 0) return;
  const KeyLists keys(key_mask, batch, lk);
  const int64_t stride = heads * head_dim;
  const int64_t dp = roundUp(head_dim, kLanes), lkp = roundUp(lk, kLanes), maxBlock = maxQueryBlock(lkp);
  const int64_t block = evenBlock(lq, maxBlock);  // a bound: the rows actually split are the live ones
  const int64_t tasks = batch * heads, workers = std::min<int64_t>(pool.threads(), tasks);
  // Query rows that receive gradient (lse > -inf), per worker; kept apart from the float slabs.
  std::vector<int64_t> liveRows(static_cast<size_t>(workers * std::max<int64_t>(1, lq)));
  Layout layout;
  const int64_t ksAt = layout.add(lkp * dp);      // [ap, dp] keys (zero rows past `attended`)
  const int64_t ktAt = layout.add(dp * lkp);      // [head_dim, ap] keys, transposed
  const int64_t vsAt = layout.add(lkp * dp);      // [ap, dp] values
  const int64_t vtAt = layout.add(dp * lkp);      // [head_dim, ap] values, transposed
  const int64_t dksAt = layout.add(lk * dp);      // [attended, dp] dK / scale
  const int64_t dvsAt = layout.add(lk * dp);      // [attended, dp] dV
  const int64_t qsAt = layout.add(block * dp);    // [rows, dp] query block
  const int64_t dosAt = layout.add(block * dp);   // [rows, dp] dO block
  const int64_t psAt = layout.add(block * lkp);   // [rows, ap] scores, then probabilities
  const int64_t dssAt = layout.add(block * lkp);  // [rows, ap] dP, then dS
  const int64_t dqsAt = layout.add(block * dp);   // [rows, dp] dQ block
  const int64_t deltaAt = layout.add(block);      // [rows] rowsum(dO * O)
  Slabs slabs(workers, layout.total);

  runTasks(pool, tasks, workers, [&](int64_t worker, int64_t bh) {
    const int64_t b = bh / heads, h = bh % heads;
    const int64_t queryOffset = b * lq * stride + h * head_dim, keyOffset = b * lk * stride + h * head_dim;
    const int64_t attended = keys.count[b];
    const float* lseHead = lse + bh * lq;
    if (attended == 0) {
      // Fully masked: out was 0 and lse -inf, so nothing flows back (whatever dout holds).
      zeroRows(dq + queryOffset, stride, lq, head_dim);
      zeroRows(dk + keyOffset, stride, lk, head_dim);
      zeroRows(dv + keyOffset, stride, lk, head_dim);
      return;
    }
    for (int64_t j = 0; key_mask != nullptr && j < lk; ++j)  // masked keys get 0; the rest are written below
      if (key_mask[b * lk + j] == 0) {
        zeroRows(dk + keyOffset + j * stride, stride, 1, head_dim);
        zeroRows(dv + keyOffset + j * stride, stride, 1, head_dim);
      }
    // Queries with lse = -inf (no attended key) receive and pass no gradient; the others are gathered.
    int64_t* live = liveRows.data() + worker * std::max<int64_t>(1, lq);
    int64_t liveCount = 0;
    for (int64_t i = 0; i < lq; ++i) {
      if (lseHead[i] == -kInf) {
        std::fill(dq + queryOffset + i * stride, dq + queryOffset + i * stride + head_dim, 0.0f);
      } else {
        live[liveCount++] = i;
      }
    }
    const int64_t* keyIndex = keys.index.data() + b * lk;
    const int64_t ap = roundUp(attended, kLanes);
    float* slab = slabs.slab(worker);
    float *ks = slab + ksAt, *kt = slab + ktAt, *vs = slab + vsAt, *vt = slab + vtAt, *dks = slab + dksAt;
    float *dvs = slab + dvsAt, *qs = slab + qsAt, *dos = slab + dosAt, *ps = slab + psAt, *dss = slab + dssAt;
    float *dqs = slab + dqsAt, *delta = slab + deltaAt;
    gatherRows(ks, dp, k + keyOffset, stride, keyIndex, attended, ap, head_dim);
    transpose(kt, ap, ks, dp, ap, head_dim);
    gatherRows(vs, dp, v + keyOffset, stride, keyIndex, attended, ap, head_dim);
    transpose(vt, ap, vs, dp, ap, head_dim);
    if (liveCount == 0) {  // no query to take gradient from (only with an lse of -inf where keys attend)
      std::fill(dks, dks + attended * dp, 0.0f);
      std::fill(dvs, dvs + attended * dp, 0.0f);
    }

    const int64_t liveBlock = evenBlock(liveCount, block);
    for (int64_t t0 = 0; t0 < liveCount; t0 += liveBlock) {
      const int64_t rows = std::min(liveBlock, liveCount - t0);
      const int64_t* rowIndex = live + t0;
      gatherRows(qs, dp, q + queryOffset, stride, rowIndex, rows, rows, head_dim);
      gatherRows(dos, dp, dout + queryOffset, stride, rowIndex, rows, rows, head_dim);
      for (int64_t r = 0; r < rows; ++r) {
        const float* o = out + queryOffset + rowIndex[r] * stride;
        const float* g = dos + r * dp;
        Vec lanes = Vec{};
        int64_t d = 0;
        for (; d + kLanes <= head_dim; d += kLanes) lanes = fmadd(load(g + d), load(o + d), lanes);
        float sum = horizontalSum(lanes);
        for (; d < head_dim; ++d) sum += g[d] * o[d];
        delta[r] = sum;
      }
      product<false>(Product{ps, ap, qs, dp, 1, kt, ap, head_dim, scale}, rows, ap);
      product<false>(Product{dss, ap, dos, dp, 1, vt, ap, head_dim, 1.0f}, rows, ap);
      // P and dS; columns past `attended` hold junk that no product below reads.
      for (int64_t r = 0; r < rows; ++r) {
        const float rowLse = lseHead[rowIndex[r]], rowDelta = delta[r];
        float* p = ps + r * ap;
        float* ds = dss + r * ap;
        for (int64_t j = 0; j < ap; j += kLanes) {
          const Vec prob = expVec(load(p + j) - rowLse);
          store(p + j, prob);
          store(ds + j, prob * (load(ds + j) - rowDelta));
        }
      }
      product<false>(Product{dqs, dp, dss, ap, 1, ks, dp, attended, scale}, rows, dp);
      for (int64_t r = 0; r < rows; ++r) copyRow(dq + queryOffset + rowIndex[r] * stride, dqs + r * dp, head_dim);
      // dK and dV over the query blocks in order: the first block assigns, the others add.
      const Product dkPart{dks, dp, dss, 1, ap, qs, dp, rows, 1.0f}, dvPart{dvs, dp, ps, 1, ap, dos, dp, rows, 1.0f};
      if (t0 == 0) {
        product<false>(dkPart, attended, dp);
        product<false>(dvPart, attended, dp);
      } else {
        product<true>(dkPart, attended, dp);
        product<true>(dvPart, attended, dp);
      }
    }
    for (int64_t t = 0; t < attended; ++t) {
      copyRow(dk + keyOffset + keyIndex[t] * stride, dks + t * dp, head_dim, scale);
      copyRow(dv + keyOffset + keyIndex[t] * stride, dvs + t * dp, head_dim);
    }
  });
}

}  // namespace selfe::cpu
