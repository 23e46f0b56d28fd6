// Bindings: embedding (table [V,D], ids i32 of any shape) -> [...ids.shape, D], embeddingBackward (dout
// [...ids.shape, D], ids, vocab) -> [V, D], timestepEmbedding (t [B], dim, maxPeriod) -> [B, dim]. Ids live
// on the device, so an id outside [0, V) is caught by the kernel and becomes a sticky device error.
#include <limits>
#include <string>

#include "call.h"
#include "ops.h"
#include "selfe/kernels/embedding.h"

namespace selfe::napi {

namespace {

constexpr int64_t kMaxVocab = std::numeric_limits<int32_t>::max();
constexpr int64_t kMaxEmbeddingDim = int64_t{1} << 20;

void expectIds(Call& call, const TensorRef& ids) {
  call.expectDtype(ids, DType::I32, "ids");
  if (ids.shape.rank >= kMaxRank)
    call.fail(ErrorCode::Shape, "ids must have rank < " + std::to_string(kMaxRank) +
        " (the result adds a dimension), got " + ids.shape.str());
}

Shape withLast(const Shape& shape, int64_t last) {
  Shape out = shape;
  out.dims[out.rank++] = last;
  return out;
}

Napi::Value embedding(Call& call) {
  const TensorRef table = call.tensor(1, "table");
  const TensorRef ids = call.tensor(2, "ids");
  call.expectDtype(table, DType::F32, "table");
  call.expectRank(table, 2, "table");
  expectIds(call, ids);
  const int64_t vocab = table.shape[0], dim = table.shape[1];
  TensorRef out;
  const double id = call.output(withLast(ids.shape, dim), DType::F32, &out);
  const int64_t count = ids.numel();
  call.device().launch("embedding", [=](auto&& stream) {
    embedding_forward(out.f32(), table.f32(), ids.i32(), count, vocab, dim, stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value embeddingBackward(Call& call) {
  const TensorRef dout = call.tensor(1, "dout");
  const TensorRef ids = call.tensor(2, "ids");
  call.expectDtype(dout, DType::F32, "dout");
  expectIds(call, ids);
  if (dout.shape.rank != ids.shape.rank + 1)
    call.fail(ErrorCode::Shape, "dout " + dout.shape.str() + " must be ids.shape " + ids.shape.str() +
        " plus the embedding dimension");
  const int64_t dim = dout.shape.last();
  call.expectShape(dout, withLast(ids.shape, dim), "dout");
  const int64_t vocab = call.integer(3, "vocab", 1, kMaxVocab);
  TensorRef dtable;
  const double id = call.output(makeShape({vocab, dim}), DType::F32, &dtable);
  const int64_t count = ids.numel();
  call.device().launch("embeddingBackward", [=](auto&& stream) {
    embedding_backward(dtable.f32(), dout.f32(), ids.i32(), count, vocab, dim, stream);
  });
  return Napi::Number::New(call.env(), id);
}

Napi::Value timestepEmbedding(Call& call) {
  const TensorRef t = call.tensor(1, "t");
  call.expectDtype(t, DType::F32, "t");
  call.expectRank(t, 1, "t");
  const int64_t dim = call.integer(2, "dim", 1, kMaxEmbeddingDim);
  const double maxPeriod = call.number(3, "maxPeriod");
  // Its logarithm sets the frequencies, so it must stay a positive normal f32.
  if (!(maxPeriod >= std::numeric_limits<float>::min() && maxPeriod <= std::numeric_limits<float>::max()))
    call.fail(ErrorCode::InvalidArgument, "maxPeriod must be in [1.2e-38, 3.4e38] (a positive normal f32)");
  const int64_t batch = t.shape[0];
  TensorRef out;
  const double id = call.output(makeShape({batch, dim}), DType::F32, &out);
  const float period = static_cast<float>(maxPeriod);
  call.device().launch("timestepEmbedding", [=](auto&& stream) {
    timestep_embedding(out.f32(), t.f32(), batch, dim, period, stream);
  });
  return Napi::Number::New(call.env(), id);
}

}  // namespace

void registerEmbeddingOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "embedding", embedding);
  defineOp(env, ops, "embeddingBackward", embeddingBackward);
  defineOp(env, ops, "timestepEmbedding", timestepEmbedding);
}

}  // namespace selfe::napi
