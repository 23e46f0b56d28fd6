// CUDA matrix products through cuBLASLt (see selfe/kernels/matmul.h): fp32 accumulation always (f32 storage
// runs as plain SGEMM, no TF32; bf16 storage on tensor cores), strided batches, linear's bias fused as
// cuBLASLt's BIAS epilogue and linear_gelu's bias + GELU as GELU_AUX(_BIAS), which also stores the
// pre-activation for the backward. Each problem's plan (descriptors and algorithm) is built on its first call:
// the heuristic's first algorithm, or on a device whose gemmAlgorithms is "timed" the quickest of its first
// candidates, timed on that call (the first kept unless another is clearly quicker). The only file that needs
// cuBLAS: CMake compiles it only where the cuBLASLt headers exist, so on a machine with nvcc but no cuBLAS it is
// the one CUDA file left unbuilt.
//
// cuBLASLt is column-major; a row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T,
// that is with the operands swapped and each matrix's stored rows read as columns.
#include <cublasLt.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>

#include "check.cuh"
#include "selfe/kernels/activation.h"
#include "selfe/kernels/elementwise.h"
#include "selfe/kernels/matmul.h"

namespace selfe::cuda {

namespace {
void checkBlas(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  const Error::Kind kind = status == CUBLAS_STATUS_ALLOC_FAILED ? Error::Kind::OutOfMemory : Error::Kind::Device;
  throw Error(kind, std::string("matmul: ") + what + " failed: " + cublasLtGetStatusString(status));
}

// Largest power of two (up to 256) dividing the address: cuBLASLt picks kernels by operand alignment.
uint32_t alignmentOf(const void* pointer) {
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

// What runs after the product: nothing, + bias, or GELU (of the product + bias) keeping its input in `aux`.
enum class Epilogue { None, Bias, GeluAux, GeluAuxBias };

bool hasGelu(Epilogue e) { return e == Epilogue::GeluAux || e == Epilogue::GeluAuxBias; }

cublasLtEpilogue_t cublasEpilogue(Epilogue e) {
  switch (e) {
    case Epilogue::Bias: return CUBLASLT_EPILOGUE_BIAS;
    case Epilogue::GeluAux: return CUBLASLT_EPILOGUE_GELU_AUX;
    case Epilogue::GeluAuxBias: return CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
    case Epilogue::None: break;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

// Everything that selects a cuBLASLt plan; the row-major problem as the launcher received it.
struct PlanKey {
  cudaDataType_t type;
  int64_t batch, m, n, k;
  bool transA, transB;
  Epilogue epilogue;
  int64_t strideA, strideB, strideC;
  uint32_t alignA, alignB, alignC, alignBias, alignAux;
  auto tie() const {
    return std::tie(type, batch, m, n, k, transA, transB, epilogue, strideA, strideB, strideC, alignA, alignB, alignC,
                    alignBias, alignAux);
  }
  bool operator<(const PlanKey& other) const { return tie() < other.tie(); }
};

// Descriptors and the heuristic's first algorithm for one PlanKey, built once and reused every step.
struct Plan {
  cublasLtMatmulDesc_t operation = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algorithm{};

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (c != nullptr) cublasLtMatrixLayoutDestroy(c);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (operation != nullptr) cublasLtMatmulDescDestroy(operation);
  }
};

cublasLtMatrixLayout_t layout(cudaDataType_t type, uint64_t rows, uint64_t cols, int64_t ld, int64_t batch,
                              int64_t stride) {
  cublasLtMatrixLayout_t out = nullptr;
  checkBlas(cublasLtMatrixLayoutCreate(&out, type, rows, cols, ld), "cublasLtMatrixLayoutCreate");
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    checkBlas(cublasLtMatrixLayoutSetAttribute(out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)),
              "batch count");
    checkBlas(cublasLtMatrixLayoutSetAttribute(out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)),
              "batch stride");
  }
  return out;
}

// One call's operands in the launcher's row-major order (cuBLASLt gets them swapped, see the top of the file),
// its scalars and its stream: the heuristic reads the bias's and aux's addresses, a timed choice runs on them.
struct Call {
  const void* a;
  const void* b;
  void* c;
  const void* cIn;   // C, read where beta != 0: c itself, or (gemm_add) another matrix of c's layout
  const void* bias;  // the BIAS epilogue's, or nullptr
  void* aux;         // GELU_AUX's pre-activation output, or nullptr
  float alpha, beta;
  Stream stream;
};
}  // namespace

