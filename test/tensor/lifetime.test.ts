import { Effect, Scope } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { backward } from "../../src/autograd/backward.ts"
import { withTape } from "../../src/autograd/tape.ts"
import { Kernels, type KernelsService } from "../../src/kernels/Kernels.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"
import { keepIn } from "../../src/tensor/lifetime.ts"
import { makeBackends } from "../helpers/backends.ts"
import { blockInputs, blockLoss } from "../helpers/composite.ts"
import { Gen } from "../helpers/gen.ts"

const STEPS = 1000

/** A training loop over the composite block: parameters live in the run's scope, activations in each step's. */
const trainingRun = Effect.gen(function* () {
  const k = yield* Kernels
  const inputs = yield* Effect.forEach(blockInputs(new Gen(5)), (input) => k.fromArray(input.data, input.shape, input.dtype ?? "f32"))
  const params = inputs.slice(2, -1)
  for (const p of params) p.requiresGrad = true
  const m = yield* Effect.forEach(params, (p) => k.zeros(p.shape))
  const v = yield* Effect.forEach(params, (p) => k.zeros(p.shape))
  const persistent = (yield* k.stats()).liveTensors
  let allocsAfterWarmup = 0
  for (let step = 1; step <= STEPS; step++) {
    yield* Effect.scoped(
      Effect.gen(function* () {
        const [loss, tape] = yield* withTape(blockLoss(inputs))
        const grads = yield* backward(loss, tape)
        yield* k.adamw({ params, grads: params.map((p) => grads.get(p) as Tensor), m, v }, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, step })
      })
    )
    if (step === 10) allocsAfterWarmup = (yield* k.stats()).systemAllocs
  }
  yield* k.sync()
  const after = yield* k.stats()
  return { persistent, liveAfterSteps: after.liveTensors, allocsAfterWarmup, allocsAtEnd: after.systemAllocs }
})

const check = async (kernels: KernelsService) => {
  const result = await Effect.runPromise(Effect.provideService(Effect.scoped(trainingRun), Kernels, kernels))
  const afterRun = await Effect.runPromise(kernels.stats())
  return { ...result, liveAfterRun: afterRun.liveTensors, bytesAfterRun: afterRun.liveBytes }
}

describe("scoped lifetimes", () => {
  const backends = makeBackends()
  afterAll(() => backends.dispose())

  for (const name of ["native", "reference"] as const) {
    it(`${STEPS} scoped training steps on ${name} leave no live tensors`, async () => {
      const r = await check(backends[name])
      expect(r.persistent).toBeGreaterThan(0)
      expect(r.liveAfterSteps).toBe(r.persistent)
      expect(r.liveAfterRun).toBe(0)
      expect(r.bytesAfterRun).toBe(0)
      if (name === "native") expect(r.allocsAtEnd).toBe(r.allocsAfterWarmup)
    })
  }

  it("keepIn moves a tensor out of an inner scope", async () => {
    const kernels = backends.native
    const live = await Effect.runPromise(
      Effect.provideService(
        Effect.scoped(
          Effect.gen(function* () {
            const k = yield* Kernels
            const outer = yield* Scope.Scope
            const kept = yield* Effect.scoped(Effect.flatMap(k.full([4], 2), (t) => keepIn(outer, t)))
            const value = yield* k.read(kept)
            return { value: Array.from(value), released: kept.released, live: (yield* k.stats()).liveTensors }
          })
        ),
        Kernels,
        kernels
      )
    )
    expect(live).toEqual({ value: [2, 2, 2, 2], released: false, live: 1 })
    expect((await Effect.runPromise(kernels.stats())).liveTensors).toBe(0)
  })
})
