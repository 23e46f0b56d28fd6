import { it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { describe, expect } from "vitest"
import * as F from "../../src/autograd/functional.ts"
import { backward } from "../../src/autograd/backward.ts"
import { noGrad, withTape } from "../../src/autograd/tape.ts"
import { Kernels } from "../../src/kernels/Kernels.ts"
import { liftBackend } from "../../src/kernels/lift.ts"
import { ReferenceBackend } from "../../src/kernels/reference/ReferenceBackend.ts"
import { batchRenderer } from "../../src/data/stream.ts"
import { nullPrompts } from "../../src/model/inputs.ts"
import { makeModel } from "../../src/model/model.ts"
import { castWeight, castWeights, withWeightCopies } from "../../src/model/weightCopies.ts"
import type { ParamSet } from "../../src/nn/params.ts"
import { freshState } from "../../src/pipeline/state.ts"
import { enqueueTrainStep } from "../../src/pipeline/step.ts"
import { modelSpecFor } from "../../src/pipeline/train.ts"
import { SamplerConfig } from "../../src/selfe/config.ts"
import { sample } from "../../src/selfe/sampler.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"
import { KernelTrace, Recording, Reference } from "../../src/testing.ts"
import { modelInputs, randomParams, relativeError, spec } from "../helpers/mixedPrecision.ts"
import { tinyConfig } from "../helpers/tinyRun.ts"

const emulatingBf16 = Reference({ precision: "f32", storesBf16: true })
const weight = "blocks.0.attn.q.weight"

/** The casts of a named master weight in the trace so far. */
const castsOf = (name: string) =>
  Effect.map(KernelTrace, (trace) => trace.entries().filter((e) => e.op === "cast" && e.inputs[0]?.name === name).length)

/** Gradients of mse(V, 0) summed over `passes` forward passes with gradient, and the passes' velocities. */
const gradientsOf = (params: ParamSet, passes: number, shared: boolean, noGradFirst = false, planKey?: object) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const model = yield* makeModel(spec, "bf16-mixed")
    const inputs = yield* modelInputs
    const body = Effect.gen(function* () {
      if (noGradFirst) yield* noGrad(model.velocity(params, inputs))
      const velocities: Array<Tensor> = []
      let loss: Tensor | undefined
      for (let i = 0; i < passes; i++) {
        const v = yield* model.velocity(params, { ...inputs, x: yield* k.affine(inputs.x, 1 + i, 0) })
        velocities.push(v)
        const term = yield* F.mse(v, yield* k.zeros(v.shape))
        loss = loss === undefined ? term : yield* F.add(loss, term)
      }
      return { velocities, loss: loss as Tensor }
    })
    const [{ velocities, loss }, tape] = yield* withTape(shared ? withWeightCopies(body, planKey) : body)
    const grads = yield* backward(loss, tape)
    const host = (t: Tensor) => Effect.map(k.read(t), (d) => Array.from(d))
    return {
      velocities: yield* Effect.forEach(velocities, host),
      grads: (yield* Effect.forEach(params.tensors, (p) => host(grads.get(p) as Tensor))).flat()
    }
  })