struct GemmState {
  int ordinal = 0;
  cublasLtHandle_t handle = nullptr;
  // The device option gemmWorkspaceBytes (context.h): what the heuristic may plan for and every product is given.
  size_t workspaceBytes = 0;
  void* workspace = nullptr;  // nullptr when workspaceBytes is 0
  std::map<PlanKey, Plan> plans;
  std::set<PlanKey> refused;

  ~GemmState() {
    plans.clear();
    if (workspace != nullptr) cudaFree(workspace);
    if (handle != nullptr) cublasLtDestroy(handle);
  }

  // Whether cuBLASLt has a plan for the key (remembered either way), built on the call's operands.
  bool offers(const PlanKey& key, const Call& call) {
    if (plans.count(key) != 0) return true;
    if (refused.count(key) != 0) return false;
    try {
      planFor(key, call);
      return true;
    } catch (const Error&) {
      refused.insert(key);
      return false;
    }
  }

  Plan& planFor(const PlanKey& key, const Call& call) {
    auto found = plans.find(key);
    if (found != plans.end()) return found->second;
    Plan& plan = plans[key];
    try {
      build(plan, key, call);
    } catch (...) {
      plans.erase(key);
      throw;
    }
    return plan;
  }

  // Enqueues D = epilogue(alpha op(A) op(B) + beta C) with the plan's descriptors and the given algorithm: D is
  // call.c, C call.cIn (the same matrix, or another of its layout: cuBLASLt computes out of place too).
  cublasStatus_t enqueue(Plan& plan, const cublasLtMatmulAlgo_t& algorithm, const Call& call) {
    return cublasLtMatmul(handle, plan.operation, &call.alpha, call.b, plan.a, call.a, plan.b, &call.beta, call.cIn, plan.c,
                          call.c, plan.c, &algorithm, workspace, workspaceBytes, call.stream);
  }

 private:
  // Candidates a timed choice asks the heuristic for; rounds over all of them, and runs per candidate a round.
  static constexpr int kCandidates = 8;
  static constexpr int kTimedRounds = 3;
  static constexpr int kTimedRuns = 3;
  // Another candidate replaces the heuristic's first only when quicker by more than this fraction, so that
  // timing noise alone never does. (It did not cure the H200's MLP down projections, where timing keeps an
  // algorithm 15-22% slower on bench:gpu's rotating inputs; docs/cuda.md, GEMM.)
  static constexpr float kSwitchMargin = 0.03f;

