// Bindings: patchify (x [B,C,H,W], patch), unpatchify (tokens, channels, height, width, patch), concat
// (tensors, axis), narrow (x, axis, start, length), split (x, axis, count), pad (x, axis, before, after).
// concat, narrow, split and pad move elements of any dtype (f32, i32, bf16 on CUDA) and take an axis in
// [0, rank - 1]; negative axes are not accepted.
#include <algorithm>
#include <string>
#include <vector>

#include "call.h"
#include "ops.h"
#include "selfe/kernels/elementwise.h"
#include "selfe/kernels/layout.h"

namespace selfe::napi {

namespace {

// Bounds for image sizes and for the largest result, as Call::shape bounds an uploaded shape.
constexpr int64_t kMaxImageDim = int64_t{1} << 20;
constexpr int64_t kMaxDim = int64_t{1} << 40;
constexpr double kMaxNumel = static_cast<double>(int64_t{1} << 46);


int64_t axisArg(Call& call, size_t i, const TensorRef& x, const char* name) {
  if (x.shape.rank < 1)
    call.fail(ErrorCode::Shape, std::string(name) + " must have rank >= 1 to have an axis, got shape []");
  return call.integer(i, "axis", 0, x.shape.rank - 1);
}

// A result shape built from arguments must stay within what an upload could ask for.
void expectAllocatable(Call& call, const Shape& shape) {
  double numel = 1;
  for (int i = 0; i < shape.rank; ++i) {
    if (shape[i] > kMaxDim) call.fail(ErrorCode::Shape, "result dimension " + std::to_string(i) + " is too large");
    numel *= static_cast<double>(shape[i]);
  }
  if (!(numel <= kMaxNumel)) call.fail(ErrorCode::Shape, "result " + shape.str() + " has too many elements");
}

Napi::Value patchify(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  call.expectDtype(x, DType::F32, "x");
  call.expectRank(x, 4, "x");
  const int64_t batch = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3];
  const int64_t patch = call.integer(2, "patch", 1, std::max<int64_t>(1, std::min(height, width)));
  if (height % patch != 0 || width % patch != 0)
    call.fail(ErrorCode::Shape, "height and width of x " + x.shape.str() + " must be multiples of patch " +
        std::to_string(patch));
  TensorRef tokens;
  const double id =
      call.output(makeShape({batch, (height / patch) * (width / patch), patch * patch * channels}), DType::F32, &tokens);
  if (tokens.numel() == 0) return Napi::Number::New(call.env(), id);
  call.device().launch("patchify", [=](auto&& stream) {
    patchify_forward(tokens.f32(), x.f32(), batch, channels, height, width, patch, stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value unpatchify(Call& call) {
  const TensorRef tokens = call.tensor(1, "tokens");
  call.expectDtype(tokens, DType::F32, "tokens");
  call.expectRank(tokens, 3, "tokens");
  const int64_t channels = call.integer(2, "channels", 1, kMaxImageDim);
  const int64_t height = call.integer(3, "height", 1, kMaxImageDim);
  const int64_t width = call.integer(4, "width", 1, kMaxImageDim);
  const int64_t patch = call.integer(5, "patch", 1, std::min(height, width));
  if (height % patch != 0 || width % patch != 0)
    call.fail(ErrorCode::Shape, "height " + std::to_string(height) + " and width " + std::to_string(width) +
        " must be multiples of patch " + std::to_string(patch));
  const int64_t batch = tokens.shape[0];
  call.expectShape(tokens, makeShape({batch, (height / patch) * (width / patch), patch * patch * channels}), "tokens");
  TensorRef x;
  const double id = call.output(makeShape({batch, channels, height, width}), DType::F32, &x);
  if (x.numel() == 0) return Napi::Number::New(call.env(), id);
  call.device().launch("unpatchify", [=](auto&& stream) {
    unpatchify_forward(x.f32(), tokens.f32(), batch, channels, height, width, patch, stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value concat(Call& call) {
  const std::vector<TensorRef> parts = call.tensorList(1, "tensors");
  if (parts.empty()) call.fail(ErrorCode::InvalidArgument, "tensors must hold at least one tensor");
  const TensorRef& first = parts[0];
  const int64_t axis = axisArg(call, 2, first, "tensors[0]");
  Shape shape = first.shape;
  shape.dims[axis] = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    // The element's name is only spelled out on failure, as in every list check.
    const auto name = [k] { return "tensors[" + std::to_string(k) + "]"; };
    if (parts[k].dtype != first.dtype) call.expectDtype(parts[k], first.dtype, name().c_str());
    Shape expected = first.shape;
    expected.dims[axis] = parts[k].shape[axis];
    if (parts[k].shape != expected)
      call.fail(ErrorCode::Shape, name() + " " + parts[k].shape.str() + " must match tensors[0] " + first.shape.str() +
                                      " except on axis " + std::to_string(axis));
    shape.dims[axis] += parts[k].shape[axis];
  }
  expectAllocatable(call, shape);
  TensorRef out;
  const double id = call.output(shape, first.dtype, &out);
  if (out.numel() == 0) return Napi::Number::New(call.env(), id);
  struct Part {
    const void* data;
    int64_t length;
    int64_t offset;
  };
  std::vector<Part> blocks;
  int64_t offset = 0;
  for (const TensorRef& t : parts) {
    blocks.push_back(Part{t.data, t.shape[axis], offset});
    offset += t.shape[axis];
  }
  const int64_t outer = shape.span(0, static_cast<int>(axis)), inner = shape.span(static_cast<int>(axis) + 1, shape.rank);
  const int64_t total = shape[axis];
  // bf16 moves as 16-bit elements, everything else as 32-bit words (the float instantiation).
  call.device().launchFloating("concat", first.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    for (const Part& p : blocks)
      insert_axis(out.as<T>(), static_cast<const T*>(p.data), outer, p.length, total, p.offset, inner, stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value narrow(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const int64_t axis = axisArg(call, 2, x, "x");
  const int64_t size = x.shape[axis];
  const int64_t start = call.integer(3, "start", 0, size);
  const int64_t length = call.integer(4, "length", 0, size - start);
  Shape shape = x.shape;
  shape.dims[axis] = length;
  TensorRef out;
  const double id = call.output(shape, x.dtype, &out);
  if (out.numel() == 0) return Napi::Number::New(call.env(), id);
  const int64_t outer = shape.span(0, static_cast<int>(axis)), inner = shape.span(static_cast<int>(axis) + 1, shape.rank);
  call.device().launchFloating("narrow", x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    slice_axis(out.as<T>(), x.as<T>(), outer, size, length, start, inner, stream);
  });
  return Napi::Number::New(call.env(), id);
}

// (x, axis, count) -> count handles: x's axis cut into equal parts, one N-API call for all of them.
Napi::Value split(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const int64_t axis = axisArg(call, 2, x, "x");
  const int64_t size = x.shape[axis];
  const int64_t count = call.integer(3, "count", 1, std::max<int64_t>(1, size));
  if (size % count != 0)
    call.fail(ErrorCode::Shape, "x " + x.shape.str() + " has " + std::to_string(size) + " along axis " +
        std::to_string(axis) + ", not a multiple of count " + std::to_string(count));
  Shape shape = x.shape;
  shape.dims[axis] = size / count;
  std::vector<TensorRef> parts(static_cast<size_t>(count));
  Napi::Array result = Napi::Array::New(call.env(), static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    result.Set(static_cast<uint32_t>(i), Napi::Number::New(call.env(), call.output(shape, x.dtype, &parts[i])));
  if (parts[0].numel() == 0) return result;
  const int64_t outer = shape.span(0, static_cast<int>(axis)), inner = shape.span(static_cast<int>(axis) + 1, shape.rank);
  const int64_t length = shape[axis];
  call.device().launchFloating("split", x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    for (int64_t i = 0; i < count; ++i)
      slice_axis(parts[i].as<T>(), x.as<T>(), outer, size, length, i * length, inner, stream);
  });
  return result;
}

Napi::Value pad(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const int64_t axis = axisArg(call, 2, x, "x");
  const int64_t before = call.integer(3, "before", 0, kMaxDim);
  const int64_t after = call.integer(4, "after", 0, kMaxDim);
  const int64_t size = x.shape[axis];
  Shape shape = x.shape;
  shape.dims[axis] = before + size + after;
  expectAllocatable(call, shape);
  TensorRef out;
  const double id = call.output(shape, x.dtype, &out);
  if (out.numel() == 0) return Napi::Number::New(call.env(), id);
  const int64_t outer = shape.span(0, static_cast<int>(axis)), inner = shape.span(static_cast<int>(axis) + 1, shape.rank);
  const int64_t padded = shape[axis], numel = out.numel();
  call.device().launchFloating("pad", x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    if constexpr (isBf16<T>)
      fill16(out.data, 0, numel, stream);
    else
      fill32(out.data, 0, numel, stream);
    insert_axis(out.as<T>(), x.as<T>(), outer, size, padded, before, inner, stream);
  });
  return Napi::Number::New(call.env(), id);
}

}  // namespace

void registerLayoutOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "patchify", patchify);
  defineOp(env, ops, "unpatchify", unpatchify);
  defineOp(env, ops, "concat", concat);
  defineOp(env, ops, "narrow", narrow);
  defineOp(env, ops, "split", split);
  defineOp(env, ops, "pad", pad);
}

}  // namespace selfe::napi
