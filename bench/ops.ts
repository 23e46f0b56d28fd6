/**
 * npm run bench:ops — what an op costs the JS thread, GEMM throughput through the addon against OpenBLAS
 * called directly from C++ (bench/gemm-direct.cpp), and the fused ops against the op sequences they
 * replace, and whole training steps waited for against one in flight, each pair measured side by side in one
 * run; last, the JS host path of a whole step alone (bench/noopAddon.ts), for the tiny DiT and DiT-S.
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync } from "node:fs"
import { cpus } from "node:os"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { Kernels } from "../src/kernels/Kernels.ts"
import { liftBackend } from "../src/kernels/lift.ts"
import { loadAddon } from "../src/kernels/native/binding.ts"
import { NativeBackend } from "../src/kernels/native/NativeBackend.ts"
import { noopAddon } from "./noopAddon.ts"
import { secondsPerStep, stepBenchConfig } from "./trainStep.ts"

const addon = loadAddon()
const ops = addon.ops
const device = new addon.Device({})
const ENQUEUE_OPS = 200_000

/** Microseconds of JS-thread time per call of `body`, best of 5 rounds; the worker drains meanwhile. */
const perCall = async (body: () => void) => {
  let best = Infinity
  for (let round = 0; round < 5; round++) {
    const start = performance.now()
    for (let i = 0; i < ENQUEUE_OPS; i++) body()
    const elapsed = performance.now() - start
    await ops.sync(device)
    best = Math.min(best, (elapsed * 1000) / ENQUEUE_OPS)
  }
  return best
}

const x = ops.full(device, 0, [64], 1)
const rawEnqueue = await perCall(() => {
  ops.release(device, ops.affine(device, x, 1, 0.5))
})
const rawRelease = await perCall(() => {
  ops.release(device, ops.view(device, x, [64]))
})
// A closing Scope's way: the views made one by one, released in batches of 1000 with one call each.
const pendingViews: Array<number> = []
const rawReleaseAll = await perCall(() => {
  pendingViews.push(ops.view(device, x, [64]))
  if (pendingViews.length === 1000) ops.releaseAll(device, pendingViews.splice(0))
})

const backend = new NativeBackend(addon)
const kernels = liftBackend(backend)
const tensorX = backend.full([64], 1)
const backendEnqueue = await perCall(() => {
  backend.affine(tensorX, 1, 0.5).release()
})
// Through the Effect service: each op is an Effect whose output joins the step's Scope.
const effectLoop = (n: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const k = yield* Kernels
      for (let i = 0; i < n; i++) (yield* k.affine(tensorX, 1, 0.5)).release()
    })
  ).pipe(Effect.provideService(Kernels, kernels))
let serviceEnqueue = Infinity
for (let round = 0; round < 5; round++) {
  const start = performance.now()
  Effect.runSync(effectLoop(ENQUEUE_OPS))
  serviceEnqueue = Math.min(serviceEnqueue, ((performance.now() - start) * 1000) / ENQUEUE_OPS)
  await backend.sync()
}

