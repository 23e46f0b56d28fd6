#!/usr/bin/env bash
# The GPU check, for a session that has a GPU machine: build the addon with CUDA, run the wgmma product check
# and the GPU tests, then the benchmark against PyTorch on the same card; the benchmark's tables and issue 5's
# targets are printed last. Logs go to $OUT/gpu-check/ when $OUT is set (the device tool brings that folder
# back), else /tmp/gpu-check/.
#   here, once, after npm ci:  ../shared/device/stage
#   then on the GPU machine:   bash .device/gpu 'bash scripts/gpu-check.sh'
# Stages: `build`, `test`, `bench` (bench:gemm-kernels, then bench:gpu) (default: all three, in that order).
# A device call is limited to 600 s, so where the three together may not fit, split them over two calls on the
# same warm machine (build/ stays):
#   bash .device/gpu 'bash scripts/gpu-check.sh build test'   then   bash .device/gpu 'bash scripts/gpu-check.sh bench'
# Exit status: the build's if it failed, else the tests' (0 when they passed), the benchmark's otherwise.
# GPU_CHECK_BENCH_ONLY (e.g. gemm,step) runs only those families of bench:gpu's rows (its --only).
# GPU_CHECK_TEST_SECONDS and GPU_CHECK_BENCH_SECONDS bound the two runs (defaults 540 and 540), and
# GPU_CHECK_SECONDS (default 570) bounds the whole script: a stage gets at most what is left of it, so a hang
# cannot eat a device lease and one call of at most 600 s can hold all three stages.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
logs="${OUT:-/tmp}/gpu-check"
mkdir -p "$logs"
stages=" ${*:-build test bench} "
for stage in $stages; do
  case "$stage" in build | test | bench) ;; *) echo "gpu-check: unknown stage '$stage' (build, test, bench)"; exit 2 ;; esac
done
wants() { [[ "$stages" == *" $1 "* ]]; }
# Seconds a stage may run: its own bound, or what is left of the script's (bash's SECONDS counts from start).
allowed() {
  local left=$((${GPU_CHECK_SECONDS:-570} - SECONDS))
  echo $((left < $1 ? (left > 1 ? left : 1) : $1))
}
# The GPU machine has 16 cores; cmake's Makefile generator builds one file at a time unless told.
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

if wants build; then
  echo "== build (npm run build)"
  if ! npm run build >"$logs/build.log" 2>&1; then
    tail -n 60 "$logs/build.log"
    echo "gpu-check: the build failed (full log: $logs/build.log)"
    exit 1
  fi
  grep -E "selfe:" "$logs/build.log" || true
  echo "gpu-check: built in ${SECONDS} s"
fi
if ! node -e 'const a = require("./build/Release/selfe_native.node"); console.log("addon:", JSON.stringify(a.build), "CUDA devices:", a.cudaDeviceCount()); process.exit(a.build.backends.includes("cuda") && a.cudaDeviceCount() > 0 ? 0 : 1)'; then
  echo "gpu-check: the addon has no usable CUDA backend here (run the build stage; see $logs/build.log)"
  exit 1
fi

tests=0
if wants test; then
  # The wgmma products alone against float64 first (seconds): if the attention kernels' wgmma path fails below,
  # this says which product the CPU emulator and the card disagree on. Reported, not counted in the status.
  echo "== wgmma check (test/native/wgmma_check.cu)"
  mkdir -p build
  if nvcc -std=c++17 -arch=sm_90a --expt-relaxed-constexpr -I native -I native/include test/native/wgmma_check.cu \
    -o build/wgmma_check >"$logs/wgmma-check.log" 2>&1; then
    timeout 60 build/wgmma_check 2>&1 | tee -a "$logs/wgmma-check.log"
  else
    tail -n 20 "$logs/wgmma-check.log"
    echo "gpu-check: the wgmma check did not compile (full log: $logs/wgmma-check.log)"
  fi
  echo "== test:gpu (npm run test:gpu)"
  timeout "$(allowed "${GPU_CHECK_TEST_SECONDS:-540}")" npm run --silent test:gpu >"$logs/test-gpu.log" 2>&1
  tests=$?
  grep -E "✓|×|FAIL|Test Files|Tests " "$logs/test-gpu.log" | tail -n 150
  if [ "$tests" -ne 0 ]; then
    grep -E -A 12 "FAIL|AssertionError" "$logs/test-gpu.log" | head -n 120
  fi
  echo "gpu-check: test:gpu exited $tests at ${SECONDS} s (full log: $logs/test-gpu.log)"
fi

bench=0
if wants bench; then
  # Which cuBLASLt kernel PyTorch and each selfe GEMM device run for the plain GEMM rows, and from which library
  # (cuBLASLt's own log; seconds): whether a GEMM ratio below comes from different kernels or from the timing.
  # Reported, not counted in the status; the raw logs go to $logs/cublaslt.tar.gz.
  echo "== bench:gemm-kernels (npm run bench:gemm-kernels)"
  if SELFE_GEMM_KERNELS_LOGS="$logs/cublaslt" timeout "$(allowed 120)" npm run --silent bench:gemm-kernels >"$logs/gemm-kernels.log" 2>&1; then
    sed -n '/^cuBLASLt libraries/,$p' "$logs/gemm-kernels.log"
  else
    tail -n 30 "$logs/gemm-kernels.log"
    echo "gpu-check: bench:gemm-kernels failed at ${SECONDS} s (full log: $logs/gemm-kernels.log)"
  fi
  # The device tool brings back 8 files at most: the raw logs travel as one archive.
  if [ -d "$logs/cublaslt" ] && tar -czf "$logs/cublaslt.tar.gz" -C "$logs" cublaslt; then
    rm -rf "$logs/cublaslt"
  fi
  echo "== bench:gpu (npm run bench:gpu)"
  # The card's SM clock, power, temperature, clock-event (throttle) reasons and utilization every 100 ms while the
  # benchmark runs, to $logs/gpu-clocks.csv: whether a GEMM ratio moved with the clocks, and how busy the GPU was
  # in a training step (the benchmark stamps each row's start with the time of day). Skipped where nvidia-smi is
  # missing or cannot answer the query.
  query=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active,utilization.gpu
  sampler=
  if nvidia-smi --query-gpu="$query" --format=csv,noheader >/dev/null 2>&1; then
    nvidia-smi --query-gpu="$query" --format=csv,noheader,nounits -lms 100 >"$logs/gpu-clocks.csv" 2>/dev/null &
    sampler=$!
  else
    echo "gpu-check: nvidia-smi cannot sample the clocks here; no $logs/gpu-clocks.csv"
  fi
  timeout "$(allowed "${GPU_CHECK_BENCH_SECONDS:-540}")" npm run --silent bench:gpu -- ${GPU_CHECK_BENCH_ONLY:+--only "$GPU_CHECK_BENCH_ONLY"} 2>&1 |
    tee "$logs/bench-gpu.log"
  bench=${PIPESTATUS[0]}
  if [ -n "$sampler" ]; then
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    bash scripts/gpu-clocks-summary.sh "$logs/gpu-clocks.csv" "$logs/bench-gpu.log"
    # Issue 5's targets once more, so that they stay the last lines of the output.
    sed -n "/^issue 5's targets/,\$p" "$logs/bench-gpu.log"
  fi
fi
if [ "$tests" -ne 0 ]; then exit "$tests"; fi
exit "$bench"
