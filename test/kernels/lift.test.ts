import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import * as F from "../../src/autograd/functional.ts"
import { withTape } from "../../src/autograd/tape.ts"
import { Kernels, type KernelsService } from "../../src/kernels/Kernels.ts"
import { liftBackend } from "../../src/kernels/lift.ts"
import { ReferenceBackend } from "../../src/kernels/reference/ReferenceBackend.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"

/** A lifted reference backend whose `add` counts the calls that reach it. */
const countingKernels = () => {
  const backend = new ReferenceBackend({ precision: "f32" })
  const add = backend.add.bind(backend)
  const counter = { adds: 0 }
  backend.add = (a, b) => {
    counter.adds++
    return add(a, b)
  }
  return { kernels: liftBackend(backend), counter }
}

describe("autograd's ops on a backend liftBackend made (callNow)", () => {
  it.effect("run the kernel once, record the node, and leave the output to the op's scope", () => {
    const { kernels, counter } = countingKernels()
    return Effect.gen(function* () {
      const k = yield* Kernels
      let sum: Tensor | undefined
      yield* Effect.scoped(
        Effect.gen(function* () {
          const a = yield* k.fromArray([1, 2], [2])
          a.requiresGrad = true
          const b = yield* k.fromArray([10, 20], [2])
          // The scope owns tensors already: the synchronous path.
          const [y, tape] = yield* withTape(F.add(a, b))
          sum = y
          expect(Array.from(yield* k.read(y))).toEqual([11, 22])
          expect(tape.nodes.map((node) => node.op)).toEqual(["add"])
          expect(counter.adds).toBe(1)
        })
      )
      expect(sum?.released).toBe(true)
    }).pipe(Effect.provideService(Kernels, kernels))
  })

  it.effect("run a scope's first op through the lifted op (the scope's finalizer), the kernel once", () => {
    const { kernels, counter } = countingKernels()
    return Effect.gen(function* () {
      const k = yield* Kernels
      const a = yield* k.fromArray([1, 2], [2])
      const sum = yield* Effect.scoped(
        Effect.gen(function* () {
          const y = yield* F.add(a, a)
          expect(counter.adds).toBe(1)
          expect(y.released).toBe(false)
          return y
        })
      )
      // The inner scope owned the sum and released it when it closed.
      expect(sum.released).toBe(true)
      expect(a.released).toBe(false)
    }).pipe(Effect.scoped, Effect.provideService(Kernels, kernels))
  })

  it.effect("fail with the op's typed error on either path", () => {
    const { kernels } = countingKernels()
    return Effect.gen(function* () {
      const k = yield* Kernels
      const a = yield* k.fromArray([1, 2], [2])
      const dead = yield* k.fromArray([1, 2], [2])
      dead.release()
      const direct = yield* Effect.flip(F.add(a, dead))
      const lifted = yield* Effect.flip(Effect.scoped(F.add(a, dead)))
      for (const error of [direct, lifted]) {
        expect(error._tag).toBe("DisposedTensorError")
        expect(error.message).toMatch(/^add: .*released/)
      }
    }).pipe(Effect.scoped, Effect.provideService(Kernels, kernels))
  })

  it.effect("call the ops of a service wrapping a lifted one as the wrapper's own", () => {
    const { kernels, counter } = countingKernels()
    const stubbed: KernelsService = { ...kernels, add: (a) => Effect.succeed(a) }
    return Effect.gen(function* () {
      const k = yield* Kernels
      const a = yield* k.fromArray([1, 2], [2])
      const b = yield* k.fromArray([10, 20], [2])
      const y = yield* F.add(a, b)
      expect(y).toBe(a)
      expect(counter.adds).toBe(0)
    }).pipe(Effect.scoped, Effect.provideService(Kernels, stubbed))
  })
})
