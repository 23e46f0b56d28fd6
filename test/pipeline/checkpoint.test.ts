import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import { Kernels } from "../../src/kernels/Kernels.ts"
import { makeModel } from "../../src/model/model.ts"
import { loadCheckpoint, saveCheckpoint } from "../../src/pipeline/checkpoint.ts"
import { freshState } from "../../src/pipeline/state.ts"
import { modelSpecFor } from "../../src/pipeline/train.ts"
import { Reference } from "../../src/testing.ts"
import { tinyConfig } from "../helpers/tinyRun.ts"

describe("checkpoints", () => {
  it.scoped("restore weights, EMA, moments and step exactly, and leave no temporary file behind", () =>
    Effect.gen(function* () {
      const k = yield* Kernels
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const config = tinyConfig()
      const model = yield* makeModel(modelSpecFor(config))
      const state = { ...(yield* freshState(model, 3)), step: 17 }
      yield* k.write(state.m.tensors[0]!, Array.from({ length: state.m.tensors[0]!.numel }, (_, i) => i / 7))
      const file = yield* saveCheckpoint(dir, state, 3, config)
      expect(yield* fs.readDirectory(dir)).toEqual(["step-00000017.safetensors"])
      const { state: restored, contents } = yield* loadCheckpoint(file, model.paramSpecs)
      expect(contents.step).toBe(17)
      expect(contents.seed).toBe(3)
      expect(restored.params.names).toEqual(state.params.names)
      for (const group of ["params", "ema", "m", "v"] as const)
        for (let i = 0; i < state.params.tensors.length; i++)
          expect(Array.from(yield* k.read(restored[group].tensors[i]!))).toEqual(Array.from(yield* k.read(state[group].tensors[i]!)))
      expect(restored.params.tensors.every((t) => t.requiresGrad)).toBe(true)
      expect(restored.ema.tensors.some((t) => t.requiresGrad)).toBe(false)
    }).pipe(Effect.provide(NodeContext.layer), Effect.provide(Reference()))
  )

  it.scoped("refuse a checkpoint of another model or a damaged file with an error naming file and problem", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dir = yield* fs.makeTempDirectoryScoped()
      const config = tinyConfig()
      const model = yield* makeModel(modelSpecFor(config))
      const file = yield* saveCheckpoint(dir, yield* freshState(model, 0), 0, config)
      const wider = yield* makeModel(modelSpecFor(tinyConfig({ model: { ...config.model, dim: 24 } })))
      const mismatch = yield* Effect.flip(loadCheckpoint(file, wider.paramSpecs))
      expect(mismatch.message).toMatch(/step-00000000\.safetensors: params: parameter patch\.weight has shape \[16, 192\], expected \[24, 192\]/)
      const bytes = yield* fs.readFile(file)
      const truncated = path.join(dir, "truncated.safetensors")
      yield* fs.writeFile(truncated, bytes.subarray(0, bytes.length - 100))
      const damaged = yield* Effect.flip(loadCheckpoint(truncated, model.paramSpecs))
      expect(damaged._tag).toBe("CheckpointError")
      expect(damaged.message).toMatch(/truncated\.safetensors: .*outside/)
      const missing = yield* Effect.flip(loadCheckpoint(path.join(dir, "nope.safetensors"), model.paramSpecs))
      expect(missing._tag).toBe("FileReadError")
    }).pipe(Effect.provide(NodeContext.layer), Effect.provide(Reference()))
  )
})
