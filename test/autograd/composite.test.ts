import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { backward } from "../../src/autograd/backward.ts"
import { gradcheck } from "../../src/autograd/gradcheck.ts"
import { noGrad, withTape } from "../../src/autograd/tape.ts"
import * as F from "../../src/autograd/functional.ts"
import { Kernels } from "../../src/kernels/Kernels.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"
import { makeBackends, runOn } from "../helpers/backends.ts"
import { expectClose } from "../helpers/compare.ts"
import { blockInputs, blockLoss } from "../helpers/composite.ts"
import { Gen } from "../helpers/gen.ts"

describe("autograd through a transformer block (MLP + masked attention + adaLN)", () => {
  const backends = makeBackends()
  afterAll(() => backends.dispose())

  it("matches finite differences in float64", async () => {
    const result = await runOn(backends.reference64, gradcheck(blockLoss, blockInputs(new Gen(3))))
    expect(result.checked).toBe(2 * 3 * 4 * 2 + 2 * 4 * 3 + 4 * 4 * 4 + 4 + 6 * 4 + 6 + 4 * 6 + 4)
    expect(result.maxRelError).toBeLessThan(1e-6)
  })

  /** The loss and every parameter gradient, computed on one backend. */
  const gradientsOn = (inputs: ReturnType<typeof blockInputs>) =>
    Effect.gen(function* () {
      const k = yield* Kernels
      const xs = yield* Effect.forEach(inputs, (input) =>
        Effect.map(k.fromArray(input.data, input.shape, input.dtype ?? "f32"), (t) => {
          t.requiresGrad = (input.dtype ?? "f32") === "f32"
          return t
        })
      )
      const [loss, tape] = yield* withTape(blockLoss(xs))
      const grads = yield* backward(loss, tape)
      const lossValue = yield* k.readNumber(loss)
      const gradValues = yield* Effect.forEach(xs.slice(0, -1), (x) => Effect.map(k.read(grads.get(x) as Tensor), (d) => Array.from(d)))
      return { lossValue, gradValues }
    })

  it("gives the same gradients on the native CPU backend as on the Reference", async () => {
    const inputs = blockInputs(new Gen(11))
    const reference = await runOn(backends.reference, gradientsOn(inputs))
    const native = await runOn(backends.native, gradientsOn(inputs))
    expect(native.lossValue).toBeCloseTo(reference.lossValue, 5)
    native.gradValues.forEach((g, i) => expectClose(g, reference.gradValues[i]!, { atol: 1e-5, rtol: 1e-4 }, `input ${i}`))
  })

  it("records nothing under noGrad and stops gradients at stopGradient", async () => {
    const counts = await runOn(
      backends.reference,
      Effect.gen(function* () {
        const k = yield* Kernels
        const w = yield* k.fromArray([1, 2, 3], [3])
        w.requiresGrad = true
        const [, tapeNoGrad] = yield* withTape(noGrad(F.mul(w, w)))
        const [loss, tape] = yield* withTape(Effect.flatMap(F.stopGradient(w), (frozen) => Effect.flatMap(F.mul(w, frozen), F.sum)))
        const grads = yield* backward(loss, tape)
        return { noGradNodes: tapeNoGrad.nodes.length, grad: Array.from(yield* k.read(grads.get(w) as Tensor)) }
      })
    )
    expect(counts.noGradNodes).toBe(0)
    // d/dw sum(w * sg(w)) = sg(w), not 2w.
    expect(counts.grad).toEqual([1, 2, 3])
  })

  it("accumulates the gradient of a tensor used twice", async () => {
    const grad = await runOn(
      backends.native,
      Effect.gen(function* () {
        const k = yield* Kernels
        const w = yield* k.fromArray([1, -2], [2])
        w.requiresGrad = true
        const [loss, tape] = yield* withTape(Effect.flatMap(F.mul(w, w), (sq) => Effect.flatMap(F.add(sq, w), F.sum)))
        const grads = yield* backward(loss, tape)
        return Array.from(yield* k.read(grads.get(w) as Tensor))
      })
    )
    expect(grad).toEqual([3, -3])
  })
})