  void build(Plan& plan, const PlanKey& key, const Call& call) {
    checkBlas(cublasLtMatmulDescCreate(&plan.operation, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
    // cuBLAS's A is our B and its B is our A (see the top of the file).
    const cublasOperation_t opA = key.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t opB = key.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    checkBlas(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof(opA)), "transa");
    checkBlas(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof(opB)), "transb");
    if (key.epilogue != Epilogue::None) {
      const cublasLtEpilogue_t epilogue = cublasEpilogue(key.epilogue);
      checkBlas(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)),
                "epilogue");
    }
    // Unset, the heuristic would take the bias as 256-byte aligned and may pick a kernel a skewed one faults.
    if (call.bias != nullptr)
      checkBlas(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &call.bias, sizeof(call.bias)),
                "bias pointer");
    if (hasGelu(key.epilogue)) {
      // The pre-activation has D's layout: column-major n x m, leading dimension n.
      const int64_t auxLd = key.n;
      checkBlas(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &auxLd, sizeof(auxLd)),
                "gelu aux ld");
      checkBlas(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &call.aux,
                                               sizeof(call.aux)),
                "gelu aux pointer");
    }
    // Stored row-major matrices read as column-major ones: [rows, cols] row-major is (cols x rows), ld = cols.
    const uint64_t m = static_cast<uint64_t>(key.m), n = static_cast<uint64_t>(key.n), k = static_cast<uint64_t>(key.k);
    plan.a = key.transB ? layout(key.type, k, n, key.k, key.batch, key.strideB) : layout(key.type, n, k, key.n, key.batch, key.strideB);
    plan.b = key.transA ? layout(key.type, m, k, key.m, key.batch, key.strideA) : layout(key.type, k, m, key.k, key.batch, key.strideA);
    plan.c = layout(key.type, n, m, key.n, key.batch, key.strideC);

    // A timed choice reruns the product, so only where that rewrites the same result: beta 0.
    const bool timed = call.stream.context->timedGemmAlgorithms && call.beta == 0.0f;
    cublasLtMatmulPreference_t preference = nullptr;
    checkBlas(cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
    cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
    int found = 0;
    const cublasStatus_t status = [&] {
      const uint64_t maxWorkspace = workspaceBytes;
      cublasStatus_t s = cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                              &maxWorkspace, sizeof(maxWorkspace));
      const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.alignB},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.alignA},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.alignC},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.alignC}};
      for (const auto& [attribute, value] : alignments)
        if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulPreferenceSetAttribute(preference, attribute, &value, sizeof(value));
      if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulAlgoGetHeuristic(handle, plan.operation, plan.a, plan.b, plan.c, plan.c, preference,
                                           timed ? kCandidates : 1, results, &found);
      return s;
    }();
    cublasLtMatmulPreferenceDestroy(preference);
    checkBlas(status, "cublasLtMatmulAlgoGetHeuristic");
    const std::string problem = "m=" + std::to_string(key.m) + " n=" + std::to_string(key.n) + " k=" + std::to_string(key.k) +
                                " batch=" + std::to_string(key.batch);
    if (found == 0) throw Error(Error::Kind::Device, "matmul: cuBLASLt has no algorithm for " + problem);
    plan.algorithm = found > 1 ? fastest(plan, results, found, call, problem) : results[0].algo;
  }

  // The quickest of the heuristic's candidates on this call's operands: each runs once to warm up, then in
  // kTimedRounds rounds over all of them (so a clock ramp or a noisy moment is not one candidate's) kTimedRuns
  // times between two events; a candidate's time is its best round. The heuristic's first is kept unless
  // another beats it by kSwitchMargin. A candidate that cannot run here is skipped. Blocks the calling thread
  // until the stream has run everything before (once per plan).
  cublasLtMatmulAlgo_t fastest(Plan& plan, const cublasLtMatmulHeuristicResult_t* candidates, int count, const Call& call,
                               const std::string& problem) {
    struct Event {
      cudaEvent_t event = nullptr;
      ~Event() {
        if (event != nullptr) cudaEventDestroy(event);
      }
    } start, stop;
    check(cudaEventCreate(&start.event), "matmul: cudaEventCreate");
    check(cudaEventCreate(&stop.event), "matmul: cudaEventCreate");
    bool runs[kCandidates] = {};
    for (int i = 0; i < count; ++i)
      runs[i] = candidates[i].state == CUBLAS_STATUS_SUCCESS && enqueue(plan, candidates[i].algo, call) == CUBLAS_STATUS_SUCCESS;
    float best[kCandidates] = {};
    for (int round = 0; round < kTimedRounds; ++round)
      for (int i = 0; i < count; ++i) {
        if (!runs[i]) continue;
        check(cudaEventRecord(start.event, call.stream), "matmul: cudaEventRecord");
        // The warm-up ran, so a failure now is not this candidate's to skip.
        for (int run = 0; run < kTimedRuns; ++run) checkBlas(enqueue(plan, candidates[i].algo, call), "cublasLtMatmul (timing)");
        check(cudaEventRecord(stop.event, call.stream), "matmul: cudaEventRecord");
        check(cudaEventSynchronize(stop.event), "matmul: timing cuBLASLt's algorithms");
        float milliseconds = 0.0f;
        check(cudaEventElapsedTime(&milliseconds, start.event, stop.event), "matmul: cudaEventElapsedTime");
        if (round == 0 || milliseconds < best[i]) best[i] = milliseconds;
      }
    int chosen = -1;
    for (int i = 0; i < count; ++i)
      if (runs[i] && (chosen < 0 || best[i] < best[chosen])) chosen = i;
    if (chosen < 0)
      throw Error(Error::Kind::Device, "matmul: none of cuBLASLt's " + std::to_string(count) + " algorithms for " + problem + " ran");
    if (runs[0] && best[chosen] > best[0] * (1.0f - kSwitchMargin)) chosen = 0;
    return candidates[chosen].algo;
  }
};

