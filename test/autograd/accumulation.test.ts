import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import { backward } from "../../src/autograd/backward.ts"
import * as F from "../../src/autograd/functional.ts"
import { withTape } from "../../src/autograd/tape.ts"
import { Kernels } from "../../src/kernels/Kernels.ts"
import { KernelTrace, Recording, Reference } from "../../src/testing.ts"
import type { Shape } from "../../src/tensor/dtype.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"
import { Gen } from "../helpers/gen.ts"

/**
 * How the backward pass sums the gradients of a tensor used more than once: linear's and LayerNorm's
 * kernels add their gradient to the sum so far (ops.ts GradientBases), other ops' gradients take an `add`,
 * and a part is released once it is added. Whether the sums are right is gradcheck.test.ts's business.
 */
const reference = Reference({ precision: "f32" })

const parameter = (g: Gen, shape: Shape) =>
  Effect.flatMap(Kernels, (k) =>
    Effect.map(k.fromArray(g.normals(shape.reduce((a, b) => a * b, 1)), shape), (t) => {
      t.requiresGrad = true
      return t
    })
  )

describe("gradient accumulation in the backward pass", () => {
  it.scoped("is done by linear's and LayerNorm's kernels, not by adds: an attention-like block", () =>
    Effect.gen(function* () {
      const g = new Gen(5)
      const x = yield* parameter(g, [2, 3, 4])
      const [wq, wk, wv] = [yield* parameter(g, [4, 4]), yield* parameter(g, [4, 4]), yield* parameter(g, [4, 4])]
      const [shift, scale, gate] = [yield* parameter(g, [2, 4]), yield* parameter(g, [2, 4]), yield* parameter(g, [2, 4])]
      const [loss, tape] = yield* withTape(
        Effect.gen(function* () {
          // x feeds adaLN and the residual; h feeds three projections; wq serves two of them.
          const h = yield* F.layerNormModulate(x, shift, scale, 1e-6)
          const q = yield* F.linear(h, wq)
          const k = yield* F.linear(h, wk)
          const v = yield* F.linear(h, wv)
          const q2 = yield* F.linear(q, wq)
          const mixed = yield* F.add(yield* F.mul(q2, k), v)
          return yield* F.sum(yield* F.gatedResidual(x, gate, mixed))
        })
      )
      const trace = yield* KernelTrace
      trace.clear()
      const grads = yield* backward(loss, tape)
      const ops = trace.entries().map((e) => e.op)
      // h's three uses and wq's two meet in linearBackward; x's two in layerNormModulateBackward.
      expect(ops.filter((op) => op === "linearBackward")).toHaveLength(4)
      expect(ops).toContain("layerNormModulateBackward")
      expect(ops).not.toContain("add")
      expect([x, wq, wk, wv, shift, scale, gate].every((p) => grads.has(p))).toBe(true)
    }).pipe(Effect.provide(Recording.layer(reference)))
  )

  it.scoped("keeps one add for ops without a base, and releases the added part at once", () =>
    Effect.gen(function* () {
      const k = yield* Kernels
      // x times n constants, summed: x's n gradients from mul meet in n - 1 adds.
      const liveAfterBackward = (n: number) =>
        Effect.scoped(
          Effect.gen(function* () {
            const g = new Gen(n)
            const x = yield* parameter(g, [64])
            const constants = yield* Effect.forEach(Array.from({ length: n }), () => k.fromArray(g.normals(64), [64]))
            const [loss, tape] = yield* withTape(
              Effect.gen(function* () {
                let total: Tensor = yield* F.mul(x, constants[0] as Tensor)
                for (const c of constants.slice(1)) total = yield* F.add(total, yield* F.mul(x, c))
                return yield* F.sum(total)
              })
            )
            const before = (yield* k.stats()).liveTensors
            const trace = yield* KernelTrace
            trace.clear()
            yield* backward(loss, tape)
            const adds = trace.entries().filter((e) => e.op === "add").length
            return { adds, liveAdded: (yield* k.stats()).liveTensors - before }
          })
        )
      const two = yield* liveAfterBackward(2)
      const six = yield* liveAfterBackward(6)
      expect([two.adds, six.adds]).toEqual([1, 5])
      // Spent parts are released during the pass: what it leaves alive does not grow with the uses.
      expect(six.liveAdded).toBe(two.liveAdded)
    }).pipe(Effect.provide(Recording.layer(reference)))
  )
})