// GEMM: addon vs direct OpenBLAS, interleaved per size so both see the same machine state.
const root = fileURLToPath(new URL("..", import.meta.url))
const directBinary = `${root}build/bench/gemm-direct`
if (!existsSync(directBinary)) {
  mkdirSync(`${root}build/bench`, { recursive: true })
  execFileSync("g++", ["-O3", "-march=native", "-o", directBinary, `${root}bench/gemm-direct.cpp`, "-lopenblas"])
}
const gemmRows: Array<{ n: number; addon: number; direct: number }> = []
for (const n of [256, 512, 1024, 2048]) {
  const reps = Math.max(3, Math.round(2e9 / (2 * n ** 3)))
  const a = backend.randomNormal([n, n], { seed: 1, offset: 0 })
  const b = backend.randomNormal([n, n], { seed: 2, offset: 0 })
  backend.matmul(a, b).release()
  await backend.sync()
  // Same protocol as the C++ side: best of 3 rounds of `reps` back-to-back GEMMs (outputs released at
  // once; the stream orders the release after the GEMM).
  let addonBest = Infinity
  for (let round = 0; round < 3; round++) {
    const start = performance.now()
    for (let r = 0; r < reps; r++) backend.matmul(a, b).release()
    await backend.sync()
    addonBest = Math.min(addonBest, (performance.now() - start) / 1000 / reps)
  }
  const directBest = Number(execFileSync(directBinary, [String(n), String(reps)]).toString())
  const gflops = (seconds: number) => (2 * n ** 3) / seconds / 1e9
  gemmRows.push({ n, addon: gflops(addonBest), direct: gflops(directBest) })
  a.release()
  b.release()
}
// Fused ops against the unfused sequences they replace in the model, on a DiT-S-like activation
// [16, 256, 384] (MLP width 1536), interleaved round by round so both see the same machine state.
const [fusedBatch, fusedTokens, fusedDim] = [16, 256, 384]
const activation = backend.randomNormal([fusedBatch, fusedTokens, fusedDim], { seed: 3, offset: 0 })
const shift = backend.randomNormal([fusedBatch, fusedDim], { seed: 4, offset: 0 })
const scaleBy = backend.randomNormal([fusedBatch, fusedDim], { seed: 5, offset: 0 })
const dy = backend.randomNormal([fusedBatch, fusedTokens, fusedDim], { seed: 6, offset: 0 })
const mlpWeight = backend.randomNormal([4 * fusedDim, fusedDim], { seed: 7, offset: 0 })
const mlpBias = backend.randomNormal([4 * fusedDim], { seed: 8, offset: 0 })
const releaseAll = (...ts: ReadonlyArray<{ release(): void } | undefined>) => ts.forEach((t) => t?.release())
const fusedPairs: ReadonlyArray<{ name: string; unfused: () => void; fused: () => void }> = [
  {
    name: "LayerNorm + modulate, forward and backward",
    unfused: () => {
      const normed = backend.layerNorm(activation, { eps: 1e-6 })
      const y = backend.modulate(normed.y, shift, scaleBy)
      const outer = backend.modulateBackward(dy, normed.y, scaleBy)
      const inner = backend.layerNormBackward(outer.dx, activation, normed, { withBias: false })
      releaseAll(normed.y, normed.mean, normed.rstd, y, outer.dx, outer.dshift, outer.dscale, inner.dx)
    },
    fused: () => {
      const saved = backend.layerNormModulate(activation, shift, scaleBy, 1e-6)
      const grads = backend.layerNormModulateBackward(dy, activation, saved, scaleBy)
      releaseAll(saved.y, saved.mean, saved.rstd, grads.dx, grads.dshift, grads.dscale)
    }
  },
  {
    name: "linear + GELU (MLP up), forward",
    unfused: () => {
      const pre = backend.linear(activation, mlpWeight, mlpBias)
      releaseAll(pre, backend.gelu(pre))
    },
    fused: () => {
      const { y, pre } = backend.linearGelu(activation, mlpWeight, mlpBias)
      releaseAll(y, pre)
    }
  }
]
const timeOnce = async (body: () => void, reps: number) => {
  const start = performance.now()
  for (let r = 0; r < reps; r++) body()
  await backend.sync()
  return (performance.now() - start) / reps
}
const fusedRows: Array<{ name: string; unfused: number; fused: number }> = []
for (const pair of fusedPairs) {
  await timeOnce(pair.unfused, 2)
  await timeOnce(pair.fused, 2)
  let [unfused, fused] = [Infinity, Infinity]
  for (let round = 0; round < 5; round++) {
    unfused = Math.min(unfused, await timeOnce(pair.unfused, 10))
    fused = Math.min(fused, await timeOnce(pair.fused, 10))
  }
  fusedRows.push({ name: pair.name, unfused, fused })
}
releaseAll(activation, shift, scaleBy, dy, mlpWeight, mlpBias)
// Whole training steps of the default CPU model (tiny DiT, 32x32, batch 64): each step waited for, against
// one step in flight as `train` runs them (the host prepares step n+1 while the worker computes step n).
const stepConfig = stepBenchConfig({ model: { preset: "tiny" } })
const stepSeconds = await secondsPerStep(liftBackend(backend), stepConfig, "f32", 5, 3, 2)
backend.dispose()
ops.dispose(device)
// The same steps' JS host path alone, on ops that do nothing (bench/noopAddon.ts), for the tiny DiT and for
// DiT-S, the GPU's default model, in f32 and bf16-mixed: a floor under a step of that model on this CPU.
const noop = liftBackend(new NativeBackend(noopAddon, { backend: "cuda" }))
const jsAlone = []
for (const [preset, precision] of [["tiny", "f32"], ["S", "f32"], ["S", "bf16-mixed"]] as const) {
  const times = await secondsPerStep(noop, stepBenchConfig({ model: { preset } }), precision, 5, 3, 2)
  jsAlone.push({ preset, precision, seconds: times.seconds.get("one in flight") as number })
}

