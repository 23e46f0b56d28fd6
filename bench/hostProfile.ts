/**
 * npm run bench:host-profile [-- --precision f32] [--smoke] [--emulated] — where the JS thread's time in a training step
 * goes on the CUDA device: every addon call of a DiT-S step (one step in flight, as `train` runs) timed on the
 * JS thread and summed by op, beside the same step on ops that do nothing (bench/noopAddon.ts) through the
 * same timing wrapper. An op's native cost a call is the difference of the two: the N-API crossing, the
 * argument checks, allocation and queueing. The rest of the step's host part is JS (the model, autograd,
 * Effect). Beside it, the seconds a step keeps the device's launch thread busy (its CUDA and cuBLASLt calls),
 * and by which ops: a step bound by its host (bench:gpu's step rows) is bound by whichever of the two threads is near the step
 * time. Needs the CUDA backend and a GPU. --emulated runs it without one, on the CUDA emulator's addon
 * (test/helpers/emulatedCudaAddon.ts, built if stale) with its kernels skipped (SELFE_EMU_SKIP_KERNELS): the
 * JS thread's addon calls are a CUDA build's, N-API layer, allocator and queueing alike; the launch thread's busy
 * time is not a GPU's.
 */
import { parseArgs } from "node:util"
import { liftBackend } from "../src/kernels/lift.ts"
import { loadAddon, type NativeAddon } from "../src/kernels/native/binding.ts"
import { NativeBackend } from "../src/kernels/native/NativeBackend.ts"
import type { StreamTimes } from "../src/kernels/ops.ts"
import type { Precision } from "../src/model/precision.ts"
import { opRows, streamTimesBetween } from "../src/pipeline/stepProfile.ts"
import { dtypeCode } from "../src/tensor/dtype.ts"
import { noopAddon } from "./noopAddon.ts"
import { secondsPerStep, stepBenchConfig } from "./trainStep.ts"

const { values } = parseArgs({
  options: { precision: { type: "string", default: "bf16-mixed" }, smoke: { type: "boolean", default: false }, emulated: { type: "boolean", default: false } }
})
if (values.precision !== "bf16-mixed" && values.precision !== "f32") {
  console.error(`bench:host-profile: --precision takes bf16-mixed or f32, got ${JSON.stringify(values.precision)}`)
  process.exit(2)
}
const precision: Precision = values.precision
if (values.emulated) {
  const { buildEmulatedAddon, emulatedAddonPath } = await import("../test/helpers/emulatedCudaAddon.ts")
  await buildEmulatedAddon()
  // Read when the addon loads (the emulator reads SELFE_EMU_SKIP_KERNELS once), so set before loadAddon.
  Object.assign(process.env, { SELFE_NATIVE_ADDON: emulatedAddonPath, SELFE_EMU_SKIP_KERNELS: "1" })
}
const addon = loadAddon()
if (!addon.build.backends.split(",").includes("cuda") || addon.cudaDeviceCount() === 0) {
  console.error(`bench:host-profile needs the CUDA backend and a GPU: build.backends is "${addon.build.backends}", ${addon.cudaDeviceCount()} CUDA device(s) usable`)
  process.exit(1)
}

/** Calls and milliseconds of JS-thread time by op name, counted while `counting` is on. */
interface Profile {
  readonly ops: Map<string, { calls: number; ms: number }>
  counting: boolean
}

/** The addon with every op timed on the calling thread (a promise-returning op: its synchronous part). */
const profiled = (of: NativeAddon): [NativeAddon, Profile] => {
  const profile: Profile = { ops: new Map(), counting: false }
  const wrappers = new Map<string, unknown>()
  const ops = new Proxy(of.ops, {
    get: (target, name: string) => {
      let wrapper = wrappers.get(name)
      if (wrapper === undefined) {
        const op = (target as unknown as Record<string, (...args: Array<unknown>) => unknown>)[name] as (...args: Array<unknown>) => unknown
        wrapper = (...args: Array<unknown>) => {
          if (!profile.counting) return op(...args)
          const start = performance.now()
          try {
            return op(...args)
          } finally {
            const ms = performance.now() - start
            const entry = profile.ops.get(name)
            if (entry === undefined) profile.ops.set(name, { calls: 1, ms })
            else {
              entry.calls++
              entry.ms += ms
            }
          }
        }
        wrappers.set(name, wrapper)
      }
      return wrapper
    }
  })
  return [{ ...of, ops } as NativeAddon, profile]
}

