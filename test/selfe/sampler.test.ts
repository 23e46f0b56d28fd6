import { it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { describe, expect } from "vitest"
import { Kernels } from "../../src/kernels/Kernels.ts"
import type { ModelInputs } from "../../src/model/inputs.ts"
import type { Model } from "../../src/model/model.ts"
import { ParamSet } from "../../src/nn/params.ts"
import { modelSpecFor } from "../../src/pipeline/train.ts"
import { SamplerConfig } from "../../src/selfe/config.ts"
import { streamFor } from "../../src/selfe/random.ts"
import { landingTimes, sample, timeGrid } from "../../src/selfe/sampler.ts"
import { Reference } from "../../src/testing.ts"
import { tinyConfig } from "../helpers/tinyRun.ts"

const spec = modelSpecFor(tinyConfig())
const rows = 3

/** A stand-in network with a known velocity: V(x, t, s) = 0.5 x + (t - s), recording the (t, s) it is asked. */
const calls: Array<{ t: number; gap: number }> = []
const linearModel = (positions: Model["positions"]): Model => ({
  spec,
  precision: "f32",
  paramSpecs: [],
  positions,
  velocity: (_params, inputs: ModelInputs) =>
    Effect.gen(function* () {
      const k = yield* Kernels
      const t = (yield* k.read(inputs.t))[0] as number
      const gap = (yield* k.read(inputs.gap))[0] as number
      calls.push({ t, gap })
      return yield* k.affine(inputs.x, 0.5, gap)
    })
})

const run = (overrides: Record<string, unknown>) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const config = Schema.decodeUnknownSync(SamplerConfig)({ guidance: "none", eta: 0, ...overrides })
    const model = linearModel(yield* k.zeros([1]))
    const prompts = { tokens: new Int32Array(rows * spec.maxTokens), mask: new Int32Array(rows * spec.maxTokens), nullRows: [] }
    calls.length = 0
    const out = Array.from(yield* k.read(yield* sample(model, new ParamSet([], []), prompts, config)))
    const start = Array.from(yield* k.read(yield* k.randomNormal([rows, 3, spec.resolution, spec.resolution], streamFor(config.seed, 0, "sample"))))
    return { out, start, config, calls: [...calls] }
  })

describe("the any-step sampler", () => {
  it("walks the grid 1 = t_1 > ... > t_{N+1} = 0 and lands on s_k = t_{k+1} (Self-E) or s_k = t_k (flow matching)", () => {
    expect(timeGrid(4, 0)).toEqual([1, 0.75, 0.5, 0.25, 0])
    const selfE = Schema.decodeUnknownSync(SamplerConfig)({ steps: 4, landing: "self-e" })
    const flow = Schema.decodeUnknownSync(SamplerConfig)({ steps: 4, landing: "flow-matching" })
    expect(landingTimes(selfE)).toEqual([0.75, 0.5, 0.25, 0])
    expect(landingTimes(flow)).toEqual([1, 0.75, 0.5, 0.25])
    expect(landingTimes({ ...selfE, steps: 1, guidance: "none" })).toEqual([0.5])
  })

  it.effect("with s_k = t_k and eta = 0 it is the Euler flow-matching sampler", () =>
    Effect.gen(function* () {
      const { out, start, calls } = yield* run({ steps: 4, landing: "flow-matching" })
      expect(calls).toEqual([1, 0.75, 0.5, 0.25].map((t) => ({ t, gap: 0 })))
      // Euler on dx/dt = 0.5 x from t = 1 to 0 in steps of 0.25: x <- x - 0.25 * 0.5 x.
      const expected = start.map((x0) => [0, 1, 2, 3].reduce((x) => Math.fround(x - 0.25 * Math.fround(0.5 * x)), x0))
      out.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 5))
    }).pipe(Effect.scoped, Effect.provide(Reference()))
  )

  it.effect("with Self-E landing it asks for the jump t_k - t_{k+1}, and eta = 1 re-noises to t_{k+1}", () =>
    Effect.gen(function* () {
      const euler = yield* run({ steps: 2, landing: "self-e" })
      expect(euler.calls).toEqual([
        { t: 1, gap: 0.5 },
        { t: 0.5, gap: 0.5 }
      ])
      const expected = euler.start.map((x0) => [0, 1].reduce((x) => x - 0.5 * (0.5 * x + 0.5), x0))
      euler.out.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 5))
      const stochastic = yield* run({ steps: 2, landing: "self-e", eta: 1 })
      expect(stochastic.out).not.toEqual(euler.out)
      expect(stochastic.out.every(Number.isFinite)).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(Reference()))
  )
})
