import { afterAll, describe, expect, it } from "vitest"
import type { Shape } from "../../src/tensor/dtype.ts"
import { fusedVersusSplit } from "../helpers/adamwEma.ts"
import { makeBackends, runOn } from "../helpers/backends.ts"
import { Gen } from "../helpers/gen.ts"

/**
 * The fused AdamW + EMA op against the two ops it fuses: the same bits, over random tensor lists (sizes that
 * are not multiples of 4, empty tensors, tensors larger than one parallel chunk of the thread pool) and three
 * consecutive steps. Parity with the Reference is in parity.test.ts; CUDA's version is in test/gpu/ops.test.ts.
 */
describe("adamwEma equals adamw followed by emaUpdate, bit for bit", () => {
  const backends = makeBackends()
  afterAll(() => backends.dispose())

  // One tensor of more than 2^15 elements (split across the pool's chunks) in every fourth list.
  const shapesFor = (g: Gen, seed: number): Array<Shape> => [
    ...Array.from({ length: g.int(1, 10) }, () =>
      g.pick<() => Shape>([() => [g.int(1, 9)], () => [g.int(1, 40), g.int(1, 33)], () => [0, 3]])()
    ),
    ...(seed % 4 === 0 ? [[g.int(130, 200), 257]] : [])
  ]

  it("on the native CPU backend (20 random lists, 3 steps each)", async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const g = new Gen(seed)
      expect(await runOn(backends.native, fusedVersusSplit(g, shapesFor(g, seed))), `seed ${seed}`).toEqual([])
    }
  })

  it("on the Reference (f32 storage)", async () => {
    for (let seed = 1; seed <= 5; seed++) {
      const g = new Gen(seed)
      expect(await runOn(backends.reference, fusedVersusSplit(g, shapesFor(g, seed))), `seed ${seed}`).toEqual([])
    }
  })
})
