// Bindings: attention (softmax attention forward, saving the log-sum-exp), attentionBackward. q, k, v, out
// and the gradients share one dtype (f32, or bf16 on CUDA); lse is f32. The CUDA kernels take head dims up
// to 256. A heads argument > 0 takes q, k, v as [B, L, heads·D].
#include <limits>
#include <string>

#include "call.h"
#include "ops.h"
#include "selfe/kernels/attention.h"

namespace selfe::napi {

namespace {

// The sizes every attention tensor is checked against: q [B, Lq, H, D], k and v [B, Lk, H, D]; or, with
// heads > 0, q [B, Lq, H·D] and k, v [B, Lk, H·D] (the same memory as the rank-4 layout).
struct AttentionDims {
  int64_t batch, lq, heads, headDim, lk;
};

AttentionDims checkInputs(Call& call, const TensorRef& q, const TensorRef& k, const TensorRef& v,
                          const std::optional<TensorRef>& keyMask, int64_t heads) {
  call.expectFloating(q, "q");
  call.expectDtype(k, q.dtype, "k");
  call.expectDtype(v, q.dtype, "v");
  AttentionDims dims{};
  if (heads == 0) {
    call.expectRank(q, 4, "q");
    call.expectRank(k, 4, "k");
    dims = AttentionDims{q.shape[0], q.shape[1], q.shape[2], q.shape[3], k.shape[1]};
    if (!(k.shape[0] == dims.batch && k.shape[2] == dims.heads && k.shape[3] == dims.headDim))
      call.fail(ErrorCode::Shape, "k " + k.shape.str() + " must be [B, Lk, H, D] with B, H, D of q " + q.shape.str());
  } else {
    call.expectRank(q, 3, "q");
    call.expectRank(k, 3, "k");
    if (q.shape[2] % heads != 0)
      call.fail(ErrorCode::Shape, "q " + q.shape.str() + "'s last dimension is not a multiple of heads " +
          std::to_string(heads));
    dims = AttentionDims{q.shape[0], q.shape[1], heads, q.shape[2] / heads, k.shape[1]};
    if (!(k.shape[0] == dims.batch && k.shape[2] == q.shape[2]))
      call.fail(ErrorCode::Shape, "k " + k.shape.str() + " must be [B, Lk, H·D] with B, H·D of q " + q.shape.str());
  }
  call.expectShape(v, k.shape, "v");
  if (call.device().isCuda() && dims.headDim > 256)
    call.fail(ErrorCode::Shape, "head dim " + std::to_string(dims.headDim) + " of q " + q.shape.str() +
        " exceeds 256, the CUDA kernels' limit");
  if (keyMask) {
    call.expectDtype(*keyMask, DType::I32, "keyMask");
    call.expectShape(*keyMask, makeShape({dims.batch, dims.lk}), "keyMask");
  }
  return dims;
}

Napi::Value attention(Call& call) {
  const TensorRef q = call.tensor(1, "q");
  const TensorRef k = call.tensor(2, "k");
  const TensorRef v = call.tensor(3, "v");
  const std::optional<TensorRef> keyMask = call.optionalTensor(4, "keyMask");
  const float scale = static_cast<float>(call.number(5, "scale"));
  const AttentionDims d = checkInputs(call, q, k, v, keyMask, call.integer(6, "heads", 0, std::numeric_limits<int32_t>::max()));
  TensorRef out, lse;
  const double outId = call.output(q.shape, q.dtype, &out);
  const double lseId = call.output(makeShape({d.batch, d.heads, d.lq}), DType::F32, &lse);
  const int32_t* mask = keyMask ? keyMask->i32() : nullptr;
  call.device().launchFloating("attention", q.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    attention_forward(out.as<T>(), lse.f32(), q.as<T>(), k.as<T>(), v.as<T>(), mask, d.batch, d.heads, d.lq, d.lk,
                      d.headDim, scale, stream);
  });
  return handles(call.env(), {outId, lseId});
}

Napi::Value attentionBackward(Call& call) {
  const TensorRef dout = call.tensor(1, "dout");
  const TensorRef q = call.tensor(2, "q");
  const TensorRef k = call.tensor(3, "k");
  const TensorRef v = call.tensor(4, "v");
  const TensorRef out = call.tensor(5, "out");
  const TensorRef lse = call.tensor(6, "lse");
  const std::optional<TensorRef> keyMask = call.optionalTensor(7, "keyMask");
  const float scale = static_cast<float>(call.number(8, "scale"));
  const AttentionDims d = checkInputs(call, q, k, v, keyMask, call.integer(9, "heads", 0, std::numeric_limits<int32_t>::max()));
  call.expectDtype(dout, q.dtype, "dout");
  call.expectDtype(out, q.dtype, "out");
  call.expectDtype(lse, DType::F32, "lse");
  call.expectShape(dout, q.shape, "dout");
  call.expectShape(out, q.shape, "out");
  call.expectShape(lse, makeShape({d.batch, d.heads, d.lq}), "lse");
  TensorRef dq, dk, dv;
  const double dqId = call.output(q.shape, q.dtype, &dq);
  const double dkId = call.output(k.shape, q.dtype, &dk);
  const double dvId = call.output(v.shape, q.dtype, &dv);
  const int32_t* mask = keyMask ? keyMask->i32() : nullptr;
  call.device().launchFloating("attentionBackward", q.dtype, [=](auto&& stream, auto element) {
    using T = typename decltype(element)::type;
    attention_backward(dq.as<T>(), dk.as<T>(), dv.as<T>(), dout.as<T>(), q.as<T>(), k.as<T>(), v.as<T>(), out.as<T>(),
                       lse.f32(), mask, d.batch, d.heads, d.lq, d.lk, d.headDim, scale, stream);
  });
  return handles(call.env(), {dqId, dkId, dvId});
}

}  // namespace

void registerAttentionOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "attention", attention);
  defineOp(env, ops, "attentionBackward", attentionBackward);
}

}  // namespace selfe::napi
