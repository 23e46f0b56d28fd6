import { Effect, type Scope } from "effect"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import type { DType, Shape } from "../tensor/dtype.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import { backward } from "./backward.ts"
import * as F from "./functional.ts"
import { withTape } from "./tape.ts"

export interface GradcheckInput {
  readonly data: ArrayLike<number>
  readonly shape: Shape
  readonly dtype?: DType
  /** Differentiate with respect to this input (default true for f32). */
  readonly differentiable?: boolean
}

export interface GradcheckResult {
  /** Largest |analytic - numeric| over all checked elements. */
  readonly maxAbsError: number
  /** Largest |analytic - numeric| / max(1, |numeric|). */
  readonly maxRelError: number
  /** How many input elements were perturbed. */
  readonly checked: number
}

/**
 * Checks autograd against central finite differences of L(x) = sum(f(x) * R) for a fixed random R.
 * Run it on float64 kernels (the Reference layer with precision "f64") so the differences are exact to
 * ~1e-9 and any error above that is a wrong backward rule.
 */
export const gradcheck = (
  f: (inputs: ReadonlyArray<Tensor>) => Effect.Effect<Tensor, KernelError, Kernels | Scope.Scope>,
  inputs: ReadonlyArray<GradcheckInput>,
  options: { readonly eps?: number; readonly seed?: number } = {}
): Effect.Effect<GradcheckResult, KernelError, Kernels> =>
  Effect.scoped(
    Effect.gen(function* () {
      const k = yield* Kernels
      const eps = options.eps ?? 1e-6
      const differentiable = inputs.map((input) => input.differentiable ?? (input.dtype ?? "f32") === "f32")
      const make = (values: ReadonlyArray<ArrayLike<number>>) =>
        Effect.forEach(inputs, (input, i) =>
          Effect.map(k.fromArray(values[i] as ArrayLike<number>, input.shape, input.dtype ?? "f32"), (t) => {
            t.requiresGrad = differentiable[i] as boolean
            return t
          })
        )
      const base = inputs.map((input) => Array.from(input.data))
      const probe = yield* f(yield* make(base))
      let state = (options.seed ?? 1) >>> 0
      const projection = Array.from({ length: probe.numel }, () => {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0
        return state / 2 ** 32 - 0.5
      })
      const weights = yield* k.fromArray(projection, probe.shape)
      const objective = (xs: ReadonlyArray<Tensor>) => Effect.flatMap(f(xs), (y) => Effect.flatMap(F.mul(y, weights), F.sum))
      const lossAt = (values: ReadonlyArray<ArrayLike<number>>) =>
        Effect.scoped(Effect.flatMap(Effect.flatMap(make(values), objective), (loss) => k.readNumber(loss)))

      const xs = yield* make(base)
      const [loss, tape] = yield* withTape(objective(xs))
      const grads = yield* backward(loss, tape)

      let maxAbsError = 0
      let maxRelError = 0
      let checked = 0
      for (let i = 0; i < inputs.length; i++) {
        if (!differentiable[i]) continue
        const grad = grads.get(xs[i] as Tensor)
        const analytic = grad === undefined ? new Float64Array(base[i]!.length) : yield* k.read(grad)
        for (let j = 0; j < base[i]!.length; j++) {
          const plus = base.map((values) => [...values])
          const minus = base.map((values) => [...values])
          plus[i]![j]! += eps
          minus[i]![j]! -= eps
          const numeric = ((yield* lossAt(plus)) - (yield* lossAt(minus))) / (2 * eps)
          const error = Math.abs((analytic[j] as number) - numeric)
          maxAbsError = Math.max(maxAbsError, error)
          maxRelError = Math.max(maxRelError, error / Math.max(1, Math.abs(numeric)))
          checked++
        }
      }
      return { maxAbsError, maxRelError, checked }
    })
  )