const config = values.smoke
  ? stepBenchConfig({ data: { resolution: 32, batchSize: 2, prefetch: 0 }, model: { preset: "tiny" } })
  : stepBenchConfig()
// Steps a round, rounds and warm-up steps; both schedules run each round, so 2 x steps x rounds steps are counted.
const [steps, rounds, warmup] = values.smoke ? [1, 1, 1] : [5, 2, 10]
const counted = 2 * steps * rounds

const profileOn = async (of: NativeAddon) => {
  const [timedAddon, profile] = profiled(of)
  const backend = new NativeBackend(timedAddon, { backend: "cuda" })
  try {
    // The launch thread's time, by op (undefined on ops that do nothing).
    let launchBefore: StreamTimes | undefined
    const times = await secondsPerStep(liftBackend(backend), config, precision, steps, rounds, warmup, () => {
      profile.counting = true
      launchBefore = backend.streamTimes()
    })
    profile.counting = false
    const launchAfter = backend.streamTimes()
    const launch = launchBefore === undefined || launchAfter === undefined ? undefined : streamTimesBetween(launchBefore, launchAfter)
    return { profile, times, launch }
  } finally {
    backend.dispose()
  }
}

const real = await profileOn(addon)
const noop = await profileOn(noopAddon)

const perStep = (ms: number) => ms / counted
const totalMs = (p: Profile) => [...p.ops.values()].reduce((sum, e) => sum + e.ms, 0)
const totalCalls = (p: Profile) => [...p.ops.values()].reduce((sum, e) => sum + e.calls, 0)
const ms = (seconds: number | undefined) => (seconds === undefined ? "—" : (seconds * 1000).toFixed(1))
const label =
  `${values.smoke ? "tiny DiT (smoke: the times mean nothing)" : "DiT-S"}, ${precision}, batch ${config.data.batchSize}` +
  (values.emulated ? "; emulated CUDA addon, kernels skipped (launch thread times are the emulator's)" : "")

console.log(`\nselfe bench:host-profile — ${label}; ${counted} steps counted after ${warmup} warm-up steps, ${new Date().toISOString().slice(0, 10)}`)
for (const [name, side] of [
  ["CUDA", real],
  ["ops doing nothing", noop]
] as const)
  console.log(
    `${name.padEnd(18)} step ${ms(side.times.seconds.get("one in flight"))} ms (one in flight), ${ms(side.times.seconds.get("waited each step"))} ms (waited); ` +
      `host part ${ms(side.times.hostSeconds)} ms, of which in addon calls ${perStep(totalMs(side.profile)).toFixed(1)} ms (${(totalCalls(side.profile) / counted).toFixed(0)} calls)` +
      (side.launch === undefined ? "" : `; launch thread busy ${ms(side.launch.busySeconds / counted)} ms a step`)
  )

const rows = [...real.profile.ops].map(([name, entry]) => {
  const floor = noop.profile.ops.get(name)
  const floorPerCall = floor === undefined ? 0 : floor.ms / floor.calls
  return { name, calls: entry.calls / counted, perCall: (1000 * entry.ms) / entry.calls, msPerStep: perStep(entry.ms), floorPerCall: 1000 * floorPerCall }
})
rows.sort((a, b) => b.msPerStep - a.msPerStep)
const realTotal = perStep(totalMs(real.profile))
console.log("\nJS-thread time in addon calls by op, a step (µs per call; the native part is the CUDA call less the same call doing nothing)")
console.log(`${"op".padEnd(28)}${"calls".padStart(8)}${"ms".padStart(8)}${"share".padStart(8)}${"µs/call".padStart(10)}${"nothing".padStart(10)}${"native".padStart(10)}`)
for (const row of rows)
  console.log(
    `${row.name.padEnd(28)}${row.calls.toFixed(0).padStart(8)}${row.msPerStep.toFixed(2).padStart(8)}${`${((100 * row.msPerStep) / realTotal).toFixed(0)}%`.padStart(8)}` +
      `${row.perCall.toFixed(2).padStart(10)}${row.floorPerCall.toFixed(2).padStart(10)}${(row.perCall - row.floorPerCall).toFixed(2).padStart(10)}`
  )

