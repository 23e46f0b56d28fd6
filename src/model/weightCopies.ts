import { Effect, FiberRef, Scope } from "effect"
import * as F from "../autograd/functional.ts"
import { CurrentTape, recordOnce } from "../autograd/tape.ts"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import type { DType } from "../tensor/dtype.ts"
import { adopt, keepIn } from "../tensor/lifetime.ts"
import { GradEnabled } from "../tensor/gradMode.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import type { Precision } from "./precision.ts"

/**
 * The bf16 copies of f32 master weights a region's forward passes share, PyTorch autocast's weight cast
 * cache: a training step's four passes (landing, fake, unconditional, conditional) or a sampler's passes
 * cast each weight once instead of once per pass, and the step's backward casts each weight's gradient
 * once (all of them in one castAll, src/autograd/backward.ts). With a plan key, the weights are cast in one
 * castAll at the region's start from the key's second region on. Each launch saved is host time on a
 * host-bound GPU step (docs/cuda.md, bf16 and mixed precision).
 */
class WeightCopies {
  readonly #copies = new Map<DType, Map<Tensor, Tensor>>()
  constructor(
    readonly scope: Scope.Scope,
    /** The weights cast under the region's plan key, by dtype; undefined without a key. */
    readonly plan: Map<DType, Set<Tensor>> | undefined
  ) {}

  get(weight: Tensor, dtype: DType): Tensor | undefined {
    return this.#copies.get(dtype)?.get(weight)
  }

  set(weight: Tensor, copy: Tensor): void {
    const byWeight = this.#copies.get(copy.dtype) ?? new Map<Tensor, Tensor>()
    this.#copies.set(copy.dtype, byWeight.set(weight, copy))
    if (this.plan !== undefined) this.plan.set(copy.dtype, (this.plan.get(copy.dtype) ?? new Set<Tensor>()).add(weight))
  }
}

const CurrentWeightCopies: FiberRef.FiberRef<WeightCopies | undefined> = FiberRef.unsafeMake<WeightCopies | undefined>(undefined)

/** Per plan key, the weights its regions have cast, by dtype (weak: a key's plan goes with the key). */
const plans = new WeakMap<object, Map<DType, Set<Tensor>>>()

/**
 * The copies of every weight the key's earlier regions cast, made in one castAll per dtype (one launch on
 * CUDA where each took one), before the region reads any. A weight released since (a replaced state's) is
 * dropped from the plan.
 */
const precast = (copies: WeightCopies) =>
  Effect.flatMap(Kernels, (k) =>
    Effect.forEach(copies.plan ?? [], ([dtype, weights]) => {
      for (const weight of weights) if (weight.released) weights.delete(weight)
      const list = [...weights]
      if (list.length === 0) return Effect.void
      return Effect.flatMap(k.castAll(list, dtype), (made) => {
        list.forEach((weight, i) => copies.set(weight, made[i] as Tensor))
        return adopt(copies.scope, made)
      })
    }, { discard: true })
  )

/**
 * Runs `effect` with one cast per weight and dtype: the copies belong to the enclosing Scope (a step's
 * backward reads them after the region). The weights must not change inside the region (the copies would
 * go stale), so a training step's region ends before its update. With a `planKey` (an object that lives as
 * long as the weights, such as a training state's parameters), the weights one region casts are cast all at
 * once at the start of the key's next region.
 */
export const withWeightCopies = <A, E, R>(effect: Effect.Effect<A, E, R>, planKey?: object): Effect.Effect<A, E | KernelError, R | Kernels | Scope.Scope> =>
  Effect.flatMap(Scope.Scope, (scope) => {
    let plan: Map<DType, Set<Tensor>> | undefined
    if (planKey !== undefined) {
      plan = plans.get(planKey) ?? new Map<DType, Set<Tensor>>()
      plans.set(planKey, plan)
    }
    const copies = new WeightCopies(scope, plan)
    return Effect.zipRight(precast(copies), Effect.locally(effect, CurrentWeightCopies, copies))
  })

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
 * The plan key for a model's regions on `params`: the parameters themselves where the model reads weight
 * copies (bf16-mixed), none where it reads the masters (f32: nothing to cast ahead).
 */
export const copyPlanKey = (model: { readonly precision: Precision }, params: object): object | undefined =>
  model.precision === "f32" ? undefined : params

/**
 * A master weight as `dtype` for a linear layer: the weight itself when it already is; inside
 * withWeightCopies the region's shared copy; elsewhere a fresh cast, recorded on the tape.
 */
export const castWeight = (weight: Tensor, dtype: DType): F.Op =>
  weight.dtype === dtype
    ? Effect.succeed(weight)
    : FiberRef.getWith(CurrentWeightCopies, (copies) => (copies === undefined ? F.cast(weight, dtype) : sharedCopy(copies, weight, dtype)))

/**
 * A layer's weights (its weight and optional bias) as `dtype`, as castWeight gives each. Inside a region whose
 * copies are made (every pass after a region's first, and every pass of a planned region) this takes one
 * runtime step and enqueues nothing: a DiT-S training step reads about 470 layers' weights this way.
 */
export const castWeights = (weights: ReadonlyArray<Tensor | undefined>, dtype: DType): F.Op<ReadonlyArray<Tensor | undefined>> =>
  Effect.withFiberRuntime((fiber) => {
    const copies = fiber.getFiberRef(CurrentWeightCopies)
    const tape = fiber.getFiberRef(CurrentTape)
    const enabled = fiber.getFiberRef(GradEnabled)
    const cast: Array<Tensor | undefined> = []
    for (const weight of weights) {
      if (weight === undefined || weight.dtype === dtype) {
        cast.push(weight)
        continue
      }
      const copy = copies?.get(weight, dtype)
      // A weight not copied yet takes the Effect path, for all (recording a copy twice is a no-op).
      if (copy === undefined) return Effect.forEach(weights, (w) => (w === undefined ? Effect.succeed(undefined) : castWeight(w, dtype)))
      // recordOnce's node, built only when the tape has none for this copy yet (a hit is allocation-free).
      if (tape !== undefined && enabled && !tape.requiresGrad(copy)) tape.note("cast", { inputs: [weight], saved: {}, attrs: {} }, copy)
      cast.push(copy)
    }
    return Effect.succeed(cast)
  })
