import { Effect, type Scope } from "effect"
import type { KernelError } from "../kernels/errors.ts"
import type { Kernels } from "../kernels/Kernels.ts"
import type { Model } from "../model/model.ts"
import { type ParamSet, initializeParams, shadowParams } from "../nn/params.ts"

/** Everything a training run carries from step to step (all of it goes into a checkpoint). */
export interface TrainState {
  readonly params: ParamSet
  readonly ema: ParamSet
  /** Adam first and second moments, entry by entry with params. */
  readonly m: ParamSet
  readonly v: ParamSet
  /** Steps completed so far (the next step is step + 1). */
  readonly step: number
}

/** A fresh run: initialised weights, EMA = weights, zero moments; owned by the caller's (the run's) Scope. */
export const freshState = (model: Model, seed: number): Effect.Effect<TrainState, KernelError, Kernels | Scope.Scope> =>
  Effect.gen(function* () {
    const params = yield* initializeParams(model.paramSpecs, seed)
    return {
      params,
      ema: yield* shadowParams(params, "ema.", params),
      m: yield* shadowParams(params, "adam.m."),
      v: yield* shadowParams(params, "adam.v."),
      step: 0
    }
  })
