#!/usr/bin/env bash
# Summarises gpu-check.sh's clock samples (nvidia-smi CSV, no header or units: timestamp, SM clock MHz, power W,
# temperature C, active clock-event reasons as a bitmask): the SM clock's spread, the highest power and
# temperature, and how many samples each set of reasons was active in (0x4: software power cap, 0x20/0x40:
# software/hardware thermal slowdown, 0x80: hardware power brake; nvidia-smi -q -d PERFORMANCE names them).
set -uo pipefail
csv="${1:?usage: gpu-clocks-summary.sh SAMPLES.csv}"
samples=$(awk -F', *' 'NF >= 5 && $2 ~ /^[0-9]+$/' "$csv")
if [ -z "$samples" ]; then
  echo "gpu clocks: no samples in $csv"
  exit 0
fi
# POSIX awk only (the GPU machine's awk may be mawk): the median from the sorted clocks' middle line.
clocks=$(cut -d, -f2 <<<"$samples" | tr -d ' ' | sort -n)
count=$(wc -l <<<"$clocks")
median=$(sed -n "$(((count + 1) / 2))p" <<<"$clocks")
awk -F', *' -v count="$count" -v low="$(head -n1 <<<"$clocks")" -v median="$median" -v high="$(tail -n1 <<<"$clocks")" '
  { if ($3 + 0 > power) power = $3 + 0; if ($4 + 0 > temperature) temperature = $4 + 0; reasons[$5]++ }
  END {
    printf "gpu clocks over the benchmark (%d samples, 100 ms apart): SM clock min %d, median %d, max %d MHz; power up to %.0f W; up to %d C\n",
      count, low, median, high, power, temperature
    for (r in reasons) printf "  clock-event reasons %s: %d samples\n", r, reasons[r]
  }' <<<"$samples"
