/**
 * Where a training step's time goes (`selfe profile`): the step's wall time with one step in flight, the JS
 * thread's part of it (taking a batch and enqueueing the step), and the stream thread's time by op (the CPU
 * worker's arithmetic; on CUDA the launch thread's CUDA and cuBLASLt calls). Whichever of the three is close to
 * the step's time bounds the step. The GPU's own time per kernel is not measured here (Nsight Systems shows it).
 */
import { Effect } from "effect"
import { Kernels } from "../kernels/Kernels.ts"
import type { OpTime, StreamTimes } from "../kernels/ops.ts"
import type { Precision } from "../model/precision.ts"
import type { TrainConfig } from "./config.ts"
import { makeStepRunner } from "./stepRunner.ts"

/** One op's share of the stream's time, a step. */
export interface OpProfileRow {
  readonly op: string
  readonly callsPerStep: number
  readonly msPerStep: number
  readonly usPerCall: number
}

export interface StepProfile {
  readonly backend: string
  readonly device: string
  readonly precision: Precision
  readonly steps: number
  readonly warmup: number
  /** The run's step the warm-up starts after (its schedules set what a step computes). */
  readonly afterStep: number
  readonly stepMs: number
  readonly hostMs: number
  /** The stream thread's busy time a step and its split by op, the costliest first; undefined on the reference backend. */
  readonly stream: { readonly busyMs: number; readonly ops: ReadonlyArray<OpProfileRow> } | undefined
}

/** What the stream did between two readings: each op's calls and seconds in between (ops not called are left out). */
export const streamTimesBetween = (before: StreamTimes, after: StreamTimes): StreamTimes => {
  const earlier = new Map(before.ops.map((time) => [time.op, time] as const))
  const ops: Array<OpTime> = []
  for (const time of after.ops) {
    const calls = time.calls - (earlier.get(time.op)?.calls ?? 0)
    if (calls > 0) ops.push({ op: time.op, calls, seconds: time.seconds - (earlier.get(time.op)?.seconds ?? 0) })
  }
  return { busySeconds: after.busySeconds - before.busySeconds, ops }
}

/** The stream's time a step by op, the costliest first. */
export const opRows = (times: StreamTimes, steps: number): ReadonlyArray<OpProfileRow> =>
  times.ops
    .map((time) => ({ op: time.op, callsPerStep: time.calls / steps, msPerStep: (time.seconds * 1000) / steps, usPerCall: (time.seconds * 1e6) / time.calls }))
    .sort((a, b) => b.msPerStep - a.msPerStep)

/**
 * `steps` training steps of the config with one step in flight, as `train` runs them, after `warmup` steps
 * (GEMM plans, caches, the render workers' start), on the Kernels in scope; the warm-up starts after the run's
 * step `afterStep` (stepRunner.ts).
 */
export const profileSteps = (config: TrainConfig, precision: Precision, steps: number, warmup: number, afterStep = 0) =>
  Effect.scoped(
    Effect.gen(function* () {
      const k = yield* Kernels
      const { run } = yield* makeStepRunner(config, precision, afterStep)
      yield* run(warmup, "one in flight")
      // Whatever is still queued (the model's initialisation, with no warm-up) is not a step's.
      yield* k.sync()
      const before = yield* k.streamTimes()
      const start = performance.now()
      const { hostMs } = yield* run(steps, "one in flight")
      const stepMs = (performance.now() - start) / steps
      const after = yield* k.streamTimes()
      const between = before === undefined || after === undefined ? undefined : streamTimesBetween(before, after)
      return {
        backend: k.backend,
        device: k.device,
        precision,
        steps,
        warmup,
        afterStep,
        stepMs,
        hostMs: hostMs / steps,
        stream: between === undefined ? undefined : { busyMs: (between.busySeconds * 1000) / steps, ops: opRows(between, steps) }
      } satisfies StepProfile
    })
  )

const ms = (value: number) => value.toFixed(2)

/** The profile as a terminal table: the three times of a step, then the stream's time by op. */
export const formatStepProfile = (profile: StepProfile): string => {
  const streamName = profile.backend === "cuda" ? "launch thread (CUDA and cuBLASLt calls)" : "worker (the ops' arithmetic)"
  const lines = [
    `${profile.backend} (${profile.device}), ${profile.precision}: steps ${profile.afterStep + profile.warmup + 1}–${profile.afterStep + profile.warmup + profile.steps} ` +
      `of the run after ${profile.warmup} warm-up steps, one step in flight`,
    `step          ${ms(profile.stepMs).padStart(9)} ms`,
    `JS thread     ${ms(profile.hostMs).padStart(9)} ms  taking a batch and enqueueing the step`
  ]
  if (profile.stream === undefined) {
    lines.push("stream        (none: the reference backend runs each op on the JS thread, inside the time above)")
    return lines.join("\n")
  }
  const { busyMs, ops } = profile.stream
  lines.push(`stream        ${ms(busyMs).padStart(9)} ms  ${streamName}`, "")
  lines.push(`${"op".padEnd(28)}${"calls/step".padStart(11)}${"ms/step".padStart(10)}${"share".padStart(8)}${"µs/call".padStart(10)}`)
  for (const row of ops)
    lines.push(
      `${row.op.padEnd(28)}${row.callsPerStep.toFixed(1).padStart(11)}${ms(row.msPerStep).padStart(10)}` +
        `${(busyMs > 0 ? `${((100 * row.msPerStep) / busyMs).toFixed(1)}%` : "—").padStart(8)}${row.usPerCall.toFixed(1).padStart(10)}`
    )
  return lines.join("\n")
}
