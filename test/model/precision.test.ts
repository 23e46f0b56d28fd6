import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import { decodeSafetensors } from "../../src/io/safetensors.ts"
import { Kernels } from "../../src/kernels/Kernels.ts"
import { Native } from "../../src/kernels/layers.ts"
import { makeModel } from "../../src/model/model.ts"
import { resolvePrecision } from "../../src/pipeline/precision.ts"
import { train } from "../../src/pipeline/train.ts"
import { KernelTrace, Mock, Recording, Reference } from "../../src/testing.ts"
import { forwardBackward, modelInputs, randomParams, relativeError, spec } from "../helpers/mixedPrecision.ts"
import { recordingObserver } from "../helpers/observer.ts"
import { tinyConfig } from "../helpers/tinyRun.ts"

const emulatingBf16 = Reference({ precision: "f32", storesBf16: true })

describe("mixed precision (bf16-mixed)", () => {
  it.scoped("computes the attention and MLP branches in bf16 and everything else in f32", () =>
    Effect.gen(function* () {
      const trace = yield* KernelTrace
      const params = yield* randomParams
      const model = yield* makeModel(spec, "bf16-mixed")
      const inputs = yield* modelInputs
      trace.clear()
      yield* model.velocity(params, inputs)
      const entries = trace.entries()
      const dtypesOf = (op: string) => new Set(entries.filter((e) => e.op === op).flatMap((e) => [...e.inputs, ...e.outputs].filter((t) => t.dtype !== "i32").map((t) => t.dtype)))
      expect(dtypesOf("attention")).toEqual(new Set(["bf16", "f32"])) // bf16 q, k, v and out; the f32 lse
      expect(dtypesOf("linearGelu")).toEqual(new Set(["bf16"]))
      expect(dtypesOf("embedding")).toEqual(new Set(["f32"]))
      // The DiT's branches take their bf16 input from adaLN and give their bf16 output to the gated residual,
      // whose stream stays f32; the final layer's adaLN writes f32.
      const adaLN = entries.filter((e) => e.op === "layerNormModulate")
      expect(new Set(adaLN.flatMap((e) => e.inputs.map((t) => t.dtype)))).toEqual(new Set(["f32"]))
      expect(adaLN.map((e) => e.outputs.map((t) => t.dtype))).toEqual([...Array(2 * spec.depth).fill(["bf16", "f32", "f32"]), ["f32", "f32", "f32"]])
      const residuals = entries.filter((e) => e.op === "gatedResidual")
      expect(residuals.map((e) => [...e.inputs, ...e.outputs].map((t) => t.dtype))).toEqual(Array(2 * spec.depth).fill(["f32", "f32", "bf16", "f32"]))
      // The text encoder's branches likewise: their LayerNorms write bf16 from the f32 stream (the final one
      // f32), and the residual adds take their bf16 outputs into it.
      const textNorms = entries.filter((e) => e.op === "layerNorm")
      expect(new Set(textNorms.flatMap((e) => e.inputs.map((t) => t.dtype)))).toEqual(new Set(["f32"]))
      expect(textNorms.map((e) => e.outputs.map((t) => t.dtype))).toEqual([...Array(2 * spec.textDepth).fill(["bf16", "f32", "f32"]), ["f32", "f32", "f32"]])
      const branchAdds = entries.filter((e) => e.op === "add" && e.inputs[1]?.dtype === "bf16")
      expect(branchAdds.map((e) => [...e.inputs, ...e.outputs].map((t) => t.dtype))).toEqual(Array(2 * spec.textDepth).fill(["f32", "bf16", "f32"]))
      // So no activation is cast: every cast is a master weight's bf16 copy.
      const activationCasts = entries.filter((e) => e.op === "cast" && e.inputs[0]?.name === undefined)
      expect(activationCasts).toHaveLength(0)
      // Each attention/MLP linear reads a bf16 copy of its f32 master weight, cast that pass.
      const qkv = entries.filter((e) => e.op === "cast" && e.inputs[0]?.name === "blocks.0.attn.q.weight")
      expect(qkv.map((e) => [e.inputs[0]?.dtype, e.outputs[0]?.dtype])).toEqual([["f32", "bf16"]])
      const patch = entries.find((e) => e.op === "linear" && e.inputs[1]?.name === "patch.weight")
      expect(patch?.inputs.map((t) => t.dtype)).toEqual(["f32", "f32", "f32"])
    }).pipe(Effect.provide(Recording.layer(emulatingBf16)))
  )

  it.scoped("gives the f32 velocity and gradients to bf16 accuracy, with f32 gradients for the master weights", () =>
    Effect.gen(function* () {
      const params = yield* randomParams
      const full = yield* forwardBackward(params, "f32")
      const mixed = yield* forwardBackward(params, "bf16-mixed")
      expect(mixed.velocity.dtype).toBe("f32")
      const velocityError = relativeError(mixed.velocity.values, full.velocity.values)
      // bf16 keeps 8 significant bits (relative step 2^-8 = 0.4%): the error is of that order, and not zero.
      expect(velocityError).toBeGreaterThan(1e-4)
      expect(velocityError).toBeLessThan(3e-2)
      expect(mixed.grads.every((g) => g.dtype === "f32")).toBe(true)
      const all = (gs: typeof full.grads) => gs.flatMap((g) => g.values)
      const gradError = relativeError(all(mixed.grads), all(full.grads))
      expect(gradError).toBeGreaterThan(1e-4)
      expect(gradError).toBeLessThan(3e-2)
    }).pipe(Effect.provide(emulatingBf16))
  )

  it.scoped("trains end to end in bf16-mixed: finite, falling losses and an f32 checkpoint", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const outDir = yield* fs.makeTempDirectoryScoped()
      const { losses, messages, layer: observer } = recordingObserver()
      const run = tinyConfig({ outDir, steps: 12, precision: "bf16-mixed", optimizer: { lr: 3e-3, warmupSteps: 2 }, objective: { fakeScore: { enabled: false } } })
      const result = yield* train(run).pipe(Effect.provide(observer))
      expect(messages[0]).toMatch(/steps, bf16-mixed$/)
      expect(losses.every(Number.isFinite)).toBe(true)
      expect(losses.slice(-3).reduce((a, b) => a + b) / 3).toBeLessThan(losses.slice(0, 3).reduce((a, b) => a + b) / 3)
      const saved = decodeSafetensors(yield* fs.readFile(result.checkpoint))
      expect(new Set(saved.tensors.map((t) => t.dtype))).toEqual(new Set(["F32"]))
    }).pipe(Effect.provide(emulatingBf16), Effect.provide(NodeContext.layer))
  )
})

describe("choosing the precision", () => {
  it.effect("auto is bf16-mixed on cuda and f32 elsewhere; bf16-mixed where bf16 cannot be stored is a ConfigError", () =>
    Effect.gen(function* () {
      const onCuda = yield* Effect.provide(Effect.flatMap(Kernels, (k) => resolvePrecision("auto", k)), Mock.layer({ backend: "cuda", storesBf16: true }))
      expect(onCuda).toBe("bf16-mixed")
      const onCpu = yield* Effect.scoped(Effect.provide(Effect.flatMap(Kernels, (k) => resolvePrecision("auto", k)), Native()))
      expect(onCpu).toBe("f32")
      const refused = yield* Effect.flip(Effect.scoped(Effect.provide(Effect.flatMap(Kernels, (k) => resolvePrecision("bf16-mixed", k)), Native())))
      expect(refused._tag).toBe("ConfigError")
      expect(refused.message).toMatch(/precision: bf16-mixed needs bf16 storage, which the cpu backend lacks/)
    })
  )
})
