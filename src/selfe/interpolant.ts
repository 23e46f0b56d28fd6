import { Effect } from "effect"
import { Kernels } from "../kernels/Kernels.ts"
import type { Tensor } from "../tensor/Tensor.ts"

/**
 * The rectified-flow path x_t = (1 - t) x0 + t eps (t = 0 data, t = 1 noise), one t per row.
 * `oneMinusT` and `t` are [B] tensors; x0 and eps are data, so nothing here is recorded for autograd.
 */
export const interpolate = (x0: Tensor, eps: Tensor, t: Tensor, oneMinusT: Tensor) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    return yield* k.add(yield* k.mulRows(x0, oneMinusT), yield* k.mulRows(eps, t))
  })

/** The flow-matching velocity target eps - x0 (what rows with s = t regress onto). */
export const flowMatchingTarget = (x0: Tensor, eps: Tensor) => Effect.flatMap(Kernels, (k) => k.sub(eps, x0))
