// CUDA adaLN-Zero kernels (see selfe/kernels/adaln.h), f32 and bf16 storage, fp32 arithmetic; the gated
// residual also adds a bf16 branch to an f32 stream (mixed precision). The per-sample sums of the backwards
// (over tokens) go through the deterministic two-pass column sums.
#include "check.cuh"
#include "column_sum.cuh"
#include "selfe/kernels/adaln.h"

namespace selfe::cuda {

namespace {
constexpr int kThreads = 256;

template <class T>
__global__ void modulateForward(T* y, const T* x, const T* shift, const T* scale, int64_t tokens, int64_t dim, int64_t n) {
  SELFE_GRID_STRIDE(i, n) {
    const int64_t vector = (i / (tokens * dim)) * dim + i % dim;
    y[i] = fromFloat<T>(toFloat(x[i]) * (1.0f + toFloat(scale[vector])) + toFloat(shift[vector]));
  }
}

template <class T>
__global__ void modulateBackwardInput(T* dx, const T* dy, const T* scale, int64_t tokens, int64_t dim, int64_t n) {
  SELFE_GRID_STRIDE(i, n) {
    const int64_t vector = (i / (tokens * dim)) * dim + i % dim;
    dx[i] = fromFloat<T>(toFloat(dy[i]) * (1.0f + toFloat(scale[vector])));
  }
}

// The stream (out, x, gate) in T, the branch in B: T, or bf16 under an f32 stream.
template <class T, class B>
__global__ void gatedResidualForward(T* out, const T* x, const T* gate, const B* branch, int64_t tokens, int64_t dim,
                                     int64_t n) {
  SELFE_GRID_STRIDE(i, n) {
    const int64_t vector = (i / (tokens * dim)) * dim + i % dim;
    out[i] = fromFloat<T>(toFloat(x[i]) + toFloat(gate[vector]) * toFloat(branch[i]));
  }
}

template <class T, class B>
__global__ void gatedResidualBackwardBranch(B* dbranch, const T* dout, const T* gate, int64_t tokens, int64_t dim,
                                            int64_t n) {
  SELFE_GRID_STRIDE(i, n) {
    const int64_t vector = (i / (tokens * dim)) * dim + i % dim;
    dbranch[i] = fromFloat<B>(toFloat(dout[i]) * toFloat(gate[vector]));
  }
}

// dshift[b] = sum_tokens dy, dscale[b] = sum_tokens dy x.
template <class T>
struct ModulateTerms {
  const T* dy;
  const T* x;
  int64_t tokens, dim;
  __device__ void operator()(int64_t b, int64_t l, int64_t c, float* terms) const {
    const int64_t i = (b * tokens + l) * dim + c;
    const float g = toFloat(dy[i]);
    terms[0] = g;
    terms[1] = g * toFloat(x[i]);
  }
};

// dgate[b] = sum_tokens dout branch.
template <class T, class B>
struct GateTerms {
  const T* dout;
  const B* branch;
  int64_t tokens, dim;
  __device__ void operator()(int64_t b, int64_t l, int64_t c, float* terms) const {
    const int64_t i = (b * tokens + l) * dim + c;
    terms[0] = toFloat(dout[i]) * toFloat(branch[i]);
  }
};

// Stores sum s of sample b, column c into outputs[s][b, c].
template <class T>
struct PerSampleStore {
  T* first;
  T* second;
  int64_t dim;
  __device__ void operator()(int64_t b, int64_t c, int s, float sum) const {
    (s == 0 ? first : second)[b * dim + c] = fromFloat<T>(sum);
  }
};

template <class T>
void modulateForwardLaunch(T* y, const T* x, const T* shift, const T* scale, int64_t batch, int64_t tokens, int64_t dim,
                           Stream stream) {
  const int64_t n = batch * tokens * dim;
  if (n == 0) return;
  modulateForward<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(y, x, shift, scale, tokens, dim, n);
  checkLaunch("modulate");
}

template <class T>
void modulateBackwardLaunch(T* dx, T* dshift, T* dscale, const T* dy, const T* x, const T* scale, int64_t batch,
                            int64_t tokens, int64_t dim, Stream stream) {
  const int64_t n = batch * tokens * dim;
  if (n > 0) {
    modulateBackwardInput<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(dx, dy, scale, tokens, dim, n);
    checkLaunch("modulateBackward");
  }
  columnSums<2>(ModulateTerms<T>{dy, x, tokens, dim}, PerSampleStore<T>{dshift, dscale, dim}, batch, tokens, dim, stream,
                "modulateBackward");
}

template <class T, class B>
void gatedResidualForwardLaunch(T* out, const T* x, const T* gate, const B* branch, int64_t batch, int64_t tokens,
                                int64_t dim, Stream stream) {
  const int64_t n = batch * tokens * dim;
  if (n == 0) return;
  gatedResidualForward<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(out, x, gate, branch, tokens, dim, n);
  checkLaunch("gatedResidual");
}

template <class T, class B>
void gatedResidualBackwardLaunch(T* dgate, B* dbranch, const T* dout, const T* gate, const B* branch, int64_t batch,
                                 int64_t tokens, int64_t dim, Stream stream) {
  const int64_t n = batch * tokens * dim;
  if (n > 0) {
    gatedResidualBackwardBranch<<<gridFor(stream, n, kThreads), kThreads, 0, stream>>>(dbranch, dout, gate, tokens, dim, n);
    checkLaunch("gatedResidualBackward");
  }
  columnSums<1>(GateTerms<T, B>{dout, branch, tokens, dim}, PerSampleStore<T>{dgate, dgate, dim}, batch, tokens, dim,
                stream, "gatedResidualBackward");
}
}  // namespace

void modulate_forward(float* y, const float* x, const float* shift, const float* scale, int64_t batch, int64_t tokens,
                      int64_t dim, Stream stream) {
  modulateForwardLaunch(y, x, shift, scale, batch, tokens, dim, stream);
}
void modulate_forward(bf16* y, const bf16* x, const bf16* shift, const bf16* scale, int64_t batch, int64_t tokens,
                      int64_t dim, Stream stream) {
  modulateForwardLaunch(dev(y), dev(x), dev(shift), dev(scale), batch, tokens, dim, stream);
}

// Writes (=) dx = dy (1 + scale), dshift[b] = sum_tokens dy, dscale[b] = sum_tokens dy x.
void modulate_backward(float* dx, float* dshift, float* dscale, const float* dy, const float* x, const float* scale,
                       int64_t batch, int64_t tokens, int64_t dim, Stream stream) {
  modulateBackwardLaunch(dx, dshift, dscale, dy, x, scale, batch, tokens, dim, stream);
}
void modulate_backward(bf16* dx, bf16* dshift, bf16* dscale, const bf16* dy, const bf16* x, const bf16* scale,
                       int64_t batch, int64_t tokens, int64_t dim, Stream stream) {
  modulateBackwardLaunch(dev(dx), dev(dshift), dev(dscale), dev(dy), dev(x), dev(scale), batch, tokens, dim, stream);
}

void gated_residual_forward(float* out, const float* x, const float* gate, const float* branch, int64_t batch,
                            int64_t tokens, int64_t dim, Stream stream) {
  gatedResidualForwardLaunch(out, x, gate, branch, batch, tokens, dim, stream);
}
void gated_residual_forward(bf16* out, const bf16* x, const bf16* gate, const bf16* branch, int64_t batch,
                            int64_t tokens, int64_t dim, Stream stream) {
  gatedResidualForwardLaunch(dev(out), dev(x), dev(gate), dev(branch), batch, tokens, dim, stream);
}

// Writes (=) dgate[b] = sum_tokens dout branch, dbranch = dout gate[b].
void gated_residual_backward(float* dgate, float* dbranch, const float* dout, const float* gate, const float* branch,
                             int64_t batch, int64_t tokens, int64_t dim, Stream stream) {
  gatedResidualBackwardLaunch(dgate, dbranch, dout, gate, branch, batch, tokens, dim, stream);
}
void gated_residual_backward(bf16* dgate, bf16* dbranch, const bf16* dout, const bf16* gate, const bf16* branch,
                             int64_t batch, int64_t tokens, int64_t dim, Stream stream) {
  gatedResidualBackwardLaunch(dev(dgate), dev(dbranch), dev(dout), dev(gate), dev(branch), batch, tokens, dim, stream);
}

// An f32 stream and gate with a bf16 branch (mixed precision): the branch's cast back to f32 folded in.
void gated_residual_forward(float* out, const float* x, const float* gate, const bf16* branch, int64_t batch,
                            int64_t tokens, int64_t dim, Stream stream) {
  gatedResidualForwardLaunch(out, x, gate, dev(branch), batch, tokens, dim, stream);
}
void gated_residual_backward(float* dgate, bf16* dbranch, const float* dout, const float* gate, const bf16* branch,
                             int64_t batch, int64_t tokens, int64_t dim, Stream stream) {
  gatedResidualBackwardLaunch(dgate, dev(dbranch), dout, gate, dev(branch), batch, tokens, dim, stream);
}

}  // namespace selfe::cuda
