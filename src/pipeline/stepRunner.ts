/**
 * Training steps without a run folder, for measuring them (`selfe profile`, the bench scripts): a model built
 * from a config with its fresh state, batches drawn from the training stream on its render workers as `train`
 * takes them, and whole Self-E steps (prepare, landing, critique, backward, AdamW + EMA) enqueued on the Kernels
 * service in scope.
 */
import { Chunk, Effect, type Scope, Stream } from "effect"
import { type Batch, trainingBatches } from "../data/stream.ts"
import type { KernelError } from "../kernels/errors.ts"
import type { Kernels } from "../kernels/Kernels.ts"
import { makeModel } from "../model/model.ts"
import type { Precision } from "../model/precision.ts"
import type { TrainConfig } from "./config.ts"
import { freshState } from "./state.ts"
import { enqueueTrainStep, type PendingStep } from "./step.ts"
import { checkedModelSpec } from "./train.ts"

/** How a loop waits for its steps: after each one, or with one step in flight (as `train` runs). */
export type StepSchedule = "waited each step" | "one in flight"
export const stepSchedules: ReadonlyArray<StepSchedule> = ["one in flight", "waited each step"]

export interface StepRunner {
  /**
   * Takes `count` steps and waits for the last: the milliseconds the host spent taking batches and enqueueing
   * steps (no waits), which, close to the steps' own time, says the steps are bound by the host.
   */
  readonly run: (count: number, schedule: StepSchedule) => Effect.Effect<{ readonly hostMs: number }, KernelError, Kernels | Scope.Scope>
}

/**
 * A model of the config at `precision`, ready to step; the model and the batch stream live in the Scope. A model
 * `train` would refuse (ModelSpec problems) fails with the same ConfigError. The first step taken is step
 * `afterStep + 1` of the run, which sets the schedules (the fake score's start, tau, the learning rate) and with
 * them what a step computes; the weights are fresh either way.
 */
export const makeStepRunner = (config: TrainConfig, precision: Precision, afterStep = 0) =>
  Effect.gen(function* () {
    const model = yield* makeModel(yield* checkedModelSpec(config), precision)
    let state = { ...(yield* freshState(model, config.seed)), step: afterStep }
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
    const run: StepRunner["run"] = (count, schedule) =>
      Effect.gen(function* () {
        let hostMs = 0
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
        return { hostMs }
      })
    return { run } satisfies StepRunner
  })
