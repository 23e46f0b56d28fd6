// The CPU stand-in for cuBLASLt declared in include/cublasLt.h (what it computes and what it refuses is
// described there). Products run as OpenBLAS SGEMMs on the same column-major layouts (bf16 operands widened
// to f32), accumulating in fp32 as the library does (split-K: one SGEMM per K slice into the workspace, then
// their sum); the epilogue follows in fp32, then one rounding to the output type (f32, or bf16 to nearest-even).
#include <cblas.h>
#include <cublasLt.h>
#include <cuda_bf16.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct cublasLtContext {};

struct cublasLtMatrixLayoutOpaque_t {
  cudaDataType_t type;
  uint64_t rows, cols;
  int64_t ld;
  int32_t batch = 1;
  int64_t stride = 0;
  bool operator==(const cublasLtMatrixLayoutOpaque_t& o) const {
    return type == o.type && rows == o.rows && cols == o.cols && ld == o.ld && batch == o.batch && stride == o.stride;
  }
};

struct cublasLtMatmulDescOpaque_t {
  int32_t transA = CUBLAS_OP_N, transB = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
  void* aux = nullptr;
  int64_t auxLd = 0;
};

struct cublasLtMatmulPreferenceOpaque_t {
  uint64_t workspace = 0;
  uint32_t alignA = 256, alignB = 256, alignC = 256, alignD = 256;
};

namespace {

// What the heuristic chose an algorithm for: the problem (descriptor without its pointers, layouts) and the
// alignments the algorithm may assume.
struct Choice {
  int32_t transA, transB;
  uint32_t epilogue;
  int64_t auxLd;
  cublasLtMatrixLayoutOpaque_t a, b, c, d;
  uint32_t alignA, alignB, alignC, alignD, alignBias, alignAux;
  size_t algorithm;  // the index into cublasLtEmu::algorithms
  int splits;
  size_t workspace;  // bytes the algorithm needs
};
std::vector<Choice> choices;
constexpr uint64_t kAlgoTag = 0x5e1fe0c0b1a5u;

std::string lastFailure;

cublasStatus_t refuse(cublasStatus_t status, const std::string& why) {
  lastFailure = why;
  return status;
}

template <class T>
cublasStatus_t setFrom(T& field, const void* buffer, size_t size, const char* name) {
  if (buffer == nullptr || size != sizeof(T))
    return refuse(CUBLAS_STATUS_INVALID_VALUE, std::string(name) + " set with " + std::to_string(size) + " bytes, expected " +
                                                   std::to_string(sizeof(T)));
  std::memcpy(&field, buffer, sizeof(T));
  return CUBLAS_STATUS_SUCCESS;
}

uint32_t alignmentOf(const void* pointer) {
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

size_t elementBytes(cudaDataType_t type) { return type == CUDA_R_32F ? 4 : 2; }

bool hasBias(uint32_t epilogue) { return (epilogue & CUBLASLT_EPILOGUE_BIAS) != 0; }
bool hasGelu(uint32_t epilogue) { return (epilogue & CUBLASLT_EPILOGUE_GELU) != 0; }

// The checks the library makes of a problem before choosing or running an algorithm.
cublasStatus_t validate(const cublasLtMatmulDescOpaque_t& op, const cublasLtMatrixLayoutOpaque_t& a,
                        const cublasLtMatrixLayoutOpaque_t& b, const cublasLtMatrixLayoutOpaque_t& c,
                        const cublasLtMatrixLayoutOpaque_t& d) {
  if (a.type != b.type || a.type != c.type || a.type != d.type) return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "mixed matrix types");
  const uint64_t m = op.transA == CUBLAS_OP_N ? a.rows : a.cols, k = op.transA == CUBLAS_OP_N ? a.cols : a.rows;
  const uint64_t kB = op.transB == CUBLAS_OP_N ? b.rows : b.cols, n = op.transB == CUBLAS_OP_N ? b.cols : b.rows;
  if (k != kB || c.rows != m || c.cols != n || d.rows != m || d.cols != n)
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "op(A) is " + std::to_string(m) + "x" + std::to_string(k) + ", op(B) " +
                                                   std::to_string(kB) + "x" + std::to_string(n) + ", C " + std::to_string(c.rows) +
                                                   "x" + std::to_string(c.cols) + ", D " + std::to_string(d.rows) + "x" +
                                                   std::to_string(d.cols));
  for (const auto* layout : {&a, &b, &c, &d})
    if (layout->ld < 1 || static_cast<uint64_t>(layout->ld) < layout->rows)
      return refuse(CUBLAS_STATUS_INVALID_VALUE, "leading dimension " + std::to_string(layout->ld) + " below the rows (" +
                                                     std::to_string(layout->rows) + ")");
  if (a.batch != b.batch || a.batch != c.batch || a.batch != d.batch)
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "batch counts differ");
  const uint32_t known[] = {CUBLASLT_EPILOGUE_DEFAULT, CUBLASLT_EPILOGUE_BIAS, CUBLASLT_EPILOGUE_GELU_AUX,
                            CUBLASLT_EPILOGUE_GELU_AUX_BIAS};
  if (std::find(std::begin(known), std::end(known), op.epilogue) == std::end(known))
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "an epilogue the emulator does not know");
  if (hasGelu(op.epilogue)) {
    if (op.auxLd % 8 != 0 || op.auxLd < static_cast<int64_t>(m))
      return refuse(CUBLAS_STATUS_INVALID_VALUE, "EPILOGUE_AUX_LD " + std::to_string(op.auxLd) +
                                                     " is not a multiple of 8 at least D's rows (" + std::to_string(m) + ")");
    // A batched aux needs EPILOGUE_AUX_BATCH_STRIDE, which the emulator (like matmul.cu) does not set.
    if (d.batch > 1) return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "GELU_AUX on a batch");
  }
  return CUBLAS_STATUS_SUCCESS;
}

