#include "call.h"

#include <new>

namespace selfe::napi {

namespace {
constexpr int64_t kMaxDim = int64_t{1} << 40;
constexpr int64_t kMaxNumel = int64_t{1} << 46;
}  // namespace

Device& Call::device() {
  Device& device = anyDevice();
  if (device.disposed()) fail(ErrorCode::Disposed, "the device was disposed");
  return device;
}

Device& Call::anyDevice() {
  if (device_ != nullptr) return *device_;
  requireArg(0, "device");
  // A type tag, not instanceof: instanceof calls into JS (Symbol.hasInstance) on every op.
  if (!info_[0].IsObject() || !info_[0].As<Napi::Object>().CheckTypeTag(&deviceTypeTag()))
    fail(ErrorCode::InvalidArgument, "device must be a Device");
  device_ = Napi::ObjectWrap<Device>::Unwrap(info_[0].As<Napi::Object>());
  return *device_;
}

std::vector<TensorRef> Call::tensorList(size_t i, const char* name) {
  requireArg(i, name);
  if (!info_[i].IsArray()) fail(ErrorCode::InvalidArgument, std::string(name) + " must be an array of tensors");
  Napi::Array list = info_[i].As<Napi::Array>();
  const uint32_t length = list.Length();
  std::vector<TensorRef> out;
  out.reserve(length);
  for (uint32_t j = 0; j < length; ++j) {
    try {
      out.push_back(device().lookup(list.Get(j), op_, name));
    } catch (const OpError&) {
      // Looked up again under the element's name, for the message: building it for every element (lists hold
      // every parameter of a model) cost each call.
      const std::string element = std::string(name) + "[" + std::to_string(j) + "]";
      out.push_back(device().lookup(list.Get(j), op_, element.c_str()));
    }
  }
  return out;
}

void Call::releaseOutputs() {
  for (double id : outputs_) device_->release(Napi::Number::New(env(), id), op_);
  outputs_.clear();
}

int64_t Call::integer(size_t i, const char* name, int64_t min, int64_t max) {
  const double value = number(i, name);
  if (value != std::floor(value)) fail(ErrorCode::InvalidArgument, std::string(name) + " must be an integer, got " + std::to_string(value));
  if (value < static_cast<double>(min) || value > static_cast<double>(max))
    fail(ErrorCode::InvalidArgument, std::string(name) + " must be in [" + std::to_string(min) + ", " + std::to_string(max) +
                                         "], got " + std::to_string(static_cast<int64_t>(value)));
  return static_cast<int64_t>(value);
}

Shape Call::shape(size_t i, const char* name) {
  requireArg(i, name);
  if (!info_[i].IsArray()) fail(ErrorCode::Shape, std::string(name) + " must be an array of dimensions");
  Napi::Array dims = info_[i].As<Napi::Array>();
  if (dims.Length() > static_cast<uint32_t>(kMaxRank))
    fail(ErrorCode::Shape, std::string(name) + " has rank " + std::to_string(dims.Length()) + ", at most " + std::to_string(kMaxRank) + " is supported");
  Shape shape;
  // Bounded over the non-zero dimensions, so a leading 0 cannot hide an overflowing product.
  int64_t nonzeroProduct = 1;
  for (uint32_t j = 0; j < dims.Length(); ++j) {
    Napi::Value dim = dims.Get(j);
    const double d = dim.IsNumber() ? dim.As<Napi::Number>().DoubleValue() : -1.0;
    if (!dim.IsNumber() || !std::isfinite(d) || d != std::floor(d) || d < 0 || d > static_cast<double>(kMaxDim))
      fail(ErrorCode::Shape, std::string(name) + "[" + std::to_string(j) + "] must be a non-negative integer");
    shape.dims[shape.rank++] = static_cast<int64_t>(d);
    if (d > 0) nonzeroProduct *= static_cast<int64_t>(d);
    if (nonzeroProduct > kMaxNumel) fail(ErrorCode::Shape, std::string(name) + " has too many elements");
  }
  return shape;
}

DType Call::dtype(size_t i, const char* name) {
  const int64_t code = integer(i, name, 0, 2);
  return static_cast<DType>(code);
}

Napi::Value runGuarded(const Napi::CallbackInfo& info, const char* op, OpBody body) {
  Napi::Env env = info.Env();
  try {
    Call call(info, op);
    try {
      return body(call);
    } catch (...) {
      call.releaseOutputs();
      throw;
    }
  } catch (const OpError& e) {
    throw toJsError(env, e.code(), e.op(), e.reason());
  } catch (const std::bad_alloc&) {
    throw toJsError(env, ErrorCode::OutOfMemory, op, "host allocation failed");
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw toJsError(env, ErrorCode::Device, op, e.what());
  }
}

namespace {
struct OpEntry {
  const char* name;
  OpBody body;
};
}  // namespace

void defineOp(Napi::Env env, Napi::Object ops, const char* name, OpBody body) {
  // Entries live as long as the module: one per op, never freed.
  auto* entry = new OpEntry{name, body};
  ops.Set(name, Napi::Function::New(
                    env,
                    [](const Napi::CallbackInfo& info) -> Napi::Value {
                      const auto* e = static_cast<const OpEntry*>(info.Data());
                      return runGuarded(info, e->name, e->body);
                    },
                    name, entry));
}

Napi::Value handles(Napi::Env env, std::initializer_list<double> ids) {
  Napi::Array array = Napi::Array::New(env, ids.size());
  uint32_t i = 0;
  for (double id : ids) array.Set(i++, Napi::Number::New(env, id));
  return array;
}

}  // namespace selfe::napi
