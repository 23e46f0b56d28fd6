#!/usr/bin/env bash
# The GPU check, for a session that has a GPU machine: build the addon with CUDA, run the GPU tests, then
# the benchmark against PyTorch on the same card; the benchmark's table is printed last. Logs go to
# $OUT/gpu-check/ when $OUT is set (the device tool brings that folder back), else /tmp/gpu-check/.
#   here, once, after npm ci:  ../shared/device/stage
#   then on the GPU machine:   bash .device/gpu 'bash scripts/gpu-check.sh'
# Exit status: the build's if it failed, else the tests' (0 when they passed), the benchmark's otherwise.
# GPU_CHECK_TEST_SECONDS and GPU_CHECK_BENCH_SECONDS bound the two runs (defaults 1200 and 900), so a hang
# cannot eat a device lease.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
logs="${OUT:-/tmp}/gpu-check"
mkdir -p "$logs"

echo "== build (npm run build)"
if ! npm run build >"$logs/build.log" 2>&1; then
  tail -n 60 "$logs/build.log"
  echo "gpu-check: the build failed (full log: $logs/build.log)"
  exit 1
fi
grep -E "selfe:" "$logs/build.log" || true
if ! node -e 'const a = require("./build/Release/selfe_native.node"); console.log("addon:", JSON.stringify(a.build), "CUDA devices:", a.cudaDeviceCount()); process.exit(a.build.backends.includes("cuda") && a.cudaDeviceCount() > 0 ? 0 : 1)'; then
  echo "gpu-check: the addon has no usable CUDA backend here (see $logs/build.log)"
  exit 1
fi

echo "== test:gpu (npx vitest run test/gpu)"
timeout "${GPU_CHECK_TEST_SECONDS:-1200}" npx vitest run test/gpu >"$logs/test-gpu.log" 2>&1
tests=$?
grep -E "✓|×|FAIL|Test Files|Tests " "$logs/test-gpu.log" | tail -n 150
if [ "$tests" -ne 0 ]; then
  grep -E -A 12 "FAIL|AssertionError" "$logs/test-gpu.log" | head -n 120
fi
echo "gpu-check: test:gpu exited $tests (full log: $logs/test-gpu.log)"

echo "== bench:gpu (npm run bench:gpu)"
timeout "${GPU_CHECK_BENCH_SECONDS:-900}" npm run --silent bench:gpu 2>&1 | tee "$logs/bench-gpu.log"
bench=${PIPESTATUS[0]}
if [ "$tests" -ne 0 ]; then exit "$tests"; fi
exit "$bench"
