// Argument validation for every N-API entry point: each accessor checks one argument and throws an OpError
// naming the op and the argument, before anything is allocated or enqueued.
#pragma once
#include <napi.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "device.h"
#include "errors.h"
#include "shape.h"

namespace selfe::napi {

class Call {
 public:
  Call(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}

  Napi::Env env() const { return info_.Env(); }
  const char* op() const { return op_; }

  size_t length() const { return info_.Length(); }
  Napi::Value arg(size_t i) const { return info_[i]; }

  // Ops take the device first: ops.gelu(device, x). Fails once the device is disposed.
  Device& device();
  // The device even when disposed (dispose itself is idempotent).
  Device& anyDevice();

  TensorRef tensor(size_t i, const char* name) {
    requireArg(i, name);
    return device().lookup(info_[i], op_, name);
  }
  std::optional<TensorRef> optionalTensor(size_t i, const char* name) {
    if (i >= info_.Length() || info_[i].IsUndefined() || info_[i].IsNull()) return std::nullopt;
    return device().lookup(info_[i], op_, name);
  }
  std::vector<TensorRef> tensorList(size_t i, const char* name);
  // An optional tensor a gradient is added to (autograd's accumulation): absent, an empty TensorRef (its
  // data nullptr, which the launchers read as no base); present, it must have the gradient's dtype and shape.
  TensorRef base(size_t i, const char* name, DType dtype, const Shape& shape) {
    const std::optional<TensorRef> found = optionalTensor(i, name);
    if (!found) return TensorRef{};
    expectDtype(*found, dtype, name);
    expectShape(*found, shape, name);
    return *found;
  }

  double number(size_t i, const char* name) {
    requireArg(i, name);
    if (!info_[i].IsNumber()) fail(ErrorCode::InvalidArgument, std::string(name) + " must be a number");
    const double value = info_[i].As<Napi::Number>().DoubleValue();
    if (!std::isfinite(value)) fail(ErrorCode::InvalidArgument, std::string(name) + " must be finite, got " + std::to_string(value));
    return value;
  }
  int64_t integer(size_t i, const char* name, int64_t min, int64_t max);
  bool flag(size_t i, const char* name) {
    requireArg(i, name);
    if (!info_[i].IsBoolean()) fail(ErrorCode::InvalidArgument, std::string(name) + " must be a boolean");
    return info_[i].As<Napi::Boolean>().Value();
  }
  Shape shape(size_t i, const char* name);
  DType dtype(size_t i, const char* name);

  [[noreturn]] void fail(ErrorCode code, const std::string& reason) const { throw OpError(code, op_, reason); }

  void expectDtype(const TensorRef& t, DType dtype, const char* name) const {
    if (t.dtype != dtype)
      fail(ErrorCode::DType, std::string(name) + " must be " + dtypeName(dtype) + ", got " + dtypeName(t.dtype));
  }
  // f32, or bf16 (which only CUDA devices hold): the storage types of ops with fp32 arithmetic.
  void expectFloating(const TensorRef& t, const char* name) const {
    if (t.dtype != DType::F32 && t.dtype != DType::BF16)
      fail(ErrorCode::DType, std::string(name) + " must be f32 or bf16, got " + dtypeName(t.dtype));
  }
  // A bf16 branch's edge in mixed precision: `actual` is `expected` itself, or bf16 where `expected` is f32.
  static bool isDtypeOrBf16(DType actual, DType expected) {
    return actual == expected || (expected == DType::F32 && actual == DType::BF16);
  }
  static std::string dtypeOrBf16(DType dtype) { return std::string(dtypeName(dtype)) + (dtype == DType::F32 ? " or bf16" : ""); }
  // The dtype of a tensor that may be bf16 beside f32 ones: `dtype` itself, or bf16 when `dtype` is f32.
  void expectDtypeOrBf16(const TensorRef& t, DType dtype, const char* name) const {
    if (!isDtypeOrBf16(t.dtype, dtype))
      fail(ErrorCode::DType, std::string(name) + " must be " + dtypeOrBf16(dtype) + ", got " + dtypeName(t.dtype));
  }
  void expectShape(const TensorRef& t, const Shape& shape, const char* name) const {
    if (t.shape != shape)
      fail(ErrorCode::Shape, std::string(name) + " must have shape " + shape.str() + ", got " + t.shape.str());
  }
  void expectRank(const TensorRef& t, int rank, const char* name) const {
    if (t.shape.rank != rank)
      fail(ErrorCode::Shape, std::string(name) + " must have rank " + std::to_string(rank) + ", got shape " + t.shape.str());
  }

  // Allocates an output on this call's device; should the call fail afterwards, runGuarded releases it.
  double output(const Shape& shape, DType dtype, TensorRef* out) {
    const double id = device().create(shape, dtype, op_, out);
    outputs_.push_back(id);
    return id;
  }
  // Releases every output allocated so far, so that a failed call (say, out of memory on its second
  // output) leaves no tensor behind.
  void releaseOutputs();

 private:
  void requireArg(size_t i, const char* name) const {
    if (i >= info_.Length() || info_[i].IsUndefined())
      fail(ErrorCode::InvalidArgument, std::string("missing argument ") + name);
  }

  const Napi::CallbackInfo& info_;
  const char* op_;
  Device* device_ = nullptr;
  std::vector<double> outputs_;
};

// Wraps an op body so that every failure reaches JS as an Error with code/op/reason, never as an abort.
using OpBody = Napi::Value (*)(Call&);
Napi::Value runGuarded(const Napi::CallbackInfo& info, const char* op, OpBody body);

// Registers `ops.<name>` on the exports object.
void defineOp(Napi::Env env, Napi::Object ops, const char* name, OpBody body);

// Returns several handles as a JS array (ops with more than one output).
Napi::Value handles(Napi::Env env, std::initializer_list<double> ids);

}  // namespace selfe::napi
