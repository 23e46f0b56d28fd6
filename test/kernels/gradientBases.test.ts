import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import type { KernelsService } from "../../src/kernels/Kernels.ts"
import { makeBackends, runOn } from "../helpers/backends.ts"

/**
 * A gradient's base (ops.ts GradientBases) is checked like any other input, with the same typed error
 * naming it on the native CPU backend and on the Reference. That the sums are right is parity.test.ts's
 * business (its cases add to bases half the time).
 */
describe("gradient bases given to backward kernels", () => {
  const backends = makeBackends()
  afterAll(() => backends.dispose())
  const on: ReadonlyArray<[string, KernelsService]> = [
    ["native", backends.native],
    ["reference", backends.reference]
  ]

  const failureOf = <A, E extends { _tag: string; reason: string }, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.map(Effect.flip(effect), (e) => ({ tag: e._tag, reason: e.reason }))

  for (const [name, kernels] of on)
    it(`are refused with an error naming them when wrong (${name})`, async () => {
      const failures = await runOn(
        kernels,
        Effect.gen(function* () {
          const k = kernels
          const x = yield* k.zeros([2, 3, 4])
          const w = yield* k.zeros([5, 4])
          const dy = yield* k.zeros([2, 3, 5])
          const scale = yield* k.zeros([2, 4])
          const stats = yield* k.zeros([2, 3])
          const gone = yield* k.zeros([2, 3, 4])
          gone.release()
          const asked = { dx: true, dweight: true, dbias: false }
          return [
            yield* failureOf(k.linearBackward(dy, x, w, { ...asked, addTo: { dweight: yield* k.zeros([4, 5]) } })),
            yield* failureOf(k.linearBackward(dy, x, w, { ...asked, addTo: { dbias: yield* k.zeros([5]) } })),
            yield* failureOf(k.linearBackward(dy, x, w, { ...asked, addTo: { dx: yield* k.zeros([2, 3, 4], "i32") } })),
            yield* failureOf(k.layerNormModulateBackward(x, x, { mean: stats, rstd: stats }, scale, { dx: yield* k.zeros([2, 4]) })),
            yield* failureOf(k.layerNormBackward(x, x, { mean: stats, rstd: stats }, { withBias: false, addTo: { dx: gone } }))
          ]
        })
      )
      expect(failures[0]).toMatchObject({ tag: "ShapeError", reason: expect.stringMatching(/addTo\.dweight must have shape \[5, 4\], got \[4, 5\]/) })
      expect(failures[1]).toMatchObject({ tag: "InvalidArgumentError", reason: "addTo.dbias is given but dbias is not asked for" })
      expect(failures[2]).toMatchObject({ tag: "DTypeError", reason: expect.stringMatching(/addTo\.dx must be f32, got i32/) })
      expect(failures[3]).toMatchObject({ tag: "ShapeError", reason: expect.stringMatching(/addTo\.dx must have shape \[2, 3, 4\]/) })
      expect(failures[4]).toMatchObject({ tag: "DisposedTensorError", reason: expect.stringMatching(/addTo\.dx/) })
    })
})
