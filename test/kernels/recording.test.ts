import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import * as F from "../../src/autograd/functional.ts"
import { noGrad, withTape } from "../../src/autograd/tape.ts"
import { Kernels } from "../../src/kernels/Kernels.ts"
import { Mock, Recording, Reference, KernelTrace } from "../../src/testing.ts"

describe("the Recording layer", () => {
  it.scoped("keeps every op with shapes, tensor names, scalars and grad mode", () =>
    Effect.gen(function* () {
      const k = yield* Kernels
      const trace = yield* KernelTrace
      const w = yield* k.fromArray([1, 2, 3, 4, 5, 6], [2, 3])
      w.name = "weight"
      w.requiresGrad = true
      const x = yield* k.fromArray([1, 0, -1], [1, 3])
      trace.clear()
      yield* withTape(F.linear(x, w))
      yield* noGrad(Effect.flatMap(k.scale(w, 0.5), (y) => k.gelu(y)))
      const entries = trace.entries()
      expect(entries.map((e) => e.op)).toEqual(["linear", "scale", "gelu"])
      expect(entries[0]).toMatchObject({
        inputs: [{ shape: [1, 3], dtype: "f32" }, { shape: [2, 3], name: "weight" }],
        outputs: [{ shape: [1, 2] }],
        gradEnabled: true
      })
      expect(entries[1]).toMatchObject({ attrs: { arg1: 0.5 }, gradEnabled: false })
      expect(entries[2]?.gradEnabled).toBe(false)
    }).pipe(Effect.provide(Recording.layer(Reference())))
  )
})

describe("the Mock layer", () => {
  it.scoped("serves stubbed ops and fails loudly on the rest", () =>
    Effect.gen(function* () {
      const k = yield* Kernels
      const stubbed = yield* Effect.exit(k.sync())
      expect(stubbed._tag).toBe("Success")
      const error = yield* Effect.flip(k.gelu(undefined as never))
      expect(error._tag).toBe("UnstubbedOpError")
      expect(error.message).toMatch(/^gelu: /)
    }).pipe(Effect.provide(Mock.layer({ sync: () => Effect.void })))
  )
})
