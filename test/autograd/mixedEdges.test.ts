import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import { backward } from "../../src/autograd/backward.ts"
import * as F from "../../src/autograd/functional.ts"
import { withTape } from "../../src/autograd/tape.ts"
import { Kernels } from "../../src/kernels/Kernels.ts"
import { roundToBf16 } from "../../src/kernels/reference/bf16.ts"
import { Reference } from "../../src/testing.ts"
import type { DType, Shape } from "../../src/tensor/dtype.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"
import { Gen } from "../helpers/gen.ts"

/** The backward of a bf16 branch joining an f32 stream in `add` (b bf16 beside an f32 a), as mixed precision uses it. */
const emulatingBf16 = Reference({ precision: "f32", storesBf16: true })

const leaf = (g: Gen, shape: Shape, dtype: DType) =>
  Effect.flatMap(Kernels, (k) =>
    Effect.map(k.fromArray(g.normals(shape.reduce((a, b) => a * b, 1)), shape, dtype), (t) => {
      t.requiresGrad = true
      return t
    })
  )

describe("add with a bf16 b beside an f32 a", () => {
  for (const [name, bShape] of [["a branch of a's shape", [2, 3, 4]], ["a trailing suffix (a bias)", [4]]] as const)
    it.scoped(`gives a the f32 gradient and b its gradient in bf16, summed to b's shape: ${name}`, () =>
      Effect.gen(function* () {
        const k = yield* Kernels
        const g = new Gen(9)
        const a = yield* leaf(g, [2, 3, 4], "f32")
        const b = yield* leaf(g, bShape, "bf16")
        const weights = yield* k.fromArray(g.normals(24), [2, 3, 4])
        // loss = sum(w * (a + b)): d/da = w, d/db = w summed over the rows b was repeated along.
        const [loss, tape] = yield* withTape(Effect.flatMap(F.add(a, b), (sum) => Effect.flatMap(F.mul(sum, weights), (y) => F.sum(y))))
        const grads = yield* backward(loss, tape)
        const [da, db] = [grads.get(a) as Tensor, grads.get(b) as Tensor]
        expect([da.dtype, db.dtype]).toEqual(["f32", "bf16"])
        expect([da.shape, db.shape]).toEqual([[2, 3, 4], bShape])
        const w = Array.from(yield* k.read(weights))
        expect(Array.from(yield* k.read(da))).toEqual(w)
        const n = bShape.reduce((x, y) => x * y, 1)
        const summed = Array.from({ length: n }, (_, j) => w.filter((_, i) => i % n === j).reduce((s, v) => s + v, 0))
        const dbValues = Array.from(yield* k.read(db))
        dbValues.forEach((v, j) => expect(v, `db[${j}]`).toBe(roundToBf16(summed[j] as number)))
      }).pipe(Effect.provide(emulatingBf16))
    )
})
