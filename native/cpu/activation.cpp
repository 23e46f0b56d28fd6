// CPU activation kernels (see selfe/kernels/activation.h).
#include "selfe/kernels/activation.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "pool.h"

namespace selfe::cpu {

namespace {
constexpr int64_t kGrain = 1 << 14;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;
// gelu'(x) is flat to float precision beyond |x| = 10; clamping there keeps exp(-2u) below FLT_MAX.
constexpr float kGeluSaturation = 10.0f;

// e^x for the sigmoids, branch-free so the loops vectorise (libm's expf is a scalar call): Cephes' range
// reduction x = n ln2 + r and degree-6 polynomial, within 1 ulp of e^x. Below -87 the result saturates at
// ~1.6e-38 (2^n must stay a normal float); from ~88.4 it is +inf (2^128), so sigmoid(-huge) is exactly 0.
float exponential(float x) {
  x = std::clamp(x, -87.0f, 89.0f);
  // Round to nearest by adding 1.5 * 2^23 (std::floor would not vectorise).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return (p * r * r + r + 1.0f) * scale;
}

float sigmoid(float x) { return 1.0f / (1.0f + exponential(-x)); }

// GELU's tanh approximation 0.5 x (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3), is evaluated as
// x sigmoid(2u): the same function, without the cancellation of 1 + tanh u in float for negative x.
float geluArgument(float x) { return 2.0f * kSqrt2OverPi * (x + kCubic * x * x * x); }
}  // namespace

void gelu_forward(float* y, const float* x, int64_t n, Stream pool) {
  pool.parallelFor(n, kGrain, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) y[i] = x[i] * sigmoid(geluArgument(x[i]));
  });
}

// Writes (=) dx = dy * gelu'(x), gelu'(x) = s (1 + 2 x (1 - s) u'), s = sigmoid(2u), 1 - s = e s, e = exp(-2u).
void gelu_backward(float* dx, const float* dy, const float* x, int64_t n, Stream pool) {
  pool.parallelFor(n, kGrain, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float v = std::clamp(x[i], -kGeluSaturation, kGeluSaturation);
      const float e = exponential(-geluArgument(v));
      const float s = 1.0f / (1.0f + e);
      const float slope = kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
      dx[i] = dy[i] * s * (1.0f + 2.0f * v * (e * s) * slope);
    }
  });
}

void silu_forward(float* y, const float* x, int64_t n, Stream pool) {
  pool.parallelFor(n, kGrain, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) y[i] = x[i] * sigmoid(x[i]);
  });
}

// Writes (=) dx = dy * s (1 + x (1 - s)), s = sigmoid(x).
void silu_backward(float* dx, const float* dy, const float* x, int64_t n, Stream pool) {
  pool.parallelFor(n, kGrain, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float s = sigmoid(x[i]);
      dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
  });
}

}  // namespace selfe::cpu
