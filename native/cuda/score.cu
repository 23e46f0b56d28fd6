// CUDA score combinations of the Self-E critique and of guided sampling (see selfe/kernels/score.h). Row norms
// are fp32 sums over fixed column chunks, combined per row in order (deterministic); the fused
// self-evaluation target recomputes its vector on the fly in both passes and never stores it.
#include "check.cuh"
#include "selfe/kernels/score.h"

namespace selfe::cuda {

namespace {
constexpr int kThreads = 256;
// Columns per partial sum of a row norm, so a few rows of many columns still fill the device.
constexpr int64_t kNormChunk = 1 << 13;

// The vector a row norm is taken of and the reference whose norm it is rescaled to.
struct PlainPair {
  const float* x;
  const float* ref;
  __device__ float value(int64_t i) const { return x[i]; }
  __device__ float reference(int64_t i) const { return ref[i]; }
};

struct GuidedPair {
  const float* vUncond;
  const float* vCond;
  float omega;
  __device__ float value(int64_t i) const { return vUncond[i] + omega * (vCond[i] - vUncond[i]); }
  __device__ float reference(int64_t i) const { return vCond[i]; }
};

// x_tar = x0 + lambda (x0_hat - d), d = g_u - g_c, or k (g_u - g_c) + (1 - k)(g_f - g_c) with the fake score.
struct TargetPair {
  const float* x0;
  const float* x0Hat;
  const float* lambda;
  const float* gUncond;
  const float* gCond;
  const float* gFake;
  float k;
  int64_t cols;
  __device__ float value(int64_t i) const {
    const float cond = gCond[i];
    const float d = gFake == nullptr ? gUncond[i] - cond : k * (gUncond[i] - cond) + (1.0f - k) * (gFake[i] - cond);
    return x0[i] + lambda[i / cols] * (x0Hat[i] - d);
  }
  __device__ float reference(int64_t i) const { return x0[i]; }
};

// partials[row, chunk] = (|value|^2, |reference|^2) over the chunk's columns; block = (row, chunk).
template <class Pair>
__global__ void rowNormPartials(float* partials, Pair pair, int64_t cols, int64_t chunks) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int64_t begin = chunk * kNormChunk, end = min(cols, begin + kNormChunk);
  float xx = 0.0f, rr = 0.0f;
  for (int64_t c = begin + threadIdx.x; c < end; c += blockDim.x) {
    const float v = pair.value(row * cols + c), r = pair.reference(row * cols + c);
    xx += v * v;
    rr += r * r;
  }
  xx = blockSum(xx, shared);
  rr = blockSum(rr, shared);
  if (threadIdx.x == 0) {
    partials[2 * blockIdx.x] = xx;
    partials[2 * blockIdx.x + 1] = rr;
  }
}

// factor[row] = |reference| / |value| (`whenZero` where |value| = 0).
__global__ void rowFactors(float* factor, const float* partials, int64_t rows, int64_t chunks, float whenZero) {
  SELFE_GRID_STRIDE(row, rows) {
    float xx = 0.0f, rr = 0.0f;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      xx += partials[2 * (row * chunks + chunk)];
      rr += partials[2 * (row * chunks + chunk) + 1];
    }
    factor[row] = xx == 0.0f ? whenZero : sqrtf(rr) / sqrtf(xx);
  }
}

template <class Pair>
__global__ void scaleRows(float* out, Pair pair, const float* factor, int64_t cols, int64_t n) {
  SELFE_GRID_STRIDE(i, n) out[i] = pair.value(i) * factor[i / cols];
}

__global__ void selfEvaluationApply(float* out, TargetPair target, const float* x_t, const float* t, const float* factor,
                                    int64_t n) {
  SELFE_GRID_STRIDE(i, n) {
    const int64_t row = i / target.cols;
    out[i] = (x_t[i] - target.value(i) * factor[row]) / t[row];
  }
}

// Scratch holding one factor per row, computed from `pair`.
template <class Pair>
void rowFactorsInto(float* factor, Pair pair, int64_t rows, int64_t cols, float whenZero, Stream stream,
                    const char* name) {
  const int64_t chunks = std::max<int64_t>(1, (cols + kNormChunk - 1) / kNormChunk);
  Scratch partials(stream, static_cast<size_t>(rows * chunks * 2) * sizeof(float));
  rowNormPartials<<<static_cast<unsigned int>(rows * chunks), kThreads, 0, stream>>>(partials.as<float>(), pair, cols,
                                                                                    chunks);
  checkLaunch(name);
  rowFactors<<<gridFor(stream, rows, kThreads), kThreads, 0, stream>>>(factor, partials.as<float>(), rows, chunks, whenZero);
  checkLaunch(name);
}

