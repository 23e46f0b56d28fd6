// Host stand-in for <cublasLt.h>: the part of cuBLASLt that native/cuda/matmul.cu calls, implemented on the CPU
// by cublaslt_emu.cpp from the library's documentation (the header comments of cublasLt.h and the cuBLAS
// guide), not from matmul.cu's reading of it. Matrices are column-major with a leading dimension; D =
// epilogue(alpha op(A) op(B) + beta C) per batch, C unread when beta is 0; the BIAS epilogue adds a vector
// as long as D's rows; GELU_AUX(_BIAS) stores the GELU input (after the bias) in the aux matrix (D's type,
// leading dimension EPILOGUE_AUX_LD: divisible by 8, at least D's rows) and applies GELU (tanh form) to D.
// Besides computing, it refuses what the library refuses (an attribute of the wrong size, operand shapes or
// batch counts that disagree, a leading dimension below the rows, mixed types) and fails a cublasLtMatmul
// whose pointers are less aligned than the algorithm was chosen for: the operands' from the preference's
// MIN_ALIGNMENT attributes, the bias's and aux's from the pointers the descriptor held when the heuristic ran
// (the library reads them for that). The heuristic returns up to the requested number of algorithms whose
// workspace need (the result's workspaceSize) is at most the preference's MAX_WORKSPACE_BYTES (default 0),
// each taking a set time on the emulated clock that CUDA events read. A split-K algorithm keeps each K slice's
// fp32 product in the workspace and sums them in slice order; cublasLtMatmul refuses (INVALID_VALUE) an
// algorithm needing more workspace than workspaceSizeInBytes, and fails one whose workspace is not that much
// device memory (on a GPU its kernel would fault). A product that ran is logged as the library's Trace level logs
// it (CUBLASLT_LOG_LEVEL, CUBLASLT_LOG_MASK, CUBLASLT_LOG_FILE; its algorithm as algoId = the index into
// `cublasLtEmu::algorithms` and splitK). Knobs and counters: `cublasLtEmu` below.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuda_runtime.h"

enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_16BF = 14 };

enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
};

enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasComputeType_t { CUBLAS_COMPUTE_32F = 68 };

enum cublasLtEpilogue_t : uint32_t {
  CUBLASLT_EPILOGUE_DEFAULT = 1,
  CUBLASLT_EPILOGUE_BIAS = 4,
  CUBLASLT_EPILOGUE_GELU = 32,
  CUBLASLT_EPILOGUE_GELU_AUX = 32 | 128,
  CUBLASLT_EPILOGUE_GELU_AUX_BIAS = 32 | 128 | 4,
};

enum cublasLtMatrixLayoutAttribute_t {
  CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5,           // int32_t
  CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6,  // int64_t
};

enum cublasLtMatmulDescAttributes_t {
  CUBLASLT_MATMUL_DESC_TRANSA = 3,                // int32_t (cublasOperation_t)
  CUBLASLT_MATMUL_DESC_TRANSB = 4,                // int32_t (cublasOperation_t)
  CUBLASLT_MATMUL_DESC_EPILOGUE = 7,              // uint32_t (cublasLtEpilogue_t)
  CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,          // const void*
  CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER = 11, // void*
  CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD = 12,      // int64_t
};

enum cublasLtMatmulPreferenceAttributes_t {
  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,       // uint64_t
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,     // uint32_t
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,     // uint32_t
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,     // uint32_t
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8,     // uint32_t
};

struct cublasLtContext;
struct cublasLtMatmulDescOpaque_t;
struct cublasLtMatrixLayoutOpaque_t;
struct cublasLtMatmulPreferenceOpaque_t;
typedef cublasLtContext* cublasLtHandle_t;
typedef cublasLtMatmulDescOpaque_t* cublasLtMatmulDesc_t;
typedef cublasLtMatrixLayoutOpaque_t* cublasLtMatrixLayout_t;
typedef cublasLtMatmulPreferenceOpaque_t* cublasLtMatmulPreference_t;

// As in the library: opaque 64 bytes, filled by the heuristic (here: an id the emulator looks up).
struct cublasLtMatmulAlgo_t {
  uint64_t data[8];
};
struct cublasLtMatmulHeuristicResult_t {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
};

const char* cublasLtGetStatusString(cublasStatus_t status);

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle);
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle);

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType_t type, uint64_t rows,
                                          uint64_t cols, int64_t ld);
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout);
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attribute,
                                                const void* buffer, size_t sizeInBytes);

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t computeType,
                                        cudaDataType_t scaleType);
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc);
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute,
                                              const void* buffer, size_t sizeInBytes);

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* preference);
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t preference);
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t preference,
                                                    cublasLtMatmulPreferenceAttributes_t attribute, const void* buffer,
                                                    size_t sizeInBytes);

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t operationDesc,
                                              cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                              cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                              cublasLtMatmulPreference_t preference, int requestedAlgoCount,
                                              cublasLtMatmulHeuristicResult_t heuristicResultsArray[],
                                              int* returnAlgoCount);

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t computeDesc, const void* alpha,
                              const void* A, cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc,
                              const void* beta, const void* C, cublasLtMatrixLayout_t Cdesc, void* D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t* algo, void* workspace,
                              size_t workspaceSizeInBytes, cudaStream_t stream);

// The emulator's side: what a test may set, and what it may read back.
namespace cublasLtEmu {
// The heuristic finds no algorithm (CUBLAS_STATUS_NOT_SUPPORTED, count 0) for problems with a bias, or with
// GELU_AUX: the library has fused kernels for some problems only, and matmul.cu must fall back.
inline bool refuseBias = false;
inline bool refuseGelu = false;
// An algorithm the heuristic may offer: the milliseconds its product takes on the emulated clock
// (emu::clockMilliseconds, which CUDA events read; negative: it fails at cublasLtMatmul with
// CUBLAS_STATUS_NOT_SUPPORTED), and the slices it splits K into. Split-K (splits > 1) needs splits * m * n * batch
// floats of workspace and is offered only where K has at least `splits` elements.
struct Algorithm {
  double milliseconds;
  int splits = 1;
};
// The algorithms, best guess first. By default a split-K one, then one without workspace: the workspace a device
// gives cuBLASLt decides which of them a problem runs on.
inline std::vector<Algorithm> algorithms = {{1.0, 4}, {1.0}};
// Calls of the heuristic and of cublasLtMatmul since the program started, and the algorithm (its index
// above) of the last product that ran.
inline long heuristicCalls = 0;
inline long matmulCalls = 0;
inline int lastAlgorithm = -1;
// The MAX_WORKSPACE_BYTES of the heuristic's last call, and the workspace (pointer and size) of the last product
// that ran.
inline uint64_t lastMaxWorkspaceBytes = 0;
inline const void* lastWorkspace = nullptr;
inline size_t lastWorkspaceBytes = 0;
}  // namespace cublasLtEmu
