// Tensor lifetime and host transfer: empty, full, upload, write, read, view, release, releaseAll, shapeOf,
// stats, sync, emptyCache, dispose.
#include <cmath>
#include <cstring>

#include "call.h"
#include "ops.h"
#include "selfe/kernels/elementwise.h"

namespace selfe::napi {

namespace {

// A JS typed array's bytes, checked against the tensor they are for; valid during the call only (the
// device stages them before returning). A bf16 tensor takes a Float32Array.
struct HostData {
  const void* data;
  size_t bytes;
};

HostData hostData(Call& call, size_t i, const TensorRef& target) {
  Napi::Value value = call.env().Undefined();
  if (i < call.length()) value = call.arg(i);
  if (!value.IsTypedArray()) call.fail(ErrorCode::InvalidArgument, "data must be a Float32Array or Int32Array");
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  const bool isInt = target.dtype == DType::I32;
  if (array.TypedArrayType() != (isInt ? napi_int32_array : napi_float32_array))
    call.fail(ErrorCode::DType, std::string("data for a ") + dtypeName(target.dtype) + " tensor must be a " +
                                    (isInt ? "Int32Array" : "Float32Array"));
  if (static_cast<int64_t>(array.ElementLength()) != target.numel())
    call.fail(ErrorCode::Shape, "data has " + std::to_string(array.ElementLength()) + " elements, the tensor " +
                                    target.shape.str() + " has " + std::to_string(target.numel()));
  const auto* bytes = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  return HostData{bytes, array.ByteLength()};
}

// The bit pattern of `value` as an element of dtype (a bf16 pattern sits in the low 16 bits).
uint32_t fillBits(Call& call, DType dtype, double value) {
  uint32_t bits;
  if (dtype == DType::BF16) {
    bits = bf16FromFloat(static_cast<float>(value)).bits;
  } else if (dtype == DType::I32) {
    if (value != std::floor(value) || value < -2147483648.0 || value > 2147483647.0)
      call.fail(ErrorCode::InvalidArgument, "value must be a 32-bit integer for an i32 tensor");
    const int32_t v = static_cast<int32_t>(value);
    std::memcpy(&bits, &v, 4);
  } else {
    const float v = static_cast<float>(value);
    std::memcpy(&bits, &v, 4);
  }
  return bits;
}

Napi::Value empty(Call& call) {
  const DType dtype = call.dtype(1, "dtype");
  const Shape shape = call.shape(2, "shape");
  return Napi::Number::New(call.env(), call.output(shape, dtype, nullptr));
}

Napi::Value full(Call& call) {
  const DType dtype = call.dtype(1, "dtype");
  const Shape shape = call.shape(2, "shape");
  const uint32_t bits = fillBits(call, dtype, call.number(3, "value"));
  TensorRef out;
  const double id = call.output(shape, dtype, &out);
  call.device().launchFloating("full", dtype, [out, bits](auto&& stream, auto element) {
    if constexpr (isBf16<typename decltype(element)::type>)
      fill16(out.data, static_cast<uint16_t>(bits), out.numel(), stream);
    else
      fill32(out.data, bits, out.numel(), stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value upload(Call& call) {
  const DType dtype = call.dtype(1, "dtype");
  const Shape shape = call.shape(2, "shape");
  if (dtype == DType::BF16 && !call.device().isCuda())
    call.fail(ErrorCode::DType, "bf16 storage needs the CUDA backend");
  // Validate the data against a would-be tensor before allocating it.
  const TensorRef probe{nullptr, shape, dtype};
  const HostData data = hostData(call, 3, probe);
  TensorRef out;
  const double id = call.output(shape, dtype, &out);
  call.device().write(out, data.data, data.bytes, call.op());
  return Napi::Number::New(call.env(), id);
}

Napi::Value write(Call& call) {
  const TensorRef target = call.tensor(1, "x");
  const HostData data = hostData(call, 2, target);
  call.device().write(target, data.data, data.bytes, call.op());
  return call.env().Undefined();
}

Napi::Value read(Call& call) { return call.device().read(call.env(), call.tensor(1, "x")); }

Napi::Value view(Call& call) {
  const Shape shape = call.shape(2, "shape");
  return Napi::Number::New(call.env(), call.device().view(call.arg(1), shape, call.op()));
}

Napi::Value release(Call& call) {
  call.device().release(call.arg(1), call.op());
  return call.env().Undefined();
}

// One call for the many tensors a closing Scope releases: each N-API call is host time on a GPU step.
Napi::Value releaseAll(Call& call) {
  if (call.length() < 2 || !call.arg(1).IsArray())
    call.fail(ErrorCode::InvalidArgument, "handles must be an array of tensor handles");
  call.device().releaseAll(call.arg(1).As<Napi::Array>(), call.op());
  return call.env().Undefined();
}

Napi::Value shapeOf(Call& call) {
  const TensorRef t = call.tensor(1, "x");
  Napi::Array dims = Napi::Array::New(call.env(), t.shape.rank);
  for (int i = 0; i < t.shape.rank; ++i) dims.Set(i, Napi::Number::New(call.env(), static_cast<double>(t.shape[i])));
  Napi::Object out = Napi::Object::New(call.env());
  out.Set("shape", dims);
  out.Set("dtype", Napi::Number::New(call.env(), static_cast<int>(t.dtype)));
  return out;
}

Napi::Value stats(Call& call) { return call.device().stats(call.env()); }

Napi::Value sync(Call& call) { return call.device().sync(call.env()); }

Napi::Value emptyCache(Call& call) {
  call.device().emptyCache();
  return call.env().Undefined();
}

Napi::Value dispose(Call& call) {
  call.anyDevice().dispose();
  return call.env().Undefined();
}

}  // namespace

void registerMemoryOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "empty", empty);
  defineOp(env, ops, "full", full);
  defineOp(env, ops, "upload", upload);
  defineOp(env, ops, "write", write);
  defineOp(env, ops, "read", read);
  defineOp(env, ops, "view", view);
  defineOp(env, ops, "release", release);
  defineOp(env, ops, "releaseAll", releaseAll);
  defineOp(env, ops, "shapeOf", shapeOf);
  defineOp(env, ops, "stats", stats);
  defineOp(env, ops, "sync", sync);
  defineOp(env, ops, "emptyCache", emptyCache);
  defineOp(env, ops, "dispose", dispose);
}

}  // namespace selfe::napi