template <class Pair>
void renormRows(float* out, Pair pair, int64_t rows, int64_t cols, float whenZero, Stream stream, const char* name) {
  if (rows * cols == 0) return;
  Scratch factor(stream, static_cast<size_t>(rows) * sizeof(float));
  rowFactorsInto(factor.as<float>(), pair, rows, cols, whenZero, stream, name);
  scaleRows<<<gridFor(stream, rows * cols, kThreads), kThreads, 0, stream>>>(out, pair, factor.as<float>(), cols, rows * cols);
  checkLaunch(name);
}

__global__ void directionKernel(float* out, const float* gUncond, const float* gCond, int64_t n) {
  SELFE_GRID_STRIDE(i, n) out[i] = gUncond[i] - gCond[i];
}

__global__ void fakeMixKernel(float* out, const float* gUncond, const float* gCond, const float* gFake, float k, int64_t n) {
  SELFE_GRID_STRIDE(i, n) out[i] = k * (gUncond[i] - gCond[i]) + (1.0f - k) * (gFake[i] - gCond[i]);
}

__global__ void velocityKernel(float* out, const float* x_t, const float* x_renorm, const float* t, int64_t cols, int64_t n) {
  SELFE_GRID_STRIDE(i, n) out[i] = (x_t[i] - x_renorm[i]) / t[i / cols];
}

__global__ void cfgKernel(float* out, const float* vUncond, const float* vCond, float omega, int64_t n) {
  SELFE_GRID_STRIDE(i, n) out[i] = vUncond[i] + omega * (vCond[i] - vUncond[i]);
}
}  // namespace

void classifier_score_direction(float* out, const float* g_uncond, const float* g_cond, int64_t n, Stream stream) {
  if (n == 0) return;
  directionKernel<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(out, g_uncond, g_cond, n);
  checkLaunch("classifierScoreDirection");
}

void fake_score_mix(float* out, const float* g_uncond, const float* g_cond, const float* g_fake, float k, int64_t n,
                    Stream stream) {
  if (n == 0) return;
  fakeMixKernel<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(out, g_uncond, g_cond, g_fake, k, n);
  checkLaunch("fakeScoreMix");
}

void energy_preserving_renorm(float* out, const float* x, const float* ref, int64_t rows, int64_t cols, Stream stream) {
  renormRows(out, PlainPair{x, ref}, rows, cols, 0.0f, stream, "energyPreservingRenorm");
}

void velocity_target(float* out, const float* x_t, const float* x_renorm, const float* t, int64_t rows, int64_t cols,
                     Stream stream) {
  if (rows * cols == 0) return;
  velocityKernel<<<gridFor(stream, rows * cols, kThreads), kThreads, 0, stream>>>(out, x_t, x_renorm, t, cols, rows * cols);
  checkLaunch("velocityTarget");
}

void self_evaluation_target(float* out, const float* x0, const float* x0_hat, const float* x_t, const float* t,
                            const float* lambda, const float* g_uncond, const float* g_cond, const float* g_fake, float k,
                            int64_t rows, int64_t cols, Stream stream) {
  if (rows * cols == 0) return;
  const TargetPair target{x0, x0_hat, lambda, g_uncond, g_cond, g_fake, k, cols};
  Scratch factor(stream, static_cast<size_t>(rows) * sizeof(float));
  rowFactorsInto(factor.as<float>(), target, rows, cols, 0.0f, stream, "selfEvaluationTarget");
  selfEvaluationApply<<<gridFor(stream, rows * cols, kThreads), kThreads, 0, stream>>>(out, target, x_t, t,
                                                                                      factor.as<float>(), rows * cols);
  checkLaunch("selfEvaluationTarget");
}

void cfg_combine(float* out, const float* v_uncond, const float* v_cond, float omega, int64_t n, Stream stream) {
  if (n == 0) return;
  cfgKernel<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(out, v_uncond, v_cond, omega, n);
  checkLaunch("cfgCombine");
}

void energy_preserving_cfg(float* out, const float* v_uncond, const float* v_cond, float omega, int64_t rows,
                           int64_t cols, Stream stream) {
  // A zero guided velocity stays as it is rather than dividing by its zero norm.
  renormRows(out, GuidedPair{v_uncond, v_cond, omega}, rows, cols, 1.0f, stream, "energyPreservingCfg");
}

}  // namespace selfe::cuda