describe("shared bf16 weight copies (withWeightCopies)", () => {
  it.scoped("cast each master weight once per region, however many passes read it", () =>
    Effect.gen(function* () {
      const params = yield* randomParams
      const model = yield* makeModel(spec, "bf16-mixed")
      const inputs = yield* modelInputs
      yield* model.velocity(params, inputs)
      yield* model.velocity(params, inputs)
      expect(yield* castsOf(weight)).toBe(2)
      const trace = yield* KernelTrace
      trace.clear()
      yield* withWeightCopies(
        Effect.gen(function* () {
          // The first pass in a scope of its own: the copies it makes belong to the region's scope and outlive it.
          yield* Effect.scoped(model.velocity(params, inputs))
          yield* model.velocity(params, inputs)
          yield* noGrad(model.velocity(params, inputs))
        })
      )
      expect(yield* castsOf(weight)).toBe(1)
      // Every cast the region made is a distinct master's (no weight cast twice); activations are not shared.
      const castNames = trace.entries().filter((e) => e.op === "cast" && e.inputs[0]?.name !== undefined).map((e) => e.inputs[0]?.name)
      expect(castNames.length).toBeGreaterThan(10)
      expect(new Set(castNames).size).toBe(castNames.length)
    }).pipe(Effect.provide(Recording.layer(emulatingBf16)))
  )

  it.scoped("cast a plan key's weights in one castAll from its second region on, the same copies bit for bit", () =>
    Effect.gen(function* () {
      const params = yield* randomParams
      const trace = yield* KernelTrace
      trace.clear()
      const first = yield* gradientsOf(params, 2, true, false, params)
      const weightCasts = trace.entries().filter((e) => e.op === "cast" && e.inputs[0]?.name !== undefined)
      // The first region casts as it goes; its backward sends every copy's gradient back in one castAll.
      expect(weightCasts.length).toBeGreaterThan(10)
      const firstCastAlls = trace.entries().filter((e) => e.op === "castAll")
      expect(firstCastAlls.map((e) => [e.inputs.length, e.outputs[0]?.dtype])).toEqual([[weightCasts.length, "f32"]])
      trace.clear()
      const second = yield* gradientsOf(params, 2, true, false, params)
      expect(second).toEqual(first)
      expect(yield* castsOf(weight)).toBe(0)
      // One castAll makes every copy the first region made, before any pass; one sends the gradients back.
      const castAlls = trace.entries().filter((e) => e.op === "castAll")
      expect(castAlls.map((e) => [e.inputs.length, e.inputs[0]?.dtype, e.outputs[0]?.dtype])).toEqual([
        [weightCasts.length, "f32", "bf16"],
        [weightCasts.length, "bf16", "f32"]
      ])
      expect(new Set(castAlls[0]?.inputs.map((t) => t.name))).toEqual(new Set(weightCasts.map((e) => e.inputs[0]?.name)))
    }).pipe(Effect.provide(Recording.layer(emulatingBf16)))
  )

  it.scoped("give a layer's weights from the region's copies: no cast and no second tape node on a hit", () =>
    Effect.gen(function* () {
      const k = yield* Kernels
      const trace = yield* KernelTrace
      const [w, b] = [yield* k.fromArray([1, 2, 3, 4], [2, 2]), yield* k.fromArray([5, 6], [2])]
      for (const t of [w, b]) t.requiresGrad = true
      const already = yield* k.fromArray([7, 8], [2], "bf16")
      trace.clear()
      const [[first, second, unrecorded], tape] = yield* withTape(
        withWeightCopies(
          Effect.gen(function* () {
            const first = yield* castWeights([w, b, undefined, already], "bf16")
            const second = yield* castWeights([w, b, undefined, already], "bf16")
            const unrecorded = yield* noGrad(castWeights([w], "bf16"))
            return [first, second, unrecorded] as const
          })
        )
      )
      expect(first[2]).toBeUndefined()
      expect(first[3]).toBe(already)
      expect(first.slice(0, 2).map((t) => t?.dtype)).toEqual(["bf16", "bf16"])
      expect(second).toEqual(first)
      expect(unrecorded[0]).toBe(first[0])
      // Two casts, by the first call; one cast node per copy.
      expect(trace.entries().map((e) => e.op)).toEqual(["cast", "cast"])
      expect(tape.nodes.map((node) => [node.op, node.inputs[0]])).toEqual([
        ["cast", w],
        ["cast", b]
      ])
      expect(Array.from(yield* k.read(first[1] as Tensor))).toEqual([5, 6])
    }).pipe(Effect.provide(Recording.layer(emulatingBf16)))
  )

  it.scoped("free the copies' gradients in one call once the backward's castAll has them", () =>
    Effect.gen(function* () {
      const backend = new ReferenceBackend({ precision: "f32", storesBf16: true })
      // Spied before liftBackend, which calls the backend's own methods.
      const castAllInputs: Array<ReadonlyArray<unknown>> = []
      const releases: Array<ReadonlyArray<unknown>> = []
      const castAll = backend.castAll.bind(backend)
      const releaseHandle = backend.releaseHandle.bind(backend)
      const releaseHandles = backend.releaseHandles.bind(backend)
      backend.castAll = (xs, dtype) => {
        castAllInputs.push(xs.map((t) => t.handle))
        return castAll(xs, dtype)
      }
      // The Reference backend's releaseHandles frees each handle through releaseHandle: those are not calls.
      let inBatch = false
      backend.releaseHandle = (handle) => {
        if (!inBatch) releases.push([handle])
        releaseHandle(handle)
      }
      backend.releaseHandles = (handles) => {
        releases.push([...handles])
        inBatch = true
        releaseHandles(handles)
        inBatch = false
      }
      yield* Effect.scoped(Effect.flatMap(randomParams, (params) => gradientsOf(params, 2, true))).pipe(
        Effect.provideService(Kernels, liftBackend(backend))
      )
      // The region's first pass casts as it goes; the backward sends every copy's gradient back in one castAll.
      expect(castAllInputs).toHaveLength(1)
      const copyGradients = castAllInputs[0] as ReadonlyArray<unknown>
      expect(copyGradients.length).toBeGreaterThan(10)
      expect(releases).toContainEqual(copyGradients)
      expect(releases.filter((handles) => handles.length === 1 && copyGradients.includes(handles[0]))).toEqual([])
      backend.dispose()
    })
  )

  it.scoped("leave a released weight out of the plan", () =>
    Effect.gen(function* () {
      const k = yield* Kernels
      const [kept, dropped] = [yield* k.fromArray([1, 2, 3], [3]), yield* k.fromArray([4, 5], [2])]
      const key = {}
      const copyBoth = withWeightCopies(Effect.forEach([kept, dropped], (w) => castWeight(w, "bf16")), key)
      yield* Effect.scoped(copyBoth)
      dropped.release()
      const trace = yield* KernelTrace
      trace.clear()
      const copied = yield* Effect.scoped(withWeightCopies(Effect.flatMap(castWeight(kept, "bf16"), (copy) => k.read(copy)), key))
      expect(Array.from(copied)).toEqual([1, 2, 3])
      expect(trace.entries().map((e) => [e.op, e.inputs.length])).toEqual([["castAll", 1]])
    }).pipe(Effect.provide(Recording.layer(emulatingBf16)))
  )

  it.scoped("give the same velocities bit for bit, and gradients to bf16 accumulation, as a cast per pass", () =>
    Effect.gen(function* () {
      const params = yield* randomParams
      const perPass = yield* gradientsOf(params, 2, false)
      const shared = yield* gradientsOf(params, 2, true)
      expect(shared.velocities).toEqual(perPass.velocities)
      // Two passes' gradients of a shared copy sum in bf16 before the one cast back (PyTorch autocast's cache
      // does the same); a cast per pass sums them in f32. The difference is of bf16's rounding, not zero.
      const error = relativeError(shared.grads, perPass.grads)
      expect(error).toBeGreaterThan(0)
      expect(error).toBeLessThan(5e-3)
    }).pipe(Effect.provide(emulatingBf16))
  )

  it.scoped("record the copy on the tape at its first use with gradient, after passes without", () =>
    Effect.gen(function* () {
      const params = yield* randomParams
      const alone = yield* gradientsOf(params, 1, false)
      const afterNoGrad = yield* gradientsOf(params, 1, true, true)
      // One pass with gradient: the shared copy's gradient is that pass's, cast back once, as without sharing.
      expect(afterNoGrad.grads).toEqual(alone.grads)
      expect(alone.grads.some((g) => g !== 0)).toBe(true)
    }).pipe(Effect.provide(emulatingBf16))
  )

  it.scoped("serve a training step's four passes: one copy of each online weight, one of each EMA weight", () =>
    Effect.gen(function* () {
      const config = tinyConfig({ data: { resolution: 16, batchSize: 12, prefetch: 0 }, objective: { tauRampFraction: 0, fakeScore: { enabled: true, startFraction: 0 } } })
      const model = yield* makeModel(modelSpecFor(config), "bf16-mixed")
      const state = yield* freshState(model, config.seed)
      const trace = yield* KernelTrace
      trace.clear()
      const metrics = yield* Effect.flatMap(enqueueTrainStep({ model, config }, state, batchRenderer(config.data).render(0)), (step) => step.metrics)
      expect(metrics.critiqueRows).toBeGreaterThan(0)
      expect(metrics.fakeLoss).toBeDefined()
      // Landing, fake and unconditional passes read the online weights, the conditional pass the EMA's.
      expect(trace.entries().filter((e) => e.op === "embedding" && e.inputs[0]?.name === "text.embed").length).toBe(3)
      expect(yield* castsOf(weight)).toBe(1)
      expect(yield* castsOf(`ema.${weight}`)).toBe(1)
      expect(Number.isFinite(metrics.loss) && Number.isFinite(metrics.gradNorm) && metrics.gradNorm > 0).toBe(true)
    }).pipe(Effect.provide(Recording.layer(emulatingBf16)))
  )

  it.scoped("serve a sampler's passes, released when it returns", () =>
    Effect.gen(function* () {
      const k = yield* Kernels
      const params = yield* randomParams
      const model = yield* makeModel(spec, "bf16-mixed")
      const prompts = nullPrompts(spec, 2)
      const f32Model = yield* makeModel(spec, "f32")
      const liveAfter = (steps: number, precision: "f32" | "bf16-mixed") =>
        Effect.scoped(
          Effect.gen(function* () {
            const before = (yield* k.stats()).liveTensors
            const config = Schema.decodeUnknownSync(SamplerConfig)({ steps, guidance: "cfg" })
            yield* sample(precision === "f32" ? f32Model : model, params, prompts, config)
            return (yield* k.stats()).liveTensors - before
          })
        )
      const trace = yield* KernelTrace
      trace.clear()
      const mixed = yield* liveAfter(3, "bf16-mixed")
      expect(yield* castsOf(weight)).toBe(1)
      // What a sample leaves in its caller's scope is what an f32 sample (no copies) leaves.
      expect(mixed).toBe(yield* liveAfter(3, "f32"))
    }).pipe(Effect.provide(Recording.layer(emulatingBf16)))
  )
})
