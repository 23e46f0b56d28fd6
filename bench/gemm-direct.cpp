// OpenBLAS called directly from C++: the baseline the addon's GEMM is measured against (bench/ops.ts).
// Usage: gemm-direct N REPS  -> seconds per GEMM: the best of 3 rounds of REPS back-to-back GEMMs, after a warm-up.
#include <cblas.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: gemm-direct N REPS\n");
    return 2;
  }
  const int n = std::atoi(argv[1]);
  const int reps = std::atoi(argv[2]);
  std::vector<float> a(static_cast<size_t>(n) * n), b(a.size()), c(a.size());
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (auto* m : {&a, &b})
    for (float& x : *m) x = normal(rng);
  const auto gemm = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  };
  gemm();
  double best = 1e30;
  for (int round = 0; round < 3; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) gemm();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / reps;
    if (seconds < best) best = seconds;
  }
  std::printf("%.9f\n", best);
  return 0;
}
