/**
 * Whole Self-E training steps (prepare, landing, critique, backward, AdamW + EMA) on one Kernels service:
 * the seconds per step of a config at a given precision, the step's host reads included, as a user's run
 * would see them, with each step waited for and with one step in flight. bench/gpu.ts times DiT-S in f32 and
 * in bf16-mixed with it, bench/ops.ts the tiny DiT on the CPU.
 */
import { Effect, Schema } from "effect"
import { Kernels, type KernelsService } from "../src/kernels/Kernels.ts"
import type { Precision } from "../src/model/precision.ts"
import { TrainConfig } from "../src/pipeline/config.ts"
import { makeStepRunner, type StepSchedule, stepSchedules } from "../src/pipeline/stepRunner.ts"

export { type StepSchedule, stepSchedules }

/** The DiT-S preset on 32x32 ShapeEval images (256 image tokens), the fake score on from the first step. */
export const stepBenchConfig = (overrides: Record<string, unknown> = {}): TrainConfig =>
  Schema.decodeUnknownSync(TrainConfig)({
    steps: 1000,
    data: { resolution: 32, batchSize: 64 },
    model: { preset: "S" },
    objective: { fakeScore: { enabled: true, startFraction: 0 } },
    ...overrides
  })

/** Seconds per step of each schedule, and of the host's part (taking a batch and enqueueing a step, no waits). */
export interface StepTimes {
  readonly seconds: ReadonlyMap<StepSchedule, number>
  readonly hostSeconds: number
}

/**
 * Best seconds per step of each schedule over `rounds` rounds of `steps` steps, the schedules interleaved
 * round by round on one model, after `warmup` steps (plans, caches); and the best round's host time per step
 * with one step in flight: where it is close to the step time, the step is bound by the host, not the device.
 * `beforeTimed` runs once between the warm-up and the timed rounds (bench/hostProfile.ts starts counting there).
 */
export const secondsPerStep = (
  kernels: KernelsService,
  config: TrainConfig,
  precision: Precision,
  steps = 5,
  rounds = 2,
  warmup = 2,
  beforeTimed: () => void = () => {}
) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const { run } = yield* makeStepRunner(config, precision)
        yield* run(warmup, "waited each step")
        beforeTimed()
        const best = new Map<StepSchedule, number>(stepSchedules.map((schedule) => [schedule, Infinity]))
        let hostSeconds = Infinity
        for (let round = 0; round < rounds; round++)
          for (const schedule of stepSchedules) {
            const start = performance.now()
            const { hostMs } = yield* run(steps, schedule)
            best.set(schedule, Math.min(best.get(schedule) as number, (performance.now() - start) / 1000 / steps))
            if (schedule === "one in flight") hostSeconds = Math.min(hostSeconds, hostMs / 1000 / steps)
          }
        return { seconds: best, hostSeconds } satisfies StepTimes
      }).pipe(Effect.provideService(Kernels, kernels))
    )
  )
