#!/usr/bin/env bash
# Self-E against flow matching on one backend (cuda on the GPU machine; cpu works too, slowly): measure the
# Self-E step rate, train both models for the same number of steps (about BUDGET_SECONDS of Self-E
# training), then run pipelines/any-step-table.ts. Everything goes to $OUT/gpu-experiment (or /tmp), and a
# short list of files is copied to the top of that folder so the device tool brings them back.
#   BACKEND=cuda BUDGET_SECONDS=70 bash scripts/gpu-experiment.sh [extra --set overrides...]
# STEPS=N skips the calibration and trains both models for N steps.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
backend=${BACKEND:-cuda}
budget=${BUDGET_SECONDS:-70}
images=${IMAGES_PER_PROMPT:-4}
out="${OUT:-/tmp}/gpu-experiment"
work=/tmp/selfe-experiment
mkdir -p "$out" "$work"
common=(--set "backend=$backend" --set "outDir=$work/runs" "$@")

if [ -n "${STEPS:-}" ]; then
  steps=$STEPS
else
echo "== calibrate: Self-E steps per second on $backend"
node bin/selfe.mjs train --config configs/selfe-tiny.json "${common[@]}" --set name=calibrate --set steps=80 \
  --set cadence.logEvery=40 --set cadence.sampleEvery=0 --set cadence.checkpointEvery=0 --set cadence.samplePrompts=1 \
  >"$work/calibrate.log" 2>&1 || { tail -n 30 "$work/calibrate.log"; exit 1; }
rate=$(node -e 'const l=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").map(JSON.parse); console.log(l.at(-1).stepsPerSecond)' "$work/runs/calibrate/metrics.jsonl")
steps=$(node -e 'console.log(Math.max(200, Math.floor(Number(process.argv[1]) * Number(process.argv[2]) / 100) * 100))' "$rate" "$budget")
echo "calibrate: $rate Self-E steps/s -> $steps steps per model"
fi

echo "== train both and compare at 1, 2, 4, 8, 50 steps"
SELFE_BACKEND=$backend npx tsx pipelines/any-step-table.ts "${common[@]}" --set "steps=$steps" \
  --set cadence.logEvery=100 --set cadence.sampleEvery=0 --set "cadence.checkpointEvery=0" \
  --images-per-prompt "$images" --prompts "${PROMPTS:-all}" --steps "${STEP_COUNTS:-1,2,4,8,50}" --out "$work/table" 2>&1 | grep -v "^step " | tee "$work/table.log"
status=${PIPESTATUS[0]}

for file in table/any-step.md table/any-step.json table/overall-vs-steps.png table/grid-self-e-2steps.png table/grid-flow-matching-2steps.png; do
  [ -f "$work/$file" ] && cp "$work/$file" "$out/"
done
for run in selfe-tiny flow-matching-tiny; do
  [ -f "$work/runs/$run/metrics.jsonl" ] && cp "$work/runs/$run/metrics.jsonl" "$out/metrics-$run.jsonl"
done
exit "$status"