// The other thread: what each op's launches (CUDA and cuBLASLt calls) cost the launch thread, a step.
if (real.launch !== undefined) {
  const launchRows = opRows(real.launch, counted)
  const launchMs = perStep(real.launch.busySeconds * 1000)
  console.log(`\nLaunch-thread time by op, a step (busy ${launchMs.toFixed(1)} ms; reads, syncs and uploads are their stream part)`)
  console.log(`${"op".padEnd(28)}${"calls".padStart(8)}${"ms".padStart(8)}${"share".padStart(8)}${"µs/call".padStart(10)}`)
  for (const row of launchRows)
    console.log(
      `${row.op.padEnd(28)}${row.callsPerStep.toFixed(0).padStart(8)}${row.msPerStep.toFixed(2).padStart(8)}` +
        `${`${((100 * row.msPerStep) / launchMs).toFixed(0)}%`.padStart(8)}${row.usPerCall.toFixed(2).padStart(10)}`
    )
}

// What single calls cost the JS thread on this device, each alone in a loop: the N-API crossing without a
// launch (view), one small kernel (affine), cuBLASLt (linear, with and without its bias epilogue) and linear's
// backward (two GEMMs and a column sum). Calls go in bursts short enough that the GPU's launch queue never
// fills (a full queue would time the GPU, not the host); only the enqueueing is timed, best of 5 rounds.
const dev = new addon.Device({ backend: "cuda" })
const o = addon.ops
const [f32, bf16] = [dtypeCode.f32, dtypeCode.bf16]
const tokens = values.smoke ? 8 : 64
const x = o.full(dev, f32, [tokens, 384], 0.5)
const xb = o.full(dev, bf16, [tokens, 384], 0.5)
const w = o.full(dev, bf16, [384, 384], 0.01)
const b = o.full(dev, bf16, [384], 0.1)
const BURST = 256
const BURSTS = values.smoke ? 2 : 40
// `callsPerBurst`: calls between syncs (fewer for the list calls, each of which does a step's worth of checks).
const microsPerCall = async (body: () => void, callsPerBurst = BURST) => {
  let best = Infinity
  for (let round = 0; round < 5; round++) {
    let ms = 0
    for (let burst = 0; burst < BURSTS; burst++) {
      await o.sync(dev)
      const start = performance.now()
      for (let i = 0; i < callsPerBurst; i++) body()
      ms += performance.now() - start
    }
    best = Math.min(best, (ms * 1000) / (callsPerBurst * BURSTS))
  }
  return best
}
// The list calls of a DiT-S step at its sizes in tensors, not in bytes: the optimizer's five lists of 255
// parameters and a castAll of 192 weights (the JS thread's cost is per tensor).
const tensorList = (n: number) => Array.from({ length: n }, () => o.full(dev, f32, [384], 0.1))
const [params, grads, m, v, ema] = [tensorList(255), tensorList(255), tensorList(255), tensorList(255), tensorList(255)]
const single = [
  ["view + release (no launch)", () => o.release(dev, o.view(dev, x, [tokens * 384]))],
  [`affine f32 [${tokens}, 384] + release (1 kernel)`, () => o.release(dev, o.affine(dev, x, 2, 1))],
  [`linear bf16 [${tokens}, 384] x [384, 384], no bias + release`, () => o.release(dev, o.linear(dev, xb, w, undefined))],
  [`linear bf16 [${tokens}, 384] x [384, 384] + bias + release`, () => o.release(dev, o.linear(dev, xb, w, b))],
  [
    `linearBackward bf16 [${tokens}, 384], all three + release`,
    () => o.releaseAll(dev, o.linearBackward(dev, xb, xb, w, true, true, true, undefined, undefined, undefined) as Array<number>)
  ]
] as const
const lists = [
  ["adamwEma, 5 lists of 255 tensors", () => o.adamwEma(dev, params, grads, m, v, ema, 1e-4, 0.9, 0.999, 1e-8, 0, 1, 0.999)],
  ["castAll of 192 tensors to bf16 + releaseAll", () => o.releaseAll(dev, o.castAll(dev, params.slice(0, 192), bf16))]
] as const
console.log("\nJS-thread µs per call of single ops, each alone in a loop (bursts of 256 calls, 16 for lists; best of 5 rounds)")
for (const [name, body] of single) console.log(`  ${name.padEnd(60)}${(await microsPerCall(body)).toFixed(2).padStart(8)}`)
for (const [name, body] of lists) console.log(`  ${name.padEnd(60)}${(await microsPerCall(body, 16)).toFixed(2).padStart(8)}`)
o.dispose(dev)
