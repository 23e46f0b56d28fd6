// Matrix products, row-major. gemm: for each of `batch` problems,
//   C[m, n] = alpha * op(A) op(B) + beta * C, op(A) is [m, k] (A stored [k, m] when trans_a),
//   op(B) is [k, n] (B stored [n, k] when trans_b); stride_* are elements between problems, and
//   stride_b = 0 shares one B (a weight) across the batch.
// gemm_add: d = base + alpha op(A) op(B) for one problem, base another matrix of d's shape (unchanged); on
// CUDA cuBLASLt reads it as C and writes D (no copy), on the CPU it is copied into d first.
// linear: y[r, :] = x[r, :] W^T + bias, W stored [out, in] (PyTorch's layout), bias nullable. Writes (=) y.
// linear_gelu: pre = x W^T + bias and y = gelu(pre) (tanh approximation), pre kept for the backward; on
// CUDA one cuBLASLt GEMM with the GELU_AUX epilogue writes both.
#pragma once
#include <cstdint>

#include "selfe/dtype.h"
#include "selfe/stream.h"

#define SELFE_MATMUL_KERNELS                                                                             \
  void gemm(float* c, const float* a, const float* b, int64_t batch, int64_t m, int64_t n, int64_t k,   \
            bool trans_a, bool trans_b, int64_t stride_a, int64_t stride_b, int64_t stride_c, float alpha, \
            float beta, Stream stream);                                                                  \
  void gemm_add(float* d, const float* base, const float* a, const float* b, int64_t m, int64_t n,      \
                int64_t k, bool trans_a, bool trans_b, float alpha, Stream stream);                     \
  void linear_forward(float* y, const float* x, const float* weight, const float* bias, int64_t rows,   \
                      int64_t in_features, int64_t out_features, Stream stream);                          \
  void linear_gelu_forward(float* y, float* pre, const float* x, const float* weight, const float* bias, \
                           int64_t rows, int64_t in_features, int64_t out_features, Stream stream);

SELFE_DECLARE_FOR_BACKENDS(SELFE_MATMUL_KERNELS)

// bf16 A, B, C, bias; fp32 accumulation and alpha/beta.
#define SELFE_MATMUL_BF16_KERNELS                                                                         \
  void gemm(bf16* c, const bf16* a, const bf16* b, int64_t batch, int64_t m, int64_t n, int64_t k,      \
            bool trans_a, bool trans_b, int64_t stride_a, int64_t stride_b, int64_t stride_c, float alpha, \
            float beta, Stream stream);                                                                  \
  void gemm_add(bf16* d, const bf16* base, const bf16* a, const bf16* b, int64_t m, int64_t n,          \
                int64_t k, bool trans_a, bool trans_b, float alpha, Stream stream);                     \
  void linear_forward(bf16* y, const bf16* x, const bf16* weight, const bf16* bias, int64_t rows,       \
                      int64_t in_features, int64_t out_features, Stream stream);                          \
  void linear_gelu_forward(bf16* y, bf16* pre, const bf16* x, const bf16* weight, const bf16* bias,      \
                           int64_t rows, int64_t in_features, int64_t out_features, Stream stream);

SELFE_DECLARE_FOR_CUDA(SELFE_MATMUL_BF16_KERNELS)
