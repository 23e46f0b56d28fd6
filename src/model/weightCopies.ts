import { Effect, FiberRef, Scope } from "effect"
import * as F from "../autograd/functional.ts"
import { recordOnce } from "../autograd/tape.ts"
import { Kernels } from "../kernels/Kernels.ts"
import type { DType } from "../tensor/dtype.ts"
import { keepIn } from "../tensor/lifetime.ts"
import type { Tensor } from "../tensor/Tensor.ts"

/**
 * The bf16 copies of f32 master weights a region's forward passes share, PyTorch autocast's weight cast
 * cache: a training step's four passes (landing, fake, unconditional, conditional) or a sampler's passes
 * cast each weight once instead of once per pass, and the step's backward casts each weight's gradient
 * once. Each launch saved is host time on a host-bound GPU step (docs/cuda.md, bf16 and mixed precision).
 */
class WeightCopies {
  readonly #copies = new Map<DType, Map<Tensor, Tensor>>()
  constructor(readonly scope: Scope.Scope) {}

  get(weight: Tensor, dtype: DType): Tensor | undefined {
    return this.#copies.get(dtype)?.get(weight)
  }

  set(weight: Tensor, copy: Tensor): void {
    const byWeight = this.#copies.get(copy.dtype) ?? new Map<Tensor, Tensor>()
    this.#copies.set(copy.dtype, byWeight.set(weight, copy))
  }
}

const CurrentWeightCopies: FiberRef.FiberRef<WeightCopies | undefined> = FiberRef.unsafeMake<WeightCopies | undefined>(undefined)

/**
 * Runs `effect` with one cast per weight and dtype: the copies belong to the enclosing Scope (a step's
 * backward reads them after the region). The weights must not change inside the region (the copies would
 * go stale), so a training step's region ends before its update.
 */
export const withWeightCopies = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Scope.Scope> =>
  Effect.flatMap(Scope.Scope, (scope) => Effect.locally(effect, CurrentWeightCopies, new WeightCopies(scope)))

// Written without Effect.gen: a hit costs one Map lookup and a tape check, once per weight per pass.
const sharedCopy = (copies: WeightCopies, weight: Tensor, dtype: DType): F.Op => {
  // One cast node per copy on the tape, however many passes read it: their gradients sum (in `dtype`) into
  // the copy's, which reaches the master once, cast back.
  const recorded = (copy: Tensor) => Effect.as(recordOnce("cast", { inputs: [weight], saved: {}, attrs: {} }, copy), copy)
  const copy = copies.get(weight, dtype)
  if (copy !== undefined) return recorded(copy)
  return Effect.flatMap(Kernels, (k) =>
    Effect.flatMap(Effect.flatMap(k.cast(weight, dtype), (made) => keepIn(copies.scope, made)), (made) => {
      copies.set(weight, made)
      return recorded(made)
    })
  )
}

/**
 * A master weight as `dtype` for a linear layer: the weight itself when it already is; inside
 * withWeightCopies the region's shared copy; elsewhere a fresh cast, recorded on the tape.
 */
export const castWeight = (weight: Tensor, dtype: DType): F.Op =>
  weight.dtype === dtype
    ? Effect.succeed(weight)
    : FiberRef.getWith(CurrentWeightCopies, (copies) => (copies === undefined ? F.cast(weight, dtype) : sharedCopy(copies, weight, dtype)))