GemmState* createGemmState(int ordinal, size_t workspaceBytes) {
  auto state = std::make_unique<GemmState>();
  state->ordinal = ordinal;
  state->workspaceBytes = workspaceBytes;
  checkBlas(cublasLtCreate(&state->handle), "cublasLtCreate");
  if (workspaceBytes > 0) check(cudaMalloc(&state->workspace, workspaceBytes), "matmul workspace");
  return state.release();
}

void destroyGemmState(GemmState* state) { delete state; }

namespace {
template <class T>
constexpr cudaDataType_t cudaTypeOf();
template <>
constexpr cudaDataType_t cudaTypeOf<float>() {
  return CUDA_R_32F;
}
template <>
constexpr cudaDataType_t cudaTypeOf<bf16>() {
  return CUDA_R_16BF;
}

void zero(float* c, int64_t n, Stream stream) { fill32(c, 0, n, stream); }
void zero(bf16* c, int64_t n, Stream stream) { fill16(c, 0, n, stream); }

// Runs the call with its plan's algorithm, pointing the plan's descriptor at this call's bias and GELU input.
void runPlan(GemmState& state, Plan& plan, const Call& call, const char* name) {
  if (call.bias != nullptr)
    checkBlas(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &call.bias, sizeof(call.bias)),
              "bias pointer");
  if (call.aux != nullptr)
    checkBlas(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &call.aux,
                                             sizeof(call.aux)),
              "gelu aux pointer");
  checkBlas(state.enqueue(plan, plan.algorithm, call), "cublasLtMatmul");
  checkLaunch(name);
}

// c = alpha op(A) op(B) + beta cIn (+ bias per output column of the row-major result); cIn is c itself
// where it is nullptr.
template <class T>
void matmul(T* c, const T* a, const T* b, const T* bias, int64_t batch, int64_t m, int64_t n, int64_t k, bool transA,
            bool transB, int64_t strideA, int64_t strideB, int64_t strideC, float alpha, float beta, Stream stream,
            const T* cIn = nullptr) {
  if (batch == 0 || m == 0 || n == 0) return;
  if (cIn == nullptr) cIn = c;
  if (k == 0) {
    // An empty sum: beta C, or zero (then the bias).
    if (beta == 0.0f) zero(c, batch * m * n, stream);
    else affine_forward(c, cIn, beta, 0.0f, batch * m * n, stream);
    if (bias != nullptr) binary_forward(c, c, bias, batch * m * n, n, BinaryOp::Add, Broadcast::Trailing, stream);
    return;
  }
  // A weight shared across the batch: fold the batch into rows, one larger GEMM instead of a strided batch.
  if (batch > 1 && strideB == 0 && !transA && strideA == m * k && strideC == m * n && batch * m <= INT32_MAX) {
    m *= batch;
    batch = 1;
  }
  GemmState* state = stream.context->gemm;
  if (state == nullptr) throw Error(Error::Kind::Device, "matmul: this device has no cuBLASLt state");
  // The plan's C and D alignment: the lesser of the two where C is another matrix that is read.
  const uint32_t alignC = beta != 0.0f ? std::min(alignmentOf(c), alignmentOf(cIn)) : alignmentOf(c);
  const PlanKey key{cudaTypeOf<T>(), batch, m, n, k, transA, transB, bias != nullptr ? Epilogue::Bias : Epilogue::None,
                    strideA, strideB, strideC, alignmentOf(a), alignmentOf(b), alignC,
                    bias != nullptr ? alignmentOf(bias) : 0u, 0u};
  const Call call{a, b, c, cIn, bias, nullptr, alpha, beta, stream};
  if (bias != nullptr && !state->offers(key, call)) {
    // No fused-bias kernel for this problem: the plain product, then the bias as its own pass.
    matmul<T>(c, a, b, nullptr, batch, m, n, k, transA, transB, strideA, strideB, strideC, alpha, beta, stream, cIn);
    binary_forward(c, c, bias, batch * m * n, n, BinaryOp::Add, Broadcast::Trailing, stream);
    return;
  }
  runPlan(*state, state->planFor(key, call), call, "matmul");
}