float load(cudaDataType_t type, const void* base, int64_t index) {
  if (type == CUDA_R_32F) return static_cast<const float*>(base)[index];
  return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[index]);
}
void store(cudaDataType_t type, void* base, int64_t index, float value) {
  if (type == CUDA_R_32F) static_cast<float*>(base)[index] = value;
  else static_cast<__nv_bfloat16*>(base)[index] = __float2bfloat16_rn(value);
}

// A stored matrix (its rows x cols at leading dimension ld) as f32: f32 storage as it is, bf16 widened into
// `wide` with the same leading dimension.
const float* asFloats(cudaDataType_t type, const void* base, const cublasLtMatrixLayoutOpaque_t& layout,
                      std::vector<float>& wide) {
  if (type == CUDA_R_32F || layout.rows == 0 || layout.cols == 0) return static_cast<const float*>(base);
  wide.assign(static_cast<size_t>(layout.ld * (static_cast<int64_t>(layout.cols) - 1) + static_cast<int64_t>(layout.rows)), 0.0f);
  for (uint64_t col = 0; col < layout.cols; ++col)
    for (uint64_t row = 0; row < layout.rows; ++row) {
      const int64_t at = static_cast<int64_t>(row) + static_cast<int64_t>(col) * layout.ld;
      wide[static_cast<size_t>(at)] = load(type, base, at);
    }
  return wide.data();
}

