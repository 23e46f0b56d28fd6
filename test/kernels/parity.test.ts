import { it } from "@effect/vitest"
import { Effect, FastCheck } from "effect"
import { afterAll, describe, expect } from "vitest"
import { tensorOpNames } from "../../src/kernels/ops.ts"
import { makeBackends, runOn } from "../helpers/backends.ts"
import { expectClose } from "../helpers/compare.ts"
import { F32, opCases as cases, readOutputs } from "../helpers/opCases.ts"

/** Every op of the contract on the native CPU backend against the Reference (float64 accumulation). */
describe("native CPU kernels match the Reference", () => {
  const backends = makeBackends()
  afterAll(() => backends.dispose())

  it("has a parity case for every op of the contract", () => {
    expect(Object.keys(cases).sort()).toEqual([...tensorOpNames].sort())
  })

  for (const name of tensorOpNames) {
    const c = cases[name]
    it.effect.prop(
      name,
      [FastCheck.integer({ min: 0, max: 2 ** 31 - 1 })],
      ([seed]) =>
        Effect.promise(async () => {
          const expected = await runOn(backends.reference, readOutputs(c, seed))
          const actual = await runOn(backends.native, readOutputs(c, seed))
          expect(actual.length).toBe(expected.length)
          actual.forEach((out, i) => {
            const ref = expected[i]!
            expect(out.shape, `${name} output ${i} shape`).toEqual(ref.shape)
            expect(out.dtype).toBe(ref.dtype)
            expectClose(out.data, ref.data, c.tol ?? F32, `${name} output ${i}`)
          })
        }),
      { fastCheck: { numRuns: 25 } }
    )
  }
})
