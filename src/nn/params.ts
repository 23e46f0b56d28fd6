import { Effect, type Scope } from "effect"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import { type Shape, formatShape, numelOf } from "../tensor/dtype.ts"
import type { Tensor } from "../tensor/Tensor.ts"

/** How a parameter starts. */
export type Init =
  | { readonly kind: "zeros" }
  | { readonly kind: "ones" }
  | { readonly kind: "normal"; readonly std: number }
  /** U(-a, a) with a = sqrt(6 / (fanIn + fanOut)), the weight's [out, in] dims (PyTorch's xavier_uniform_). */
  | { readonly kind: "xavierUniform" }

export interface ParamSpec {
  readonly name: string
  readonly shape: Shape
  readonly init: Init
}

/**
 * A model's trainable tensors by name, in a fixed order (the spec order), so optimizer moments, the EMA
 * copy and checkpoints line up entry by entry.
 */
export class ParamSet {
  readonly #byName: ReadonlyMap<string, Tensor>

  constructor(readonly names: ReadonlyArray<string>, readonly tensors: ReadonlyArray<Tensor>) {
    this.#byName = new Map(names.map((name, i) => [name, tensors[i] as Tensor]))
  }

  get(name: string): Tensor {
    const tensor = this.#byName.get(name)
    if (tensor === undefined) throw new Error(`no parameter named ${name}`)
    return tensor
  }

  has(name: string): boolean {
    return this.#byName.has(name)
  }

  get count(): number {
    return this.tensors.reduce((n, t) => n + t.numel, 0)
  }
}

const initialValues = (k: Kernels["Type"], spec: ParamSpec, seed: number, index: number) => {
  // Each parameter draws from its own Philox block range, so adding a parameter never reshuffles others.
  const stream = { seed, offset: index * 2 ** 32 }
  switch (spec.init.kind) {
    case "zeros":
      return k.zeros(spec.shape)
    case "ones":
      return k.full(spec.shape, 1)
    case "normal": {
      const std = spec.init.std
      return Effect.flatMap(k.randomNormal(spec.shape, stream), (z) => k.scale(z, std))
    }
    case "xavierUniform": {
      const [fanOut, fanIn] = spec.shape.length === 2 ? (spec.shape as [number, number]) : [numelOf(spec.shape), 1]
      const bound = Math.sqrt(6 / (fanIn + fanOut))
      return Effect.flatMap(k.randomUniform(spec.shape, stream), (u) => k.affine(u, 2 * bound, -bound))
    }
  }
}

/** Allocates and initialises parameters (marked requiresGrad) in the current Scope, deterministically from `seed`. */
export const initializeParams = (
  specs: ReadonlyArray<ParamSpec>,
  seed: number
): Effect.Effect<ParamSet, KernelError, Kernels | Scope.Scope> =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const tensors = yield* Effect.forEach(specs, (spec, i) =>
      Effect.map(initialValues(k, spec, seed, i), (t) => {
        t.name = spec.name
        t.requiresGrad = true
        return t
      })
    )
    return new ParamSet(specs.map((s) => s.name), tensors)
  })

/** A same-shaped set (zeros unless `from` is given, then a copy), not trainable: EMA weights, Adam moments. */
export const shadowParams = (
  params: ParamSet,
  prefix: string,
  from?: ParamSet
): Effect.Effect<ParamSet, KernelError, Kernels | Scope.Scope> =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const tensors = yield* Effect.forEach(params.tensors, (p, i) =>
      Effect.map(from === undefined ? k.zeros(p.shape) : k.copy(from.tensors[i] as Tensor), (t) => {
        t.name = `${prefix}${params.names[i]}`
        return t
      })
    )
    return new ParamSet(params.names, tensors)
  })

/** Checks a loaded set against the model's specs (names and shapes), naming the first mismatch. */
export const describeMismatch = (specs: ReadonlyArray<ParamSpec>, names: ReadonlyArray<string>, shapes: ReadonlyArray<Shape>): string | undefined => {
  if (names.length !== specs.length) return `expected ${specs.length} parameters, found ${names.length}`
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i] as ParamSpec
    if (names[i] !== spec.name) return `parameter ${i} is ${names[i]}, expected ${spec.name}`
    const shape = shapes[i] as Shape
    if (formatShape(shape) !== formatShape(spec.shape))
      return `parameter ${spec.name} has shape ${formatShape(shape)}, expected ${formatShape(spec.shape)}`
  }
  return undefined
}
