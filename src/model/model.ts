import { Effect, type Scope } from "effect"
import * as F from "../autograd/functional.ts"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import type { ParamSet, ParamSpec } from "../nn/params.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import { type ModelSpec, imageTokens } from "./config.ts"
import { velocity } from "./dit.ts"
import type { ModelInputs } from "./inputs.ts"
import { modelParamSpecs } from "./parameters.ts"
import type { Precision } from "./precision.ts"
import { sinCosPositions2d } from "./positions.ts"

/** A built model: its spec, parameter layout and fixed buffers; weights are passed per call (online or EMA). */
export interface Model {
  readonly spec: ModelSpec
  /** How velocity computes (weights stay f32 either way). */
  readonly precision: Precision
  readonly paramSpecs: ReadonlyArray<ParamSpec>
  /** [Li, dim] fixed 2D sin-cos positions. */
  readonly positions: Tensor
  /** V(x, t, s, c) with the given weights. */
  readonly velocity: (params: ParamSet, inputs: ModelInputs) => Effect.Effect<Tensor, KernelError, Kernels | Scope.Scope>
}

export const makeModel = (spec: ModelSpec, precision: Precision = "f32"): Effect.Effect<Model, KernelError, Kernels | Scope.Scope> =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const positions = yield* k.fromArray(sinCosPositions2d(spec.resolution / spec.patch, spec.dim), [imageTokens(spec), spec.dim])
    positions.name = "positions"
    return {
      spec,
      precision,
      paramSpecs: modelParamSpecs(spec),
      positions,
      velocity: (params, inputs) => velocity(params, spec, precision, positions, inputs)
    }
  })

/** G(x, t, s, c) = x - t V(x, t, s, c): the clean image the network predicts from x at time t. */
export const cleanImage = (model: Model, params: ParamSet, inputs: ModelInputs) =>
  Effect.flatMap(model.velocity(params, inputs), (v) => Effect.flatMap(F.mulRows(v, inputs.t), (tv) => F.sub(inputs.x, tv)))