const pad = (s: string, w: number) => s.padEnd(w)
console.log(`\nselfe bench:ops — ${cpus()[0]?.model ?? "cpu"} x${cpus().length}, node ${process.version}, ${new Date().toISOString().slice(0, 10)}`)
console.log("\nJS-thread time per enqueued op (µs, best of 5 x 200k ops; the worker drains concurrently)")
console.log(`${pad("  raw binding: affine + release (2 N-API calls)", 58)}${rawEnqueue.toFixed(3)}`)
console.log(`${pad("  raw binding: view + release (2 N-API calls)", 58)}${rawRelease.toFixed(3)}`)
console.log(`${pad("  raw binding: view, then releaseAll of 1000 at a time", 58)}${rawReleaseAll.toFixed(3)}`)
console.log(`${pad("  NativeBackend.affine + release (shape rules + binding)", 58)}${backendEnqueue.toFixed(3)}`)
console.log(`${pad("  Kernels service (Effect + Scope) affine + release", 58)}${serviceEnqueue.toFixed(3)}`)
console.log("\nGEMM f32 n×n×n, best of 3 rounds of back-to-back runs (GFLOP/s)")
console.log(`  ${pad("n", 8)}${pad("addon", 12)}${pad("direct C++", 12)}addon / direct`)
for (const row of gemmRows)
  console.log(`  ${pad(String(row.n), 8)}${pad(row.addon.toFixed(1), 12)}${pad(row.direct.toFixed(1), 12)}${(row.addon / row.direct).toFixed(3)}`)
console.log(`\nFused ops vs the sequences they replace, CPU backend, [${fusedBatch}, ${fusedTokens}, ${fusedDim}] (ms per call, best of 5 x 10)`)
console.log(`  ${pad("", 46)}${pad("unfused", 10)}${pad("fused", 10)}fused / unfused`)
for (const row of fusedRows)
  console.log(`  ${pad(row.name, 46)}${pad(row.unfused.toFixed(2), 10)}${pad(row.fused.toFixed(2), 10)}${(row.fused / row.unfused).toFixed(2)}`)
const waited = stepSeconds.seconds.get("waited each step") as number
const inFlight = stepSeconds.seconds.get("one in flight") as number
console.log(`\nSelf-E training step, tiny DiT, 32x32, batch ${stepConfig.data.batchSize}, fake score on (ms per step, best of 3 x 5, interleaved)`)
console.log(`  ${pad("waited each step", 20)}${pad("one in flight", 16)}${pad("in flight / waited", 21)}host part (render + enqueue)`)
console.log(
  `  ${pad((waited * 1e3).toFixed(1), 20)}${pad((inFlight * 1e3).toFixed(1), 16)}${pad((inFlight / waited).toFixed(2), 21)}` +
    `${(stepSeconds.hostSeconds * 1e3).toFixed(1)}`
)
console.log(`\nThe same step's JS host path alone, ops doing nothing (bench/noopAddon.ts; ms per step, one in flight, best of 3 x 5)`)
for (const row of jsAlone)
  console.log(`  ${pad(`${row.preset === "tiny" ? "tiny DiT" : `DiT-${row.preset}`}, ${row.precision}`, 24)}${(row.seconds * 1e3).toFixed(1)}`)
