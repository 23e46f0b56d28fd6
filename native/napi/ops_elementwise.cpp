// Bindings: add, sub, mul (b the same shape or a trailing suffix; add's b may be bf16 beside an f32 a), mulRows
// (s a leading prefix), affine, axpy (f32, or bf16 on CUDA), rowDot, copy, assign, cast, castAll (xs[] of one
// dtype, dtype) -> [handles]: the casts of many tensors in one call (one launch per few hundred on CUDA for
// f32 <-> bf16).
#include "call.h"
#include "ops.h"
#include "selfe/kernels/elementwise.h"

namespace selfe::napi {

namespace {

bool isSuffix(const Shape& small, const Shape& big) {
  if (small.rank > big.rank) return false;
  for (int i = 0; i < small.rank; ++i)
    if (small[small.rank - 1 - i] != big[big.rank - 1 - i]) return false;
  return true;
}

bool isPrefix(const Shape& small, const Shape& big) {
  if (small.rank > big.rank) return false;
  for (int i = 0; i < small.rank; ++i)
    if (small[i] != big[i]) return false;
  return true;
}

// b of a's dtype; add's b may also be bf16 beside an f32 a (a bf16 branch's output into an f32 stream).
Napi::Value binary(Call& call, BinaryOp op, const char* name) {
  const TensorRef a = call.tensor(1, "a");
  const TensorRef b = call.tensor(2, "b");
  call.expectFloating(a, "a");
  if (op == BinaryOp::Add)
    call.expectDtypeOrBf16(b, a.dtype, "b");
  else
    call.expectDtype(b, a.dtype, "b");
  Broadcast broadcast = Broadcast::Same;
  if (a.shape != b.shape) {
    if (!isSuffix(b.shape, a.shape))
      call.fail(ErrorCode::Shape, "b " + b.shape.str() + " must equal a " + a.shape.str() +
          " or be a trailing suffix of it");
    broadcast = Broadcast::Trailing;
  }
  TensorRef out;
  const double id = call.output(a.shape, a.dtype, &out);
  const int64_t n = a.numel(), nb = b.numel();
  call.device().launchFloatingPair(name, a.dtype, b.dtype, [=](auto&& stream, auto element, auto second) {
    using T = typename decltype(element)::type;
    using U = typename decltype(second)::type;
    binary_forward(out.as<T>(), a.as<T>(), b.as<U>(), n, nb, op, broadcast, stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value add(Call& call) { return binary(call, BinaryOp::Add, "add"); }
Napi::Value sub(Call& call) { return binary(call, BinaryOp::Sub, "sub"); }
Napi::Value mul(Call& call) { return binary(call, BinaryOp::Mul, "mul"); }

Napi::Value mulRows(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const TensorRef s = call.tensor(2, "s");
  call.expectFloating(x, "x");
  call.expectDtype(s, x.dtype, "s");
  if (!isPrefix(s.shape, x.shape))
    call.fail(ErrorCode::Shape, "s " + s.shape.str() + " must be a leading prefix of x " + x.shape.str());
  TensorRef out;
  const double id = call.output(x.shape, x.dtype, &out);
  const int64_t n = x.numel(), nb = s.numel();
  call.device().launchFloating("mulRows", x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    binary_forward(out.as<T>(), x.as<T>(), s.as<T>(), n, nb, BinaryOp::Mul, Broadcast::Leading, stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value affine(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  call.expectFloating(x, "x");
  const float alpha = static_cast<float>(call.number(2, "alpha"));
  const float beta = static_cast<float>(call.number(3, "beta"));
  TensorRef out;
  const double id = call.output(x.shape, x.dtype, &out);
  call.device().launchFloating("affine", x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    affine_forward(out.as<T>(), x.as<T>(), alpha, beta, x.numel(), stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value axpy(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const TensorRef y = call.tensor(2, "y");
  call.expectFloating(x, "x");
  call.expectDtype(y, x.dtype, "y");
  call.expectShape(y, x.shape, "y");
  const float alpha = static_cast<float>(call.number(3, "alpha"));
  TensorRef out;
  const double id = call.output(x.shape, x.dtype, &out);
  call.device().launchFloating("axpy", x.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    axpy_forward(out.as<T>(), x.as<T>(), y.as<T>(), alpha, x.numel(), stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value rowDot(Call& call) {
  const TensorRef a = call.tensor(1, "a");
  const TensorRef b = call.tensor(2, "b");
  call.expectDtype(a, DType::F32, "a");
  call.expectDtype(b, DType::F32, "b");
  call.expectShape(b, a.shape, "b");
  const int64_t prefixRank = call.integer(3, "prefixRank", 0, a.shape.rank);
  Shape outShape;
  for (int i = 0; i < prefixRank; ++i) outShape.dims[outShape.rank++] = a.shape[i];
  TensorRef out;
  const double id = call.output(outShape, DType::F32, &out);
  const int64_t rows = outShape.numel();
  const int64_t cols = rows == 0 ? 0 : a.numel() / rows;
  call.device().launch("rowDot", [=](auto&& stream) { row_dot_forward(out.f32(), a.f32(), b.f32(), rows, cols, stream); });
  return Napi::Number::New(call.env(), id);
}

Napi::Value copy(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  TensorRef out;
  const double id = call.output(x.shape, x.dtype, &out);
  const int64_t bytes = x.numel() * static_cast<int64_t>(dtypeSize(x.dtype));
  call.device().launch("copy", [=](auto&& stream) { copy_bytes(out.data, x.data, bytes, stream); });
  return Napi::Number::New(call.env(), id);
}

Napi::Value assign(Call& call) {
  const TensorRef dst = call.tensor(1, "dst");
  const TensorRef src = call.tensor(2, "src");
  call.expectDtype(src, dst.dtype, "src");
  call.expectShape(src, dst.shape, "src");
  const int64_t bytes = dst.numel() * static_cast<int64_t>(dtypeSize(dst.dtype));
  call.device().launch("assign", [=](auto&& stream) { copy_bytes(dst.data, src.data, bytes, stream); });
  return call.env().Undefined();
}

// The element type changed: bf16 rounds to nearest even, i32 truncates toward zero (saturating).
Napi::Value cast(Call& call) {
  const TensorRef x = call.tensor(1, "x");
  const DType dtype = call.dtype(2, "dtype");
  TensorRef out;
  const double id = call.output(x.shape, dtype, &out);
  const DType from = x.dtype;
  call.device().launch("cast", [=](auto&& stream) { convert(out.data, dtype, x.data, from, x.numel(), stream); });
  return Napi::Number::New(call.env(), id);
}

Napi::Value castAll(Call& call) {
  const std::vector<TensorRef> xs = call.tensorList(1, "xs");
  const DType dtype = call.dtype(2, "dtype");
  const DType from = xs.empty() ? dtype : xs[0].dtype;
  for (size_t t = 1; t < xs.size(); ++t)
    if (xs[t].dtype != from) call.expectDtype(xs[t], from, ("xs[" + std::to_string(t) + "]").c_str());
  std::vector<void*> outs(xs.size());
  std::vector<const void*> ins(xs.size());
  std::vector<int64_t> sizes(xs.size());
  Napi::Array result = Napi::Array::New(call.env(), xs.size());
  for (size_t t = 0; t < xs.size(); ++t) {
    TensorRef out;
    result.Set(static_cast<uint32_t>(t), Napi::Number::New(call.env(), call.output(xs[t].shape, dtype, &out)));
    outs[t] = out.data;
    ins[t] = xs[t].data;
    sizes[t] = xs[t].numel();
  }
  call.device().launch("castAll", [=](auto&& stream) {
    convert_all(outs.data(), dtype, ins.data(), from, sizes.data(), static_cast<int32_t>(sizes.size()), stream);
  });
  return result;
}

}  // namespace

void registerElementwiseOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "add", add);
  defineOp(env, ops, "sub", sub);
  defineOp(env, ops, "mul", mul);
  defineOp(env, ops, "mulRows", mulRows);
  defineOp(env, ops, "affine", affine);
  defineOp(env, ops, "axpy", axpy);
  defineOp(env, ops, "rowDot", rowDot);
  defineOp(env, ops, "copy", copy);
  defineOp(env, ops, "assign", assign);
  defineOp(env, ops, "cast", cast);
  defineOp(env, ops, "castAll", castAll);
}

}  // namespace selfe::napi
