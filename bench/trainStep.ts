/**
 * Whole Self-E training steps (prepare, landing, critique, backward, AdamW + EMA) on one Kernels service:
 * the seconds per step of a config at a given precision, the step's host reads included, as a user's run
 * would see them, with each step waited for and with one step in flight. bench/gpu.ts times DiT-S in f32 and
 * in bf16-mixed with it, bench/ops.ts the tiny DiT on the CPU.
 */
import { Chunk, Effect, Schema, Stream } from "effect"
import { type Batch, trainingBatches } from "../src/data/stream.ts"
import { Kernels, type KernelsService } from "../src/kernels/Kernels.ts"
import { makeModel } from "../src/model/model.ts"
import type { Precision } from "../src/model/precision.ts"
import { TrainConfig } from "../src/pipeline/config.ts"
import { freshState } from "../src/pipeline/state.ts"
import { enqueueTrainStep, type PendingStep } from "../src/pipeline/step.ts"
import { modelSpecFor } from "../src/pipeline/train.ts"

/** The DiT-S preset on 32x32 ShapeEval images (256 image tokens), the fake score on from the first step. */
export const stepBenchConfig = (overrides: Record<string, unknown> = {}): TrainConfig =>
  Schema.decodeUnknownSync(TrainConfig)({
    steps: 1000,
    data: { resolution: 32, batchSize: 64 },
    model: { preset: "S" },
    objective: { fakeScore: { enabled: true, startFraction: 0 } },
    ...overrides
  })

/** How a loop waits for its steps: after each one, or with one step in flight (as `train` runs). */
export type StepSchedule = "waited each step" | "one in flight"
export const stepSchedules: ReadonlyArray<StepSchedule> = ["one in flight", "waited each step"]

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
        const model = yield* makeModel(modelSpecFor(config), precision)
        let state = yield* freshState(model, config.seed)
        // Batches come as `train` takes them: from the training stream, drawn on its render workers.
        const pull = yield* Stream.toPull(trainingBatches(config.data))
        const ready: Array<Batch> = []
        const nextBatch = Effect.suspend(() =>
          ready.length > 0
            ? Effect.succeed(ready.shift() as Batch)
            : Effect.map(Effect.orDie(pull), (chunk) => {
                ready.push(...Chunk.toReadonlyArray(chunk))
                return ready.shift() as Batch
              })
        )
        const ctx = { model, config }
        let hostMs = 0
        const run = (count: number, schedule: StepSchedule) =>
          Effect.gen(function* () {
            let inFlight: PendingStep | undefined
            for (let i = 0; i < count; i++) {
              const hostStart = performance.now()
              const pending = yield* enqueueTrainStep(ctx, state, yield* nextBatch)
              hostMs += performance.now() - hostStart
              state = { ...state, step: pending.step }
              if (inFlight !== undefined) yield* inFlight.metrics
              inFlight = pending
              if (schedule === "waited each step") yield* pending.metrics
            }
            if (inFlight !== undefined) yield* inFlight.metrics
          })
        yield* run(warmup, "waited each step")
        beforeTimed()
        const best = new Map<StepSchedule, number>(stepSchedules.map((schedule) => [schedule, Infinity]))
        let hostSeconds = Infinity
        for (let round = 0; round < rounds; round++)
          for (const schedule of stepSchedules) {
            hostMs = 0
            const start = performance.now()
            yield* run(steps, schedule)
            best.set(schedule, Math.min(best.get(schedule) as number, (performance.now() - start) / 1000 / steps))
            if (schedule === "one in flight") hostSeconds = Math.min(hostSeconds, hostMs / 1000 / steps)
          }
        return { seconds: best, hostSeconds } satisfies StepTimes
      }).pipe(Effect.provideService(Kernels, kernels))
    )
  )