// cuBLASLt's Trace log (CUBLASLT_LOG_LEVEL >= 2, or bit 2 of CUBLASLT_LOG_MASK): a line per product that ran, in
// the library's format, appended to CUBLASLT_LOG_FILE (%i: the process id) or written to stdout. Read at every
// call here; the library reads the variables once, when it starts.
void traceMatmul(const cublasLtMatmulDescOpaque_t& op, const void* A, const cublasLtMatrixLayoutOpaque_t& a, const void* B,
                 const cublasLtMatrixLayoutOpaque_t& b, const void* C, const cublasLtMatrixLayoutOpaque_t& c, const void* D,
                 const cublasLtMatrixLayoutOpaque_t& d, size_t algorithm, int splits, const void* workspace,
                 size_t workspaceBytes, float beta) {
  const char* level = std::getenv("CUBLASLT_LOG_LEVEL");
  const char* mask = std::getenv("CUBLASLT_LOG_MASK");
  if (!((level != nullptr && std::atoi(level) >= 2) || (mask != nullptr && (std::atoi(mask) & 2) != 0))) return;
  const auto layout = [](const cublasLtMatrixLayoutOpaque_t& l) {
    std::string text = std::string("[type=") + (l.type == CUDA_R_32F ? "R_32F" : "R_16BF") + " rows=" + std::to_string(l.rows) +
                       " cols=" + std::to_string(l.cols) + " ld=" + std::to_string(l.ld);
    if (l.batch > 1) text += " batchCount=" + std::to_string(l.batch) + " stridedBatchOffset=" + std::to_string(l.stride);
    return text + "]";
  };
  const auto pointer = [](const void* p) {
    char text[32];
    std::snprintf(text, sizeof(text), "0X%llX", static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(p)));
    return std::string(text);
  };
  std::string operation = "[computeType=COMPUTE_32F scaleType=R_32F";
  if (op.transA == CUBLAS_OP_T) operation += " transa=OP_T";
  if (op.transB == CUBLAS_OP_T) operation += " transb=OP_T";
  if (op.epilogue == CUBLASLT_EPILOGUE_BIAS) operation += " epilogue=EPILOGUE_BIAS";
  if (op.epilogue == CUBLASLT_EPILOGUE_GELU_AUX) operation += " epilogue=EPILOGUE_GELU_AUX";
  if (op.epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS) operation += " epilogue=EPILOGUE_GELU_AUX_BIAS";
  if (hasBias(op.epilogue)) operation += " biasPointer=" + pointer(op.bias);
  operation += "]";
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  char betaText[32];
  std::snprintf(betaText, sizeof(betaText), "%g", beta);
  const std::string line = std::string("[") + when + "][cublasLt][" + std::to_string(getpid()) + "][Trace][cublasLtMatmul] A=" +
                           pointer(A) + " Adesc=" + layout(a) + " B=" + pointer(B) + " Bdesc=" + layout(b) + " C=" + pointer(C) +
                           " Cdesc=" + layout(c) + " D=" + pointer(D) + " Ddesc=" + layout(d) + " computeDesc=" + operation +
                           " algo=[algoId=" + std::to_string(algorithm) + " splitK=" + std::to_string(splits) +
                           "] workSpace=" + pointer(workspace) + " workSpaceSizeInBytes=" + std::to_string(workspaceBytes) +
                           " beta=" + betaText + " outOfPlace=" + (C == D ? "0" : "1") + " stream=0X0\n";
  const char* file = std::getenv("CUBLASLT_LOG_FILE");
  if (file == nullptr) {
    std::fputs(line.c_str(), stdout);
    return;
  }
  std::string path = file;
  if (const size_t at = path.find("%i"); at != std::string::npos) path.replace(at, 2, std::to_string(getpid()));
  if (std::FILE* out = std::fopen(path.c_str(), "a")) {
    std::fputs(line.c_str(), out);
    std::fclose(out);
  }
}

float geluTanh(float x) {
  const double v = x;
  return static_cast<float>(0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))));
}

}  // namespace

