// Runs the CUDA kernel files (native/cuda/{layernorm,adaln,optim,activation,elementwise,reduce}.cu, launches
// rewritten for the host) on the CPU emulator of selfe_cuda_emu.h and checks every launcher against the CPU
// backend's (native/cpu) on random shapes that cross the kernels' warps, blocks, grid strides, column-sum
// chunks and optimizer tables: f32 to ~1e-5, bf16 storage to ~1e-2 against the f32 CPU kernel on the same
// bf16-rounded inputs. Device buffers sit between guard bytes that must stay untouched, outputs start as
// NaN (an element never written shows), scratch memory starts as NaN too. Built and run by
// test/kernels/cudaEmulated.test.ts; prints "all N checks passed" and exits 0, or lists the failures.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>  // the emulator's (test/native/cuda_emu/include)

#include "cpu/pool.h"
#include "cuda/context.h"
#include "selfe/dtype.h"
#include "selfe/kernels/activation.h"
#include "selfe/kernels/adaln.h"
#include "selfe/kernels/elementwise.h"
#include "selfe/kernels/layernorm.h"
#include "selfe/kernels/optim.h"
#include "selfe/kernels/reduce.h"

namespace {

using selfe::bf16;
using selfe::bf16FromFloat;
using selfe::floatFromBf16;

// Scratch memory from the host heap, NaN-filled; every block must come back.
class HostScratch : public selfe::cuda::ScratchPool {
 public:
  void* allocate(size_t bytes, size_t* rounded) override {
    *rounded = (bytes + 255) / 256 * 256;
    void* p = std::aligned_alloc(256, *rounded);
    std::memset(p, 0xff, *rounded);
    ++live;
    return p;
  }
  void release(void* ptr, size_t) override {
    std::free(ptr);
    --live;
  }
  long live = 0;
};

HostScratch scratch;
selfe::cuda::Context context;
selfe::cuda::Stream stream{reinterpret_cast<CUstream_st*>(0x5e1fe), &context};
selfe::cpu::Pool pool(1);
std::mt19937 rng(20260501);

int checks = 0, failures = 0;
std::string where;  // the case being run, for failure messages

void failed(const std::string& what) {
  ++failures;
  std::printf("FAILED %s: %s\n", where.c_str(), what.c_str());
}

// Device memory: 256-byte aligned (as cudaMalloc), between kGuard guard bytes on each side, contents NaN bytes.
template <class E>
class Device {
 public:
  static constexpr size_t kGuard = 4096;
  explicit Device(size_t n) : n_(n), bytes_(2 * kGuard + (n * sizeof(E) + 255) / 256 * 256) {
    raw_ = static_cast<unsigned char*>(std::aligned_alloc(256, bytes_));
    std::memset(raw_, 0xff, bytes_);
  }
  ~Device() {
    const unsigned char* end = raw_ + kGuard + n_ * sizeof(E);
    for (size_t i = 0; i < kGuard; ++i)
      if (raw_[i] != 0xff || end[i] != 0xff) {
        failed("a kernel wrote outside a buffer");
        break;
      }
    std::free(raw_);
  }
  Device(const Device&) = delete;
  E* data() { return n_ == 0 ? nullptr : reinterpret_cast<E*>(raw_ + kGuard); }
  size_t size() const { return n_; }
  E& operator[](size_t i) { return data()[i]; }