// pre = x W^T + bias and y = gelu(pre) for one [rows, in] x [out, in]^T product.
template <class T>
void linearGelu(T* y, T* pre, const T* x, const T* weight, const T* bias, int64_t rows, int64_t in, int64_t out,
                Stream stream) {
  if (rows == 0 || out == 0) return;
  GemmState* state = stream.context->gemm;
  if (state == nullptr) throw Error(Error::Kind::Device, "linearGelu: this device has no cuBLASLt state");
  const Epilogue epilogue = bias != nullptr ? Epilogue::GeluAuxBias : Epilogue::GeluAux;
  const PlanKey key{cudaTypeOf<T>(), 1, rows, out, in, false, true, epilogue, 0, 0, 0,
                    alignmentOf(x), alignmentOf(weight), alignmentOf(y), bias != nullptr ? alignmentOf(bias) : 0u,
                    alignmentOf(pre)};
  // cuBLASLt wants the pre-activation's leading dimension divisible by 8, and has the epilogue for some
  // problems only: otherwise the product (with its bias) into pre, then GELU as its own pass.
  const Call call{x, weight, y, y, bias, pre, 1.0f, 0.0f, stream};
  if (in == 0 || out % 8 != 0 || !state->offers(key, call)) {
    matmul<T>(pre, x, weight, bias, 1, rows, out, in, false, true, 0, 0, 0, 1.0f, 0.0f, stream);
    gelu_forward(y, pre, rows * out, stream);
    return;
  }
  runPlan(*state, state->planFor(key, call), call, "linearGelu");
}
}  // namespace

void gemm(float* c, const float* a, const float* b, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
          bool trans_b, int64_t stride_a, int64_t stride_b, int64_t stride_c, float alpha, float beta, Stream stream) {
  matmul<float>(c, a, b, nullptr, batch, m, n, k, trans_a, trans_b, stride_a, stride_b, stride_c, alpha, beta, stream);
}
void gemm(bf16* c, const bf16* a, const bf16* b, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
          bool trans_b, int64_t stride_a, int64_t stride_b, int64_t stride_c, float alpha, float beta, Stream stream) {
  matmul<bf16>(c, a, b, nullptr, batch, m, n, k, trans_a, trans_b, stride_a, stride_b, stride_c, alpha, beta, stream);
}

// d = base + alpha op(A) op(B): cuBLASLt reads the base as C (beta = 1) and writes D elsewhere, the base unchanged.
void gemm_add(float* d, const float* base, const float* a, const float* b, int64_t m, int64_t n, int64_t k, bool trans_a,
              bool trans_b, float alpha, Stream stream) {
  matmul<float>(d, a, b, nullptr, 1, m, n, k, trans_a, trans_b, 0, 0, 0, alpha, 1.0f, stream, base);
}
void gemm_add(bf16* d, const bf16* base, const bf16* a, const bf16* b, int64_t m, int64_t n, int64_t k, bool trans_a,
              bool trans_b, float alpha, Stream stream) {
  matmul<bf16>(d, a, b, nullptr, 1, m, n, k, trans_a, trans_b, 0, 0, 0, alpha, 1.0f, stream, base);
}

// y = x W^T + bias: m = rows, n = out, k = in, W stored [out, in] (transposed B).
void linear_forward(float* y, const float* x, const float* weight, const float* bias, int64_t rows, int64_t in_features,
                    int64_t out_features, Stream stream) {
  matmul<float>(y, x, weight, bias, 1, rows, out_features, in_features, false, true, 0, 0, 0, 1.0f, 0.0f, stream);
}
void linear_forward(bf16* y, const bf16* x, const bf16* weight, const bf16* bias, int64_t rows, int64_t in_features,
                    int64_t out_features, Stream stream) {
  matmul<bf16>(y, x, weight, bias, 1, rows, out_features, in_features, false, true, 0, 0, 0, 1.0f, 0.0f, stream);
}

void linear_gelu_forward(float* y, float* pre, const float* x, const float* weight, const float* bias, int64_t rows,
                         int64_t in_features, int64_t out_features, Stream stream) {
  linearGelu<float>(y, pre, x, weight, bias, rows, in_features, out_features, stream);
}
void linear_gelu_forward(bf16* y, bf16* pre, const bf16* x, const bf16* weight, const bf16* bias, int64_t rows,
                         int64_t in_features, int64_t out_features, Stream stream) {
  linearGelu<bf16>(y, pre, x, weight, bias, rows, in_features, out_features, stream);
}

}  // namespace selfe::cuda
