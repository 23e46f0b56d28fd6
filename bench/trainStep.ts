/**
 * Whole Self-E training steps (prepare, landing, critique, backward, AdamW + EMA) on one Kernels service:
 * the seconds per step of a config at a given precision, the step's host reads included, as a user's run
 * would see them. bench/gpu.ts times DiT-S in f32 and in bf16-mixed with it.
 */
import { Effect, Schema } from "effect"
import { batchRenderer } from "../src/data/stream.ts"
import { Kernels, type KernelsService } from "../src/kernels/Kernels.ts"
import { makeModel } from "../src/model/model.ts"
import type { Precision } from "../src/model/precision.ts"
import { TrainConfig } from "../src/pipeline/config.ts"
import { freshState } from "../src/pipeline/state.ts"
import { trainStep } from "../src/pipeline/step.ts"
import { modelSpecFor } from "../src/pipeline/train.ts"

/** The DiT-S preset on 32x32 ShapeEval images (256 image tokens), the fake score on from the first step. */
export const stepBenchConfig = (overrides: Record<string, unknown> = {}): TrainConfig =>
  Schema.decodeUnknownSync(TrainConfig)({
    steps: 1000,
    data: { resolution: 32, batchSize: 64, prefetch: 0 },
    model: { preset: "S" },
    objective: { fakeScore: { enabled: true, startFraction: 0 } },
    ...overrides
  })

/** Best seconds per step over `rounds` rounds of `steps` steps, after `warmup` steps (plans, caches). */
export const secondsPerStep = (kernels: KernelsService, config: TrainConfig, precision: Precision, steps = 5, rounds = 2, warmup = 2) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const model = yield* makeModel(modelSpecFor(config), precision)
        let state = yield* freshState(model, config.seed)
        const batches = batchRenderer(config.data)
        const ctx = { model, config }
        const run = (count: number) =>
          Effect.gen(function* () {
            for (let i = 0; i < count; i++) {
              const metrics = yield* trainStep(ctx, state, batches.render(state.step))
              state = { ...state, step: metrics.step }
            }
          })
        yield* run(warmup)
        let best = Infinity
        for (let round = 0; round < rounds; round++) {
          const start = performance.now()
          yield* run(steps)
          best = Math.min(best, (performance.now() - start) / 1000 / steps)
        }
        return best
      }).pipe(Effect.provideService(Kernels, kernels))
    )
  )
