import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import { withTape } from "../../src/autograd/tape.ts"
import { batchRenderer } from "../../src/data/stream.ts"
import { Kernels } from "../../src/kernels/Kernels.ts"
import { makeModel } from "../../src/model/model.ts"
import type { TrainConfig } from "../../src/pipeline/config.ts"
import { critique } from "../../src/pipeline/critique.ts"
import { landing } from "../../src/pipeline/landing.ts"
import { prepareBatch } from "../../src/pipeline/prepare.ts"
import { freshState } from "../../src/pipeline/state.ts"
import { modelSpecFor } from "../../src/pipeline/train.ts"
import { KernelTrace, Recording, Reference } from "../../src/testing.ts"
import { tinyConfig } from "../helpers/tinyRun.ts"

/** Runs prepare -> landing -> critique for one batch; returns host copies of what the tests check. */
const landAndJudge = (config: TrainConfig, fakeOn: boolean, tau = 1) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const trace = yield* KernelTrace
    const model = yield* makeModel(modelSpecFor(config))
    const state = yield* freshState(model, config.seed)
    const batch = batchRenderer(config.data).render(0)
    const prepared = yield* prepareBatch(model.spec, config.objective, config.seed, batch, tau)
    trace.clear()
    const [{ landed, judged }] = yield* withTape(
      Effect.gen(function* () {
        const landed = yield* landing({ model, config }, state, prepared)
        const judged = yield* critique({ model, config }, state, prepared, landed, fakeOn)
        return { landed, judged }
      })
    )
    const read = (t: import("../../src/tensor/Tensor.ts").Tensor) => Effect.map(k.read(t), (d) => Array.from(d))
    return {
      entries: trace.entries(),
      critiqueRows: prepared.critique?.count ?? 0,
      size: prepared.size,
      t: Array.from(prepared.times.t),
      s: Array.from(prepared.times.s),
      x0: yield* read(prepared.x0),
      eps: yield* read(landed.eps),
      xt: yield* read(landed.xt),
      target: yield* read(judged.target),
      fakeLoss: judged.fakeLoss
    }
  })

const layer = Recording.layer(Reference())

describe("the critique stage", () => {
  it.scoped("evaluates the conditional pass on EMA weights and the unconditional on online weights, both under no-grad", () =>
    Effect.gen(function* () {
      const run = yield* landAndJudge(tinyConfig({ data: { resolution: 16, batchSize: 12, prefetch: 0 } }), false)
      expect(run.critiqueRows).toBeGreaterThan(0)
      const lookups = run.entries.filter((e) => e.op === "embedding").map((e) => ({ table: e.inputs[0]?.name, ids: e.inputs[1]?.name, grad: e.gradEnabled }))
      // The landing pass: online weights, the (possibly dropped-out) prompts, with gradient.
      expect(lookups[0]).toEqual({ table: "text.embed", ids: "prompt ids", grad: true })
      // The critique: online weights on the null prompt, EMA weights on the prompt, both without gradient.
      expect(lookups.slice(1)).toEqual(
        expect.arrayContaining([
          { table: "text.embed", ids: "null prompt ids", grad: false },
          { table: "ema.text.embed", ids: "prompt ids", grad: false }
        ])
      )
      expect(lookups).toHaveLength(3)
      // Every op that reads an EMA weight runs without gradient.
      const emaOps = run.entries.filter((e) => e.inputs.some((i) => i.name?.startsWith("ema.")))
      expect(emaOps.length).toBeGreaterThan(10)
      expect(emaOps.every((e) => !e.gradEnabled)).toBe(true)
      expect(run.fakeLoss).toBeUndefined()
    }).pipe(Effect.provide(layer))
  )

  it.scoped("gives rows with s = t exactly the flow-matching target eps - x0", () =>
    Effect.gen(function* () {
      const run = yield* landAndJudge(tinyConfig({ data: { resolution: 16, batchSize: 12, prefetch: 0 } }), false)
      const plane = run.x0.length / run.size
      let checked = 0
      for (let row = 0; row < run.size; row++) {
        if (run.s[row]! < run.t[row]!) continue
        for (let j = 0; j < plane; j++) {
          const i = row * plane + j
          expect(run.target[i]).toBe(Math.fround(run.eps[i]! - run.x0[i]!))
        }
        checked++
      }
      expect(checked).toBeGreaterThan(0)
      // With tau = 0 nobody jumps, and the whole batch is plain flow matching.
      const still = yield* landAndJudge(tinyConfig({ data: { resolution: 16, batchSize: 12, prefetch: 0 } }), false, 0)
      expect(still.critiqueRows).toBe(0)
      expect(still.target).toEqual(still.eps.map((e, i) => Math.fround(e - still.x0[i]!)))
    }).pipe(Effect.provide(layer))
  )

  it.scoped("keeps the energy of the clean image: the implied x_renorm has |x0|'s norm on every critique row", () =>
    Effect.gen(function* () {
      const run = yield* landAndJudge(tinyConfig({ data: { resolution: 16, batchSize: 12, prefetch: 0 } }), false)
      const plane = run.x0.length / run.size
      for (let row = 0; row < run.critiqueRows; row++) {
        let renorm = 0
        let clean = 0
        for (let j = 0; j < plane; j++) {
          const i = row * plane + j
          // target = (x_t - x_renorm) / t  =>  x_renorm = x_t - t * target
          const xRenorm = run.xt[i]! - run.t[row]! * run.target[i]!
          renorm += xRenorm * xRenorm
          clean += run.x0[i]! * run.x0[i]!
        }
        expect(Math.sqrt(renorm)).toBeCloseTo(Math.sqrt(clean), 3)
      }
    }).pipe(Effect.provide(layer))
  )

  it.scoped("runs the fake branch only when it is switched on, as a recorded pass with the fake flag", () =>
    Effect.gen(function* () {
      const config = tinyConfig({ data: { resolution: 16, batchSize: 12, prefetch: 0 } })
      const off = yield* landAndJudge(config, false)
      const on = yield* landAndJudge(config, true)
      const fakeFlagged = (entries: typeof on.entries) =>
        entries.filter((e) => e.op === "linear" && e.inputs[1]?.name === "fake.weight" && e.gradEnabled)
      expect(off.fakeLoss).toBeUndefined()
      expect(fakeFlagged(off.entries)).toHaveLength(1)
      expect(on.fakeLoss).toBeDefined()
      expect(fakeFlagged(on.entries)).toHaveLength(2)
    }).pipe(Effect.provide(layer))
  )
})
