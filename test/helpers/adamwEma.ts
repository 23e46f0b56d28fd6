import { Effect } from "effect"
import { Kernels } from "../../src/kernels/Kernels.ts"
import type { AdamWHyper } from "../../src/kernels/ops.ts"
import type { Shape } from "../../src/tensor/dtype.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"
import type { Gen } from "./gen.ts"

// Index of the first element whose bits differ (NaNs included), or -1.
const firstDifference = (a: Float32Array | Float64Array | Int32Array, b: Float32Array | Float64Array | Int32Array) => {
  if (a.constructor !== b.constructor || a.length !== b.length) return 0
  if (a instanceof Float64Array) return a.findIndex((x, i) => !Object.is(x, b[i]))
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length)
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length)
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i
  return -1
}

/**
 * Runs `adamwEma` on one copy of random optimizer state over `shapes` and `adamw` then `emaUpdate` on another,
 * for three consecutive steps with random hyper-parameters, and returns where their params, m, v and ema
 * differ in any bit (empty when they are identical). Shared by test/kernels/adamwEma.test.ts (CPU, Reference)
 * and test/gpu/ops.test.ts (CUDA).
 */
export const fusedVersusSplit = (g: Gen, shapes: ReadonlyArray<Shape>) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const host = (shape: Shape, scale: number, lo?: number) => {
      const n = shape.reduce((a, b) => a * b, 1)
      return lo === undefined ? g.normals(n, scale) : g.uniforms(n, lo, lo + scale)
    }
    const data = shapes.map((s) => ({ p: host(s, 1), g: host(s, 1), m: host(s, 0.1), v: host(s, 0.01, 0), e: host(s, 1), s }))
    const upload = (pick: (d: (typeof data)[number]) => Array<number>) => Effect.forEach(data, (d) => k.fromArray(pick(d), d.s))
    const state = Effect.gen(function* () {
      return { params: yield* upload((d) => d.p), grads: yield* upload((d) => d.g), m: yield* upload((d) => d.m), v: yield* upload((d) => d.v), ema: yield* upload((d) => d.e) }
    })
    const fused = yield* state
    const split = yield* state
    const base: Omit<AdamWHyper, "step"> = { lr: g.uniform() * 1e-2, beta1: 0.9, beta2: g.pick([0.95, 0.999]), eps: 1e-8, weightDecay: g.pick([0, 0.01]) }
    const decay = g.pick([0.9, 0.999, 0, 1])
    const first = g.int(1, 50)
    for (let step = first; step < first + 3; step++) {
      yield* k.adamwEma(fused, { ...base, step }, decay)
      yield* k.adamw(split, { ...base, step })
      yield* k.emaUpdate(split.ema, split.params, decay)
    }
    const read = (ts: ReadonlyArray<Tensor>) => Effect.forEach(ts, (t) => k.read(t))
    const mismatches: Array<string> = []
    for (const key of ["params", "m", "v", "ema"] as const) {
      const a = yield* read(fused[key])
      const b = yield* read(split[key])
      a.forEach((x, i) => {
        const y = b[i]!
        const at = firstDifference(x, y)
        if (at >= 0) mismatches.push(`${key}[${i}] of shape [${shapes[i]}] differs at ${at}: ${x[at]} vs ${y[at]}`)
      })
    }
    return mismatches
  })
