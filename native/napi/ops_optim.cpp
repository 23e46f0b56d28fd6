// Bindings: adamw, adamwEma, emaUpdate, clipByNorm (in place over lists of tensors), globalNorm.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <memory>
#include <numeric>

#include "call.h"
#include "ops.h"
#include "selfe/kernels/optim.h"

namespace selfe::napi {

namespace {

// The pointers and sizes of a validated list, owned by the enqueued closure.
struct ListData {
  std::vector<float*> data;
  std::vector<int64_t> sizes;
  TensorList list() const { return TensorList{data.data(), sizes.data(), static_cast<int32_t>(data.size())}; }
  ConstTensorList constList() const {
    return ConstTensorList{data.data(), sizes.data(), static_cast<int32_t>(data.size())};
  }
};

// An array of f32 tensors; with `like`, element i must have like[i]'s shape.
std::vector<TensorRef> f32List(Call& call, size_t i, const char* name, const std::vector<TensorRef>* like = nullptr) {
  std::vector<TensorRef> list = call.tensorList(i, name);
  if (list.size() > static_cast<size_t>(INT32_MAX))
    call.fail(ErrorCode::InvalidArgument, std::string(name) + " has too many tensors");
  if (like != nullptr && list.size() != like->size())
    call.fail(ErrorCode::InvalidArgument, std::string(name) + " has " + std::to_string(list.size()) +
        " tensors, expected " + std::to_string(like->size()));
  for (size_t j = 0; j < list.size(); ++j) {
    // The element's name is only spelled out on failure: lists hold every parameter of a model.
    if (list[j].dtype == DType::F32 && (like == nullptr || list[j].shape == (*like)[j].shape)) continue;
    const std::string element = std::string(name) + "[" + std::to_string(j) + "]";
    call.expectDtype(list[j], DType::F32, element.c_str());
    if (like != nullptr) call.expectShape(list[j], (*like)[j].shape, element.c_str());
  }
  return list;
}

// One list of an in-place update and whether the update writes it.
struct UpdatedList {
  const std::vector<TensorRef>& tensors;
  const char* name;
  bool written;
};

// Tensors updated in place must not share storage with each other or with the tensors read meanwhile:
// two updates of one buffer (or a read racing a write) would corrupt it. Views count as the same storage.
// Fails on the first tensor, in the order the lists are given, whose storage an earlier one has, where either
// of the two is written. The storages are sorted by address once: a hash map of them cost the optimizer's call
// an allocation per tensor (1,275 in a DiT-S step).
void expectDistinct(Call& call, std::initializer_list<UpdatedList> lists) {
  struct Seen {
    const void* data;
    const char* list;
    size_t index;
    bool written;
  };
  std::vector<Seen> seen;
  for (const UpdatedList& list : lists)
    for (size_t j = 0; j < list.tensors.size(); ++j)
      seen.push_back(Seen{list.tensors[j].data, list.name, j, list.written});
  std::vector<size_t> byAddress(seen.size());
  std::iota(byAddress.begin(), byAddress.end(), size_t{0});
  std::sort(byAddress.begin(), byAddress.end(), [&seen](size_t a, size_t b) {
    return seen[a].data != seen[b].data ? std::less<const void*>()(seen[a].data, seen[b].data) : a < b;
  });
  size_t clash = seen.size(), with = 0;
  size_t first = 0;  // the earliest tensor with the current address
  for (size_t k = 0; k < byAddress.size(); ++k) {
    const size_t i = byAddress[k];
    if (k == 0 || seen[i].data != seen[byAddress[k - 1]].data) {
      first = i;
      continue;
    }
    if ((seen[i].written || seen[first].written) && i < clash) {
      clash = i;
      with = first;
    }
  }
  if (clash == seen.size()) return;
  const auto element = [&seen](size_t i) {
    return std::string(seen[i].list) + "[" + std::to_string(seen[i].index) + "]";
  };
  call.fail(ErrorCode::InvalidArgument,
            element(clash) + " shares storage with " + element(with) + "; tensors updated in place must be distinct");
}

std::shared_ptr<ListData> listData(const std::vector<TensorRef>& list) {
  auto out = std::make_shared<ListData>();
  for (const TensorRef& t : list) {
    out->data.push_back(t.f32());
    out->sizes.push_back(t.numel());
  }
  return out;
}

// Prints a value in full (std::to_string turns 1e-9 into 0.000000).
std::string describe(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

// Hyper-parameters are checked as the f32 the kernel gets: 0.99999999 rounds to 1, 1e39 to infinity.
float hyperParameter(Call& call, size_t i, const char* name) {
  const float value = static_cast<float>(call.number(i, name));
  if (!std::isfinite(value)) call.fail(ErrorCode::InvalidArgument, std::string(name) + " overflows f32");
  return value;
}

// A coefficient in [0, 1) (Adam's betas) or [0, 1] (EMA decay).
float unitInterval(Call& call, size_t i, const char* name, bool includeOne) {
  const float value = hyperParameter(call, i, name);
  if (!(value >= 0 && (includeOne ? value <= 1 : value < 1)))
    call.fail(ErrorCode::InvalidArgument, std::string(name) + " must be in [0, 1" + (includeOne ? "]" : ")") +
        " as an f32, got " + describe(value));
  return value;
}

float nonNegative(Call& call, size_t i, const char* name) {
  const float value = hyperParameter(call, i, name);
  if (!(value >= 0)) call.fail(ErrorCode::InvalidArgument, std::string(name) + " must be >= 0, got " + describe(value));
  return value;
}

float positive(Call& call, size_t i, const char* name) {
  const float value = hyperParameter(call, i, name);
  if (!(value > 0))
    call.fail(ErrorCode::InvalidArgument, std::string(name) + " must be > 0 as an f32, got " + describe(value));
  return value;
}

// adamw's and adamwEma's lists: params, grads, m, v at indices 1 to 4.
struct AdamWLists {
  std::vector<TensorRef> params, grads, m, v;
};

AdamWLists adamwLists(Call& call) {
  AdamWLists a;
  a.params = f32List(call, 1, "params");
  a.grads = f32List(call, 2, "grads", &a.params);
  a.m = f32List(call, 3, "m", &a.params);
  a.v = f32List(call, 4, "v", &a.params);
  return a;
}

// lr, beta1, beta2, eps, weightDecay, step from index `first`.
AdamWHyper adamwHyper(Call& call, size_t first) {
  AdamWHyper hyper;
  hyper.lr = nonNegative(call, first, "lr");
  hyper.beta1 = unitInterval(call, first + 1, "beta1", false);
  hyper.beta2 = unitInterval(call, first + 2, "beta2", false);
  hyper.eps = positive(call, first + 3, "eps");
  hyper.weight_decay = nonNegative(call, first + 4, "weightDecay");
  hyper.step = call.integer(first + 5, "step", 1, (int64_t{1} << 53) - 1);
  return hyper;
}

Napi::Value adamw(Call& call) {
  const AdamWLists a = adamwLists(call);
  const AdamWHyper hyper = adamwHyper(call, 5);
  expectDistinct(call, {{a.params, "params", true}, {a.m, "m", true}, {a.v, "v", true}, {a.grads, "grads", false}});
  auto p = listData(a.params), g = listData(a.grads), mData = listData(a.m), vData = listData(a.v);
  call.device().launch("adamw", [=](auto&& stream) {
    adamw_update(p->list(), g->constList(), mData->list(), vData->list(), hyper, stream);
  });
  return call.env().Undefined();
}

// adamw, then emaUpdate(ema, params, emaDecay) toward the updated params, in one pass.
// Arguments: params, grads, m, v, ema, lr, beta1, beta2, eps, weightDecay, step, emaDecay.
Napi::Value adamwEma(Call& call) {
  const AdamWLists a = adamwLists(call);
  const std::vector<TensorRef> ema = f32List(call, 5, "ema", &a.params);
  const AdamWHyper hyper = adamwHyper(call, 6);
  const float decay = unitInterval(call, 12, "emaDecay", true);
  expectDistinct(call, {{a.params, "params", true}, {a.m, "m", true}, {a.v, "v", true}, {ema, "ema", true},
                        {a.grads, "grads", false}});
  auto p = listData(a.params), g = listData(a.grads), mData = listData(a.m), vData = listData(a.v);
  auto e = listData(ema);
  call.device().launch("adamwEma", [=](auto&& stream) {
    adamw_ema_update(p->list(), g->constList(), mData->list(), vData->list(), e->list(), hyper, decay, stream);
  });
  return call.env().Undefined();
}

Napi::Value emaUpdate(Call& call) {
  const std::vector<TensorRef> ema = f32List(call, 1, "ema");
  const std::vector<TensorRef> params = f32List(call, 2, "params", &ema);
  const float decay = unitInterval(call, 3, "decay", true);
  expectDistinct(call, {{ema, "ema", true}, {params, "params", false}});
  auto e = listData(ema), p = listData(params);
  call.device().launch("emaUpdate", [=](auto&& stream) { ema_update(e->list(), p->constList(), decay, stream); });
  return call.env().Undefined();
}

Napi::Value globalNorm(Call& call) {
  const std::vector<TensorRef> xs = f32List(call, 1, "xs");
  auto data = listData(xs);
  TensorRef out;
  const double id = call.output(Shape{}, DType::F32, &out);
  call.device().launch("globalNorm", [=](auto&& stream) { global_norm(out.f32(), data->constList(), stream); });
  return Napi::Number::New(call.env(), id);
}

Napi::Value clipByNorm(Call& call) {
  const std::vector<TensorRef> xs = f32List(call, 1, "xs");
  const TensorRef norm = call.tensor(2, "norm");
  const float maxNorm = positive(call, 3, "maxNorm");
  call.expectDtype(norm, DType::F32, "norm");
  call.expectShape(norm, Shape{}, "norm");
  expectDistinct(call, {{xs, "xs", true}});
  auto data = listData(xs);
  const float* normData = norm.f32();
  call.device().launch("clipByNorm",
                       [=](auto&& stream) { clip_by_norm(data->list(), normData, maxNorm, stream); });
  return call.env().Undefined();
}

}  // namespace

void registerOptimOps(Napi::Env env, Napi::Object ops) {
  defineOp(env, ops, "adamw", adamw);
  defineOp(env, ops, "emaUpdate", emaUpdate);
  defineOp(env, ops, "adamwEma", adamwEma);
  defineOp(env, ops, "globalNorm", globalNorm);
  defineOp(env, ops, "clipByNorm", clipByNorm);
}

}  // namespace selfe::napi
