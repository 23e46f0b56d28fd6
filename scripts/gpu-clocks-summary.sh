#!/usr/bin/env bash
# Summarises gpu-check.sh's clock samples (nvidia-smi CSV, no header or units: timestamp, SM clock MHz, power W,
# temperature C, active clock-event reasons as a bitmask, then GPU utilization %, which older files lack): the SM
# clock's spread, the highest power and temperature, and how many samples each set of reasons was active in
# (0x4: software power cap, 0x20/0x40: software/hardware thermal slowdown, 0x80: hardware power brake;
# nvidia-smi -q -d PERFORMANCE names them). Given bench:gpu's log too, it then gives each benchmark row (from its
# time-of-day stamp to the next row's) its samples' SM clock (lowest and mean), mean power and mean utilization
# (the share of the sample period in which a kernel ran, as nvidia-smi measures it: a whole training step well
# under 100% waited on its host).
set -uo pipefail
csv="${1:?usage: gpu-clocks-summary.sh SAMPLES.csv [BENCH.log]}"
bench="${2:-}"
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
if [ -z "$bench" ]; then exit 0; fi
# The rows are the bench log's lines that start with a time of day (HH:MM:SS.mmm, local, as nvidia-smi stamps
# its samples); a time that runs backwards by more than 12 hours has passed midnight.
awk -F', *' '
  function seconds(hms, parts) { split(hms, parts, ":"); return parts[1] * 3600 + parts[2] * 60 + parts[3] }
  function later(t, state) { if (t + day[state] < last[state] - 43200) day[state] += 86400; last[state] = t + day[state]; return last[state] }
  NR == FNR {
    if ($0 ~ /^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9][0-9][0-9] /) { rows++; start[rows] = later(seconds(substr($0, 1, 12)), "bench"); label[rows] = substr($0, 14) }
    next
  }
  $2 ~ /^[0-9]+$/ {
    split($1, stamp, " ")
    t = later(seconds(stamp[2]), "samples")
    while (row < rows && start[row + 1] <= t) row++
    if (row == 0) next
    n[row]++; clock[row] += $2; power[row] += $3
    if (n[row] == 1 || $2 + 0 < lowest[row]) lowest[row] = $2 + 0
    if (NF >= 6 && $6 ~ /^[0-9]+$/) { busy[row] += $6; busyN[row]++ }
  }
  END {
    if (rows == 0) { print "gpu clocks per row: no stamped rows in the bench log"; exit }
    print "gpu clocks per row (samples from its stamp to the next row'"'"'s): SM clock lowest and mean, mean power, mean utilization"
    for (r = 1; r <= rows; r++) {
      if (n[r] == 0) { printf "  %s: no samples\n", label[r]; continue }
      printf "  %s: %d samples, SM clock %d / %.0f MHz, %.0f W, %s\n", label[r], n[r], lowest[r], clock[r] / n[r], power[r] / n[r],
        (busyN[r] > 0 ? sprintf("%.0f%% busy", busy[r] / busyN[r]) : "utilization not sampled")
    }
  }' "$bench" - <<<"$samples"