 private:
  size_t n_, bytes_;
  unsigned char* raw_;
};

std::vector<float> normal(size_t n, float scale = 1.0f, float mean = 0.0f) {
  std::normal_distribution<float> d(mean, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<float> roundedToBf16(std::vector<float> v) {
  for (auto& x : v) x = floatFromBf16(bf16FromFloat(x));
  return v;
}

// A device copy of host values, f32 or bf16.
template <class E>
Device<E>* upload(const std::vector<float>& v) {
  auto* d = new Device<E>(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if constexpr (std::is_same_v<E, bf16>) (*d)[i] = bf16FromFloat(v[i]);
    else (*d)[i] = v[i];
  }
  return d;
}

template <class E>
std::vector<float> download(Device<E>& d) {
  std::vector<float> v(d.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if constexpr (std::is_same_v<E, bf16>) v[i] = floatFromBf16(d[i]);
    else v[i] = d[i];
  }
  return v;
}

// |actual - expected| <= tol (rms(expected) + |expected|) elementwise; NaN only where expected is NaN.
void expectClose(const char* what, const std::vector<float>& actual, const std::vector<float>& expected, double tol) {
  ++checks;
  if (actual.size() != expected.size()) return failed(std::string(what) + ": size differs");
  double sq = 0;
  for (float e : expected) sq += std::isfinite(e) ? double(e) * e : 0;
  const double rms = std::sqrt(sq / std::max<size_t>(1, expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    const double a = actual[i], e = expected[i];
    if (std::isnan(e) && std::isnan(a)) continue;
    if (!(std::fabs(a - e) <= tol * (rms + std::fabs(e)))) {
      char line[256];
      std::snprintf(line, sizeof line, "%s[%zu] is %.9g, expected %.9g (rms %.3g, tolerance %.1g)", what, i, a, e, rms, tol);
      return failed(line);
    }
  }
}

constexpr double kF32 = 2e-5;
constexpr double kBf16 = 1e-2;

template <class E>
constexpr double tolerance() {
  return std::is_same_v<E, bf16> ? kBf16 : kF32;
}

template <class E>
std::vector<float> inputs(size_t n, float scale = 1.0f, float mean = 0.0f) {
  auto v = normal(n, scale, mean);
  return std::is_same_v<E, bf16> ? roundedToBf16(v) : v;
}

// ---- LayerNorm and LayerNorm + modulate --------------------------------------------------------------------

template <class E>
void layerNorm(int64_t rows, int64_t dim, bool affine) {
  const size_t n = static_cast<size_t>(rows * dim);
  const auto x = inputs<E>(n, 2.0f, 0.5f), dy = inputs<E>(n);
  const auto w = inputs<E>(affine ? dim : 0, 0.5f, 1.0f), b = inputs<E>(affine ? dim : 0);
  // CPU, f32, on the same (rounded) values.
  std::vector<float> y(n), mean(rows), rstd(rows), dx(n), dw(affine ? dim : 0), db(affine ? dim : 0);
  selfe::cpu::layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), affine ? w.data() : nullptr,
                                affine ? b.data() : nullptr, rows, dim, 1e-5f, pool);
  selfe::cpu::layernorm_backward(dx.data(), affine ? dw.data() : nullptr, affine ? db.data() : nullptr, dy.data(), x.data(),
                                 mean.data(), rstd.data(), affine ? w.data() : nullptr, rows, dim, pool);
  std::unique_ptr<Device<E>> dX(upload<E>(x)), dDy(upload<E>(dy)), dW(upload<E>(w)), dB(upload<E>(b));
  Device<E> dY(n), dDx(n), dDw(affine ? dim : 0), dDb(affine ? dim : 0);
  Device<float> dMean(rows), dRstd(rows);
  selfe::cuda::layernorm_forward(dY.data(), dMean.data(), dRstd.data(), dX->data(), affine ? dW->data() : nullptr,
                                 affine ? dB->data() : nullptr, rows, dim, 1e-5f, stream);
  expectClose("layerNorm y", download(dY), y, tolerance<E>());
  expectClose("layerNorm mean", download(dMean), mean, kF32);
  expectClose("layerNorm rstd", download(dRstd), rstd, kF32);
  // The backward reads the CPU's statistics, so that it is checked on its own.
  std::unique_ptr<Device<float>> cMean(upload<float>(mean)), cRstd(upload<float>(rstd));
  selfe::cuda::layernorm_backward(dDx.data(), affine ? dDw.data() : nullptr, affine ? dDb.data() : nullptr, dDy->data(),
                                  dX->data(), cMean->data(), cRstd->data(), affine ? dW->data() : nullptr, rows, dim, stream);
  expectClose("layerNormBackward dx", download(dDx), dx, tolerance<E>());
  if (affine) {
    expectClose("layerNormBackward dweight", download(dDw), dw, tolerance<E>());
    expectClose("layerNormBackward dbias", download(dDb), db, tolerance<E>());
  }
}

template <class E>
void layerNormModulate(int64_t batch, int64_t tokens, int64_t dim) {
  const int64_t rows = batch * tokens;
  const size_t n = static_cast<size_t>(rows * dim), per = static_cast<size_t>(batch * dim);
  const auto x = inputs<E>(n, 1.5f, -0.3f), dy = inputs<E>(n), shift = inputs<E>(per), scale = inputs<E>(per, 0.3f);
  std::vector<float> y(n), mean(rows), rstd(rows), dx(n), dshift(per), dscale(per);
  selfe::cpu::layernorm_modulate_forward(y.data(), mean.data(), rstd.data(), x.data(), shift.data(), scale.data(), batch,
                                         tokens, dim, 1e-6f, pool);
  selfe::cpu::layernorm_modulate_backward(dx.data(), dshift.data(), dscale.data(), dy.data(), x.data(), mean.data(),
                                          rstd.data(), scale.data(), batch, tokens, dim, pool);
  std::unique_ptr<Device<E>> dX(upload<E>(x)), dDy(upload<E>(dy)), dShift(upload<E>(shift)), dScale(upload<E>(scale));
  Device<E> dY(n), dDx(n), dDshift(per), dDscale(per);
  Device<float> dMean(rows), dRstd(rows);
  selfe::cuda::layernorm_modulate_forward(dY.data(), dMean.data(), dRstd.data(), dX->data(), dShift->data(),
                                          dScale->data(), batch, tokens, dim, 1e-6f, stream);
  expectClose("layerNormModulate y", download(dY), y, tolerance<E>());
  expectClose("layerNormModulate mean", download(dMean), mean, kF32);
  expectClose("layerNormModulate rstd", download(dRstd), rstd, kF32);
  std::unique_ptr<Device<float>> cMean(upload<float>(mean)), cRstd(upload<float>(rstd));
  selfe::cuda::layernorm_modulate_backward(dDx.data(), dDshift.data(), dDscale.data(), dDy->data(), dX->data(),
                                           cMean->data(), cRstd->data(), dScale->data(), batch, tokens, dim, stream);
  expectClose("layerNormModulateBackward dx", download(dDx), dx, tolerance<E>());
  expectClose("layerNormModulateBackward dshift", download(dDshift), dshift, tolerance<E>());
  expectClose("layerNormModulateBackward dscale", download(dDscale), dscale, tolerance<E>());
}

// ---- adaLN ---------------------------------------------------------------------------------------------------

template <class E>
void adaln(int64_t batch, int64_t tokens, int64_t dim) {
  const size_t n = static_cast<size_t>(batch * tokens * dim), per = static_cast<size_t>(batch * dim);
  const auto x = inputs<E>(n), dy = inputs<E>(n), branch = inputs<E>(n);
  const auto shift = inputs<E>(per), scale = inputs<E>(per, 0.3f), gate = inputs<E>(per);
  std::vector<float> y(n), dx(n), dshift(per), dscale(per), out(n), dgate(per), dbranch(n);
  selfe::cpu::modulate_forward(y.data(), x.data(), shift.data(), scale.data(), batch, tokens, dim, pool);
  selfe::cpu::modulate_backward(dx.data(), dshift.data(), dscale.data(), dy.data(), x.data(), scale.data(), batch, tokens,
                                dim, pool);
  selfe::cpu::gated_residual_forward(out.data(), x.data(), gate.data(), branch.data(), batch, tokens, dim, pool);
  selfe::cpu::gated_residual_backward(dgate.data(), dbranch.data(), dy.data(), gate.data(), branch.data(), batch, tokens,
                                      dim, pool);
  std::unique_ptr<Device<E>> dX(upload<E>(x)), dDy(upload<E>(dy)), dBranch(upload<E>(branch)), dShift(upload<E>(shift)),
      dScale(upload<E>(scale)), dGate(upload<E>(gate));
  Device<E> dY(n), dDx(n), dDshift(per), dDscale(per), dOut(n), dDgate(per), dDbranch(n);
  selfe::cuda::modulate_forward(dY.data(), dX->data(), dShift->data(), dScale->data(), batch, tokens, dim, stream);
  expectClose("modulate y", download(dY), y, tolerance<E>());
  selfe::cuda::modulate_backward(dDx.data(), dDshift.data(), dDscale.data(), dDy->data(), dX->data(), dScale->data(), batch,
                                 tokens, dim, stream);
  expectClose("modulateBackward dx", download(dDx), dx, tolerance<E>());
  expectClose("modulateBackward dshift", download(dDshift), dshift, tolerance<E>());
  expectClose("modulateBackward dscale", download(dDscale), dscale, tolerance<E>());
  selfe::cuda::gated_residual_forward(dOut.data(), dX->data(), dGate->data(), dBranch->data(), batch, tokens, dim, stream);
  expectClose("gatedResidual out", download(dOut), out, tolerance<E>());
  selfe::cuda::gated_residual_backward(dDgate.data(), dDbranch.data(), dDy->data(), dGate->data(), dBranch->data(), batch,
                                       tokens, dim, stream);
  expectClose("gatedResidualBackward dgate", download(dDgate), dgate, tolerance<E>());
  expectClose("gatedResidualBackward dbranch", download(dDbranch), dbranch, tolerance<E>());
}

// ---- optimizer -----------------------------------------------------------------------------------------------

// A list of tensors in one device arena, each starting 256-byte aligned, or misaligned by `skew[t]` floats.
struct List {
  std::vector<int64_t> sizes;
  std::vector<int64_t> offsets;
  std::unique_ptr<Device<float>> arena;
  std::vector<float*> pointers;
  List(const std::vector<int64_t>& sizes_, const std::vector<int>& skew) : sizes(sizes_) {
    int64_t at = 0;
    for (size_t t = 0; t < sizes.size(); ++t) {
      at = (at + 63) / 64 * 64 + (t < skew.size() ? skew[t] : 0);
      offsets.push_back(at);
      at += sizes[t];
    }
    arena.reset(new Device<float>(static_cast<size_t>(std::max<int64_t>(at, 1))));
    for (size_t t = 0; t < sizes.size(); ++t) pointers.push_back(arena->data() + offsets[t]);
  }
  void fill(const std::vector<float>& flat) {
    size_t k = 0;
    for (size_t t = 0; t < sizes.size(); ++t)
      for (int64_t i = 0; i < sizes[t]; ++i) pointers[t][i] = flat[k++];
  }
  std::vector<float> flat() const {
    std::vector<float> v;
    for (size_t t = 0; t < sizes.size(); ++t) v.insert(v.end(), pointers[t], pointers[t] + sizes[t]);
    return v;
  }
  selfe::TensorList list() { return {pointers.data(), sizes.data(), static_cast<int32_t>(sizes.size())}; }
  selfe::ConstTensorList constList() {
    return {const_cast<const float* const*>(pointers.data()), sizes.data(), static_cast<int32_t>(sizes.size())};
  }
};

void optimizer(const std::vector<int64_t>& sizes, const std::vector<int>& skew, int64_t step) {
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  const auto p0 = normal(total), g = normal(total, 0.1f), m0 = normal(total, 0.01f), e0 = normal(total);
  auto v0 = normal(total, 0.001f);
  for (auto& x : v0) x = x * x;
  const selfe::AdamWHyper hyper{1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f, step};
  // CPU and emulated CUDA lists, same values and layout.
  List cp(sizes, skew), cg(sizes, skew), cm(sizes, skew), cv(sizes, skew), ce(sizes, skew);
  List dp(sizes, skew), dg(sizes, skew), dm(sizes, skew), dv(sizes, skew), de(sizes, skew);
  auto reset = [&] {
    for (List* l : {&cp, &dp}) l->fill(p0);
    for (List* l : {&cg, &dg}) l->fill(g);
    for (List* l : {&cm, &dm}) l->fill(m0);
    for (List* l : {&cv, &dv}) l->fill(v0);
    for (List* l : {&ce, &de}) l->fill(e0);
  };
  reset();
  selfe::cpu::adamw_update(cp.list(), cg.constList(), cm.list(), cv.list(), hyper, pool);
  selfe::cuda::adamw_update(dp.list(), dg.constList(), dm.list(), dv.list(), hyper, stream);
  expectClose("adamw p", dp.flat(), cp.flat(), kF32);
  expectClose("adamw m", dm.flat(), cm.flat(), kF32);
  expectClose("adamw v", dv.flat(), cv.flat(), kF32);
  expectClose("adamw g (read only)", dg.flat(), g, 0);
  reset();
  selfe::cpu::adamw_ema_update(cp.list(), cg.constList(), cm.list(), cv.list(), ce.list(), hyper, 0.99f, pool);
  selfe::cuda::adamw_ema_update(dp.list(), dg.constList(), dm.list(), dv.list(), de.list(), hyper, 0.99f, stream);
  expectClose("adamwEma p", dp.flat(), cp.flat(), kF32);
  expectClose("adamwEma m", dm.flat(), cm.flat(), kF32);
  expectClose("adamwEma v", dv.flat(), cv.flat(), kF32);
  expectClose("adamwEma ema", de.flat(), ce.flat(), kF32);
  expectClose("adamwEma g (read only)", dg.flat(), g, 0);
  reset();
  selfe::cpu::ema_update(ce.list(), cp.constList(), 0.9f, pool);
  selfe::cuda::ema_update(de.list(), dp.constList(), 0.9f, stream);
  expectClose("emaUpdate ema", de.flat(), ce.flat(), kF32);
  expectClose("emaUpdate p (read only)", dp.flat(), p0, 0);
  // Global norm, then clipping below, above and at a NaN norm.
  float cpuNorm = 0;
  selfe::cpu::global_norm(&cpuNorm, cg.constList(), pool);
  Device<float> norm(1);
  selfe::cuda::global_norm(norm.data(), dg.constList(), stream);
  expectClose("globalNorm", {norm[0]}, {cpuNorm}, kF32);
  for (const float maxNorm : {cpuNorm * 0.37f, cpuNorm * 0.8f, cpuNorm * 2.0f + 1.0f}) {
    reset();
    Device<float> given(1);
    given[0] = cpuNorm;
    selfe::cpu::clip_by_norm(cg.list(), &cpuNorm, maxNorm, pool);
    selfe::cuda::clip_by_norm(dg.list(), given.data(), maxNorm, stream);
    expectClose("clipByNorm", dg.flat(), cg.flat(), kF32);
  }
  if (total > 0) {
    reset();
    Device<float> nan(1);
    const float nanNorm = NAN;
    selfe::cpu::clip_by_norm(cg.list(), &nanNorm, 1.0f, pool);
    selfe::cuda::clip_by_norm(dg.list(), nan.data(), 1.0f, stream);
    expectClose("clipByNorm (NaN norm)", dg.flat(), cg.flat(), kF32);
  }
}

// ---- activations, elementwise, reductions ----------------------------------------------------------------------

template <class E>
void activations(int64_t n) {
  const auto x = inputs<E>(static_cast<size_t>(n), 3.0f), dy = inputs<E>(static_cast<size_t>(n));
  using CpuForward = void (*)(float*, const float*, int64_t, selfe::cpu::Pool&);
  using CpuBackward = void (*)(float*, const float*, const float*, int64_t, selfe::cpu::Pool&);
  using CudaForward = void (*)(E*, const E*, int64_t, selfe::cuda::Stream);
  using CudaBackward = void (*)(E*, const E*, const E*, int64_t, selfe::cuda::Stream);
  struct Op {
    const char* name;
    CpuForward cpuForward;
    CpuBackward cpuBackward;
    CudaForward cudaForward;
    CudaBackward cudaBackward;
  };
  const Op ops[] = {{"gelu", selfe::cpu::gelu_forward, selfe::cpu::gelu_backward, selfe::cuda::gelu_forward,
                     selfe::cuda::gelu_backward},
                    {"silu", selfe::cpu::silu_forward, selfe::cpu::silu_backward, selfe::cuda::silu_forward,
                     selfe::cuda::silu_backward}};
  for (const Op& op : ops) {
    std::vector<float> y(x.size()), dx(x.size());
    op.cpuForward(y.data(), x.data(), n, pool);
    op.cpuBackward(dx.data(), dy.data(), x.data(), n, pool);
    std::unique_ptr<Device<E>> dX(upload<E>(x)), dDy(upload<E>(dy));
    Device<E> dY(x.size()), dDx(x.size());
    op.cudaForward(dY.data(), dX->data(), n, stream);
    op.cudaBackward(dDx.data(), dDy->data(), dX->data(), n, stream);
    expectClose((std::string(op.name) + " forward").c_str(), download(dY), y, tolerance<E>());
    expectClose((std::string(op.name) + " backward").c_str(), download(dDx), dx, tolerance<E>());
  }
}

template <class E>
void elementwise(int64_t n, int64_t nb) {
  const auto a = inputs<E>(static_cast<size_t>(n)), b = inputs<E>(static_cast<size_t>(n));
  std::unique_ptr<Device<E>> dA(upload<E>(a)), dB(upload<E>(b));
  for (const auto broadcast : {selfe::Broadcast::Same, selfe::Broadcast::Trailing, selfe::Broadcast::Leading}) {
    const int64_t count = broadcast == selfe::Broadcast::Same ? n : nb;
    for (const auto op : {selfe::BinaryOp::Add, selfe::BinaryOp::Sub, selfe::BinaryOp::Mul}) {
      std::vector<float> out(static_cast<size_t>(n));
      selfe::cpu::binary_forward(out.data(), a.data(), b.data(), n, count, op, broadcast, pool);
      Device<E> dOut(static_cast<size_t>(n));
      selfe::cuda::binary_forward(dOut.data(), dA->data(), dB->data(), n, count, op, broadcast, stream);
      expectClose("binary", download(dOut), out, tolerance<E>());
    }
  }
  std::vector<float> out(static_cast<size_t>(n));
  Device<E> dOut(static_cast<size_t>(n));
  selfe::cpu::affine_forward(out.data(), a.data(), -1.25f, 0.5f, n, pool);
  selfe::cuda::affine_forward(dOut.data(), dA->data(), -1.25f, 0.5f, n, stream);
  expectClose("affine", download(dOut), out, tolerance<E>());
  selfe::cpu::axpy_forward(out.data(), a.data(), b.data(), 0.75f, n, pool);
  selfe::cuda::axpy_forward(dOut.data(), dA->data(), dB->data(), 0.75f, n, stream);
  expectClose("axpy", download(dOut), out, tolerance<E>());
}

void elementwiseF32Only(int64_t rows, int64_t cols) {
  const size_t n = static_cast<size_t>(rows * cols);
  const auto a = normal(n), b = normal(n);
  std::unique_ptr<Device<float>> dA(upload<float>(a)), dB(upload<float>(b));
  std::vector<float> dot(static_cast<size_t>(rows));
  Device<float> dDot(static_cast<size_t>(rows));
  selfe::cpu::row_dot_forward(dot.data(), a.data(), b.data(), rows, cols, pool);
  selfe::cuda::row_dot_forward(dDot.data(), dA->data(), dB->data(), rows, cols, stream);
  expectClose("rowDot", download(dDot), dot, kF32);
  Device<float> filled(n);
  selfe::cuda::fill32(filled.data(), 0x3fc00000u, static_cast<int64_t>(n), stream);
  expectClose("fill32", download(filled), std::vector<float>(n, 1.5f), 0);
  Device<bf16> filled16(n);
  selfe::cuda::fill16(filled16.data(), 0xbf80u, static_cast<int64_t>(n), stream);
  expectClose("fill16", download(filled16), std::vector<float>(n, -1.0f), 0);
  Device<float> copied(n);
  selfe::cuda::copy_bytes(copied.data(), dA->data(), static_cast<int64_t>(n * 4), stream);
  expectClose("copy", download(copied), a, 0);
  // convert: f32 -> bf16 -> f32 and f32 -> i32 (with saturation and NaN) against the CPU.
  auto wide = normal(n, 1e9f);
  if (n > 2) {
    wide[0] = NAN;
    wide[1] = 3e9f;
    wide[2] = -3e9f;
  }
  std::unique_ptr<Device<float>> dWide(upload<float>(wide));
  for (const auto to : {selfe::DType::BF16, selfe::DType::I32}) {
    std::vector<uint32_t> cpuOut(n, 0);
    Device<uint32_t> dOut(n);
    selfe::cpu::convert(cpuOut.data(), to, wide.data(), selfe::DType::F32, static_cast<int64_t>(n), pool);
    selfe::cuda::convert(dOut.data(), to, dWide->data(), selfe::DType::F32, static_cast<int64_t>(n), stream);
    const size_t words = to == selfe::DType::BF16 ? (n + 1) / 2 : n;
    ++checks;
    for (size_t i = 0; i < words; ++i) {
      uint32_t gpu = dOut[i];
      if (to == selfe::DType::BF16 && 2 * i + 1 == n) gpu = (gpu & 0xffffu) | (cpuOut[i] & 0xffff0000u);
      if (gpu != cpuOut[i]) {
        failed(std::string("convert to ") + selfe::dtypeName(to) + ": word " + std::to_string(i) + " differs");
        break;
      }
    }
  }
}

template <class E>
void sumAxis(int64_t outer, int64_t axis, int64_t inner) {
  const auto x = inputs<E>(static_cast<size_t>(outer * axis * inner));
  std::vector<float> out(static_cast<size_t>(outer * inner));
  selfe::cpu::sum_axis(out.data(), x.data(), outer, axis, inner, pool);
  std::unique_ptr<Device<E>> dX(upload<E>(x));
  Device<E> dOut(out.size());
  selfe::cuda::sum_axis(dOut.data(), dX->data(), outer, axis, inner, stream);
  expectClose("sumAxis", download(dOut), out, tolerance<E>());
}

void reductions(int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  const auto a = normal(static_cast<size_t>(n), 1.0f, 0.25f), b = normal(static_cast<size_t>(n));
  std::unique_ptr<Device<float>> dA(upload<float>(a)), dB(upload<float>(b));
  float sum = 0, mse = 0;
  Device<float> dSum(1), dMse(1);
  selfe::cpu::sum_all(&sum, a.data(), n, pool);
  selfe::cuda::sum_all(dSum.data(), dA->data(), n, stream);
  expectClose("sum", {dSum[0]}, {sum}, kF32);
  if (n > 0) {
    selfe::cpu::mse_all(&mse, a.data(), b.data(), n, pool);
    selfe::cuda::mse_all(dMse.data(), dA->data(), dB->data(), n, stream);
    expectClose("mse", {dMse[0]}, {mse}, kF32);
  }
  std::vector<float> rowsOut(static_cast<size_t>(rows));
  Device<float> dRows(static_cast<size_t>(rows));
  selfe::cpu::mse_rows(rowsOut.data(), a.data(), b.data(), rows, cols, pool);
  selfe::cuda::mse_rows(dRows.data(), dA->data(), dB->data(), rows, cols, stream);
  expectClose("mseRows", download(dRows), rowsOut, kF32);
}

template <class F>
void run(const std::string& name, int smCount, F body) {
  where = name + " (" + std::to_string(smCount) + " SMs)";
  context.smCount = smCount;
  const int before = failures;
  try {
    body();
  } catch (const std::exception& error) {  // a launcher's cuda::Error (a launch the emulated device refused)
    failed(std::string("threw: ") + error.what());
  }
  if (scratch.live != 0) failed("scratch memory not handed back");
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) failed(std::string("sticky launch error: ") + cudaGetErrorString(error));
  if (failures == before) std::printf("ok %s\n", where.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // what was found before a crash still shows
  const std::string only = argc > 1 ? argv[1] : "";
  const auto want = [&](const char* family) { return only.empty() || only == family; };
  context.scratch = &scratch;

  if (want("layernorm")) {
    const struct {
      int64_t rows, dim;
      int sms;
    } shapes[] = {{1, 1, 1}, {3, 7, 2}, {5, 32, 1}, {9, 33, 3}, {17, 100, 2}, {2, 257, 1}, {130, 64, 7}, {203, 5, 2}, {0, 16, 1}, {1, 1100, 2}};
    for (const auto& s : shapes)
      for (const bool affine : {true, false}) {
        const std::string shape = std::to_string(s.rows) + "x" + std::to_string(s.dim) + (affine ? "" : " no affine");
        run("layerNorm f32 " + shape, s.sms, [&] { layerNorm<float>(s.rows, s.dim, affine); });
        run("layerNorm bf16 " + shape, s.sms, [&] { layerNorm<bf16>(s.rows, s.dim, affine); });
      }
    const struct {
      int64_t batch, tokens, dim;
      int sms;
    } modulated[] = {{1, 1, 1, 1}, {2, 3, 7, 2}, {3, 17, 33, 1}, {2, 65, 100, 3}, {4, 9, 257, 2}, {2, 130, 40, 5}, {0, 5, 8, 1}, {3, 0, 8, 1}};
    for (const auto& s : modulated) {
      const std::string shape = std::to_string(s.batch) + "x" + std::to_string(s.tokens) + "x" + std::to_string(s.dim);
      run("layerNormModulate f32 " + shape, s.sms, [&] { layerNormModulate<float>(s.batch, s.tokens, s.dim); });
      run("layerNormModulate bf16 " + shape, s.sms, [&] { layerNormModulate<bf16>(s.batch, s.tokens, s.dim); });
    }
  }
  if (want("adaln")) {
    const struct {
      int64_t batch, tokens, dim;
      int sms;
    } shapes[] = {{1, 1, 1, 1}, {2, 3, 7, 2}, {3, 17, 33, 1}, {2, 65, 100, 1}, {4, 9, 257, 2}, {2, 140, 40, 5}, {0, 5, 8, 1}, {3, 0, 8, 1}};
    for (const auto& s : shapes) {
      const std::string shape = std::to_string(s.batch) + "x" + std::to_string(s.tokens) + "x" + std::to_string(s.dim);
      run("adaLN f32 " + shape, s.sms, [&] { adaln<float>(s.batch, s.tokens, s.dim); });
      run("adaLN bf16 " + shape, s.sms, [&] { adaln<bf16>(s.batch, s.tokens, s.dim); });
    }
  }
  if (want("optim")) {
    // Chunks are 4096 elements and the grid is occupancy x SMs blocks: sizes off the chunks and off float4s,
    // empty tensors, misaligned tensors (scalar path), more chunks than blocks.
    const std::vector<int64_t> mixed = {1, 3, 4, 5, 0, 4096, 4097, 16387, 7, 12000, 8};
    run("optimizer mixed sizes", 2, [&] { optimizer(mixed, {0, 1, 0, 2, 0, 0, 3, 1, 0, 4, 0}, 7); });
    emu::settings.occupancy = 1;
    run("optimizer one block", 1, [&] { optimizer(mixed, {}, 1); });
    emu::settings.occupancy = 3;
    // More tensors than one table holds for every list count (438, 511, 767 and 1023 tensors).
    std::vector<int64_t> many;
    std::uniform_int_distribution<int64_t> small(0, 9);
    for (int t = 0; t < 1100; ++t) many.push_back(t == 500 ? 5000 : small(rng));
    run("optimizer 1100 tensors", 2, [&] { optimizer(many, {}, 3); });
    run("optimizer empty list", 2, [&] { optimizer({}, {}, 1); });
    run("optimizer only empty tensors", 2, [&] { optimizer({0, 0, 0}, {}, 1); });
  }
  if (want("activation")) {
    for (const int64_t n : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{255}, int64_t{257}, int64_t{10000}}) {
      run("activations f32 n=" + std::to_string(n), 1, [&] { activations<float>(n); });
      run("activations bf16 n=" + std::to_string(n), 2, [&] { activations<bf16>(n); });
    }
  }
  if (want("elementwise")) {
    const struct {
      int64_t rows, cols;
    } shapes[] = {{1, 1}, {3, 7}, {33, 65}, {5, 1030}, {0, 4}, {70, 100}};
    for (const auto& s : shapes) {
      const std::string shape = std::to_string(s.rows) + "x" + std::to_string(s.cols);
      run("elementwise f32 " + shape, 1, [&] { elementwise<float>(s.rows * s.cols, s.cols); });
      run("elementwise bf16 " + shape, 2, [&] { elementwise<bf16>(s.rows * s.cols, s.cols); });
      run("rowDot, fill, copy, convert " + shape, 1, [&] { elementwiseF32Only(s.rows, s.cols); });
    }
  }
  if (want("reduce")) {
    const struct {
      int64_t outer, axis, inner;
      int sms;
    } shapes[] = {{1, 1, 1, 1}, {2, 3, 7, 2}, {1, 300, 33, 3}, {3, 65, 100, 1}, {4, 1, 257, 2}, {2, 0, 5, 1}, {5, 70, 3, 7}};
    for (const auto& s : shapes) {
      const std::string shape = std::to_string(s.outer) + "x" + std::to_string(s.axis) + "x" + std::to_string(s.inner);
      run("sumAxis f32 " + shape, s.sms, [&] { sumAxis<float>(s.outer, s.axis, s.inner); });
      run("sumAxis bf16 " + shape, s.sms, [&] { sumAxis<bf16>(s.outer, s.axis, s.inner); });
    }
    const struct {
      int64_t rows, cols;
      int sms;
    } whole[] = {{1, 1, 1}, {3, 7, 2}, {9, 100, 1}, {2, 1030, 3}, {0, 5, 1}};
    for (const auto& s : whole)
      run("sum, mse, mseRows " + std::to_string(s.rows) + "x" + std::to_string(s.cols), s.sms,
          [&] { reductions(s.rows, s.cols); });
    run("sum, mse, mseRows 70x1000", 2, [&] { reductions(70, 1000); });
  }

  if (failures > 0) {
    std::printf("%d of %d checks failed\n", failures, checks);
    return 1;
  }
  std::printf("all %d checks passed\n", checks);
  return 0;
}