const char* cublasLtGetStatusString(cublasStatus_t status) {
  static std::string text;
  const char* name = "CUBLAS_STATUS_UNKNOWN";
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: name = "CUBLAS_STATUS_NOT_INITIALIZED"; break;
    case CUBLAS_STATUS_ALLOC_FAILED: name = "CUBLAS_STATUS_ALLOC_FAILED"; break;
    case CUBLAS_STATUS_INVALID_VALUE: name = "CUBLAS_STATUS_INVALID_VALUE"; break;
    case CUBLAS_STATUS_EXECUTION_FAILED: name = "CUBLAS_STATUS_EXECUTION_FAILED"; break;
    case CUBLAS_STATUS_NOT_SUPPORTED: name = "CUBLAS_STATUS_NOT_SUPPORTED"; break;
  }
  // The emulator says why, where the library only names the status.
  text = std::string(name) + " (emulator: " + lastFailure + ")";
  return text.c_str();
}

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  *handle = new cublasLtContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType_t type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  if (type != CUDA_R_32F && type != CUDA_R_16BF) return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "a matrix type other than f32 or bf16");
  *layout = new cublasLtMatrixLayoutOpaque_t{type, rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  delete layout;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attribute,
                                                const void* buffer, size_t size) {
  switch (attribute) {
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return setFrom(layout->batch, buffer, size, "BATCH_COUNT");
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return setFrom(layout->stride, buffer, size, "STRIDED_BATCH_OFFSET");
  }
  return refuse(CUBLAS_STATUS_INVALID_VALUE, "a layout attribute the emulator does not know");
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t computeType, cudaDataType_t scaleType) {
  if (computeType != CUBLAS_COMPUTE_32F || scaleType != CUDA_R_32F)
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "compute or scale type other than 32F");
  *desc = new cublasLtMatmulDescOpaque_t;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  delete desc;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute,
                                              const void* buffer, size_t size) {
  switch (attribute) {
    case CUBLASLT_MATMUL_DESC_TRANSA: return setFrom(desc->transA, buffer, size, "TRANSA");
    case CUBLASLT_MATMUL_DESC_TRANSB: return setFrom(desc->transB, buffer, size, "TRANSB");
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return setFrom(desc->epilogue, buffer, size, "EPILOGUE");
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return setFrom(desc->bias, buffer, size, "BIAS_POINTER");
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: return setFrom(desc->aux, buffer, size, "EPILOGUE_AUX_POINTER");
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: return setFrom(desc->auxLd, buffer, size, "EPILOGUE_AUX_LD");
  }
  return refuse(CUBLAS_STATUS_INVALID_VALUE, "a descriptor attribute the emulator does not know");
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* preference) {
  *preference = new cublasLtMatmulPreferenceOpaque_t;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t preference) {
  delete preference;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t preference,
                                                    cublasLtMatmulPreferenceAttributes_t attribute, const void* buffer,
                                                    size_t size) {
  switch (attribute) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return setFrom(preference->workspace, buffer, size, "MAX_WORKSPACE_BYTES");
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: return setFrom(preference->alignA, buffer, size, "MIN_ALIGNMENT_A_BYTES");
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: return setFrom(preference->alignB, buffer, size, "MIN_ALIGNMENT_B_BYTES");
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: return setFrom(preference->alignC, buffer, size, "MIN_ALIGNMENT_C_BYTES");
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: return setFrom(preference->alignD, buffer, size, "MIN_ALIGNMENT_D_BYTES");
  }
  return refuse(CUBLAS_STATUS_INVALID_VALUE, "a preference attribute the emulator does not know");
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t preference, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int* count) {
  const std::lock_guard<std::recursive_mutex> serial(emu::deviceMutex());
  ++cublasLtEmu::heuristicCalls;
  *count = 0;
  if (handle == nullptr) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, "no handle");
  cublasLtEmu::lastMaxWorkspaceBytes = preference->workspace;
  if (requested < 1) return refuse(CUBLAS_STATUS_INVALID_VALUE, "requestedAlgoCount below 1");
  if (const cublasStatus_t status = validate(*op, *a, *b, *c, *d); status != CUBLAS_STATUS_SUCCESS) return status;
  if ((cublasLtEmu::refuseBias && hasBias(op->epilogue)) || (cublasLtEmu::refuseGelu && hasGelu(op->epilogue)))
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "no algorithm for this epilogue (cublasLtEmu::refuse*)");
  const size_t bytes = elementBytes(a->type);
  for (const uint32_t alignment : {preference->alignA, preference->alignB, preference->alignC, preference->alignD})
    if (alignment < bytes || (alignment & (alignment - 1)) != 0)
      return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "a minimum alignment of " + std::to_string(alignment) + " bytes");
  const uint64_t k = op->transA == CUBLAS_OP_N ? a->cols : a->rows;
  int offered = 0;
  for (size_t i = 0; i < cublasLtEmu::algorithms.size() && offered < requested; ++i) {
    const int splits = cublasLtEmu::algorithms[i].splits;
    // Split-K keeps every slice's fp32 product of D's size in the workspace.
    const size_t workspace =
        splits > 1 ? static_cast<size_t>(splits) * d->rows * d->cols * static_cast<size_t>(d->batch) * sizeof(float) : 0;
    if (k < static_cast<uint64_t>(splits) || workspace > preference->workspace) continue;
    // The bias's and aux's alignments come from the pointers the descriptor holds now (NULL: any alignment).
    choices.push_back(Choice{op->transA, op->transB, op->epilogue, op->auxLd, *a, *b, *c, *d, preference->alignA,
                             preference->alignB, preference->alignC, preference->alignD, alignmentOf(op->bias),
                             alignmentOf(op->aux), i, splits, workspace});
    results[offered] = cublasLtMatmulHeuristicResult_t{};
    results[offered].algo.data[0] = kAlgoTag;
    results[offered].algo.data[1] = choices.size() - 1;
    results[offered].workspaceSize = workspace;
    results[offered].state = CUBLAS_STATUS_SUCCESS;
    results[offered].wavesCount = 1.0f;
    ++offered;
  }
  if (offered == 0)
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "no algorithm needs at most MAX_WORKSPACE_BYTES = " +
                                                   std::to_string(preference->workspace) + " bytes of workspace");
  *count = offered;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t op, const void* alphaPointer, const void* A,
                              cublasLtMatrixLayout_t aDesc, const void* B, cublasLtMatrixLayout_t bDesc,
                              const void* betaPointer, const void* C, cublasLtMatrixLayout_t cDesc, void* D,
                              cublasLtMatrixLayout_t dDesc, const cublasLtMatmulAlgo_t* algo, void* workspace,
                              size_t workspaceBytes, cudaStream_t) {
  const std::lock_guard<std::recursive_mutex> serial(emu::deviceMutex());
  // Before the handle and descriptor checks too: a benchmark's products are selfe's own, checked by the tests.
  if (emu::skipKernels) return CUBLAS_STATUS_SUCCESS;
  ++cublasLtEmu::matmulCalls;
  if (handle == nullptr) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, "no handle");
  const auto &a = *aDesc, &b = *bDesc, &c = *cDesc, &d = *dDesc;
  if (const cublasStatus_t status = validate(*op, a, b, c, d); status != CUBLAS_STATUS_SUCCESS) return status;
  if (algo == nullptr || algo->data[0] != kAlgoTag || algo->data[1] >= choices.size())
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "an algorithm the heuristic did not return");
  const Choice& chosen = choices[algo->data[1]];
  if (chosen.transA != op->transA || chosen.transB != op->transB || chosen.epilogue != op->epilogue ||
      chosen.auxLd != op->auxLd || !(chosen.a == a) || !(chosen.b == b) || !(chosen.c == c) || !(chosen.d == d))
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "the algorithm was chosen for another problem");
  if (workspaceBytes > 0 && workspace == nullptr) return refuse(CUBLAS_STATUS_INVALID_VALUE, "workspace size without a workspace");
  if (chosen.workspace > workspaceBytes)
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "the algorithm needs " + std::to_string(chosen.workspace) +
                                                   " bytes of workspace, workspaceSizeInBytes is " + std::to_string(workspaceBytes));
  // The split-K kernel writes its partial products there; on a GPU, past the end of device memory it faults.
  if (chosen.workspace > 0) {
    const auto block = emu::allocationOf(workspace);
    const auto* end = static_cast<const unsigned char*>(workspace) + chosen.workspace;
    if (block.base == nullptr || end > static_cast<const unsigned char*>(block.base) + block.bytes)
      return refuse(CUBLAS_STATUS_EXECUTION_FAILED, "the algorithm's " + std::to_string(chosen.workspace) +
                                                        " bytes of workspace are not device memory (the block holding the "
                                                        "workspace has " + std::to_string(block.bytes) + " bytes)");
  }
  const double milliseconds = cublasLtEmu::algorithms.at(chosen.algorithm).milliseconds;
  if (milliseconds < 0) return refuse(CUBLAS_STATUS_NOT_SUPPORTED, "this algorithm fails (cublasLtEmu::algorithms)");
  const float alpha = *static_cast<const float*>(alphaPointer), beta = *static_cast<const float*>(betaPointer);
  const bool bias = hasBias(op->epilogue), gelu = hasGelu(op->epilogue);
  if ((bias && op->bias == nullptr) || (gelu && op->aux == nullptr))
    return refuse(CUBLAS_STATUS_INVALID_VALUE, "the epilogue's bias or aux pointer is NULL");
  if (C == D && !(c == d)) return refuse(CUBLAS_STATUS_INVALID_VALUE, "C == D with different layouts");
  // On a GPU a kernel chosen for wider alignment faults (misaligned address) or reads wrong; here it fails.
  const struct {
    const void* pointer;
    uint32_t assumed;
    const char* name;
  } operands[] = {{A, chosen.alignA, "A"},
                  {B, chosen.alignB, "B"},
                  {beta != 0.0f ? C : nullptr, chosen.alignC, "C"},
                  {D, chosen.alignD, "D"},
                  {bias ? op->bias : nullptr, chosen.alignBias, "bias"},
                  {gelu ? op->aux : nullptr, chosen.alignAux, "aux"}};
  for (const auto& operand : operands)
    if (alignmentOf(operand.pointer) < operand.assumed)
      return refuse(CUBLAS_STATUS_EXECUTION_FAILED, std::string(operand.name) + " is " +
                                                        std::to_string(alignmentOf(operand.pointer)) +
                                                        "-byte aligned; the algorithm was chosen for " +
                                                        std::to_string(operand.assumed));

  const int64_t m = static_cast<int64_t>(d.rows), n = static_cast<int64_t>(d.cols);
  const int64_t k = static_cast<int64_t>(op->transA == CUBLAS_OP_N ? a.cols : a.rows);
  const cudaDataType_t type = d.type;
  const size_t size = static_cast<size_t>(m * n);
  std::vector<float> out(size);
  for (int32_t batch = 0; batch < d.batch; ++batch) {
    const auto* baseA = static_cast<const unsigned char*>(A) + batch * a.stride * elementBytes(type);
    const auto* baseB = static_cast<const unsigned char*>(B) + batch * b.stride * elementBytes(type);
    const auto* baseC = static_cast<const unsigned char*>(C) + batch * c.stride * elementBytes(type);
    auto* baseD = static_cast<unsigned char*>(D) + batch * d.stride * elementBytes(type);
    // The product, column-major m x n with leading dimension m, in fp32 as the library computes it.
    std::vector<float> wideA, wideB;
    const float* opA = asFloats(type, baseA, a, wideA);
    const float* opB = asFloats(type, baseB, b, wideB);
    // alpha op(A)[:, k0:k1] op(B)[k0:k1, :] into `into`.
    const auto product = [&](int64_t k0, int64_t k1, float* into) {
      if (k1 == k0 || m == 0 || n == 0) {
        std::fill(into, into + size, 0.0f);
        return;
      }
      cblas_sgemm(CblasColMajor, op->transA == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                  op->transB == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, static_cast<int>(m), static_cast<int>(n),
                  static_cast<int>(k1 - k0), alpha, opA + (op->transA == CUBLAS_OP_N ? k0 * a.ld : k0), static_cast<int>(a.ld),
                  opB + (op->transB == CUBLAS_OP_N ? k0 : k0 * b.ld), static_cast<int>(b.ld), 0.0f, into, static_cast<int>(m));
    };
    if (chosen.splits == 1) {
      product(0, k, out.data());
    } else {
      // Split-K: each slice's product into this batch's part of the workspace, then their sum in slice order.
      const int64_t splits = chosen.splits;
      float* partials = static_cast<float*>(workspace) + static_cast<size_t>(batch * splits) * size;
      for (int64_t s = 0; s < splits; ++s) product(k * s / splits, k * (s + 1) / splits, partials + static_cast<size_t>(s) * size);
      for (size_t i = 0; i < size; ++i) {
        float sum = 0.0f;
        for (int64_t s = 0; s < splits; ++s) sum += partials[static_cast<size_t>(s) * size + i];
        out[i] = sum;
      }
    }
    // The epilogue, element by element; D is written after C's element is read, so D may be C.
    for (int64_t col = 0; col < n; ++col)
      for (int64_t row = 0; row < m; ++row) {
        float value = out[static_cast<size_t>(row + col * m)];
        if (beta != 0.0f) value += beta * load(type, baseC, row + col * c.ld);
        if (bias) value += load(type, op->bias, row);
        if (gelu) store(type, op->aux, row + col * op->auxLd, value);
        store(type, baseD, row + col * d.ld, gelu ? geluTanh(value) : value);
      }
  }
  traceMatmul(*op, A, a, B, b, C, c, D, d, chosen.algorithm, chosen.splits, workspace, workspaceBytes, beta);
  emu::clockMilliseconds += milliseconds;
  cublasLtEmu::lastAlgorithm = static_cast<int>(chosen.algorithm);
  cublasLtEmu::lastWorkspace = workspace;
  cublasLtEmu::lastWorkspaceBytes = workspaceBytes;
  return CUBLAS_STATUS_SUCCESS;
}
