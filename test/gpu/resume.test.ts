import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Effect, Exit } from "effect"
import { expect, it } from "vitest"
import { Cuda } from "../../src/kernels/layers.ts"
import { train } from "../../src/pipeline/train.ts"
import { tinyConfig, tinyModel } from "../helpers/tinyRun.ts"
import { trainingRecorder } from "../helpers/trainingRecorder.ts"
import { describeCuda } from "./cuda.ts"

/**
 * docs/method.md's promise on the GPU: on a device with determinism "run-to-run", a run interrupted after a
 * checkpoint and resumed repeats the uninterrupted run's losses bit for bit, in the GPU's default bf16-mixed
 * precision, with heads of 64 so that attention takes the tensor-core kernels (test/pipeline/train.test.ts
 * checks the same on the CPU).
 */

describeCuda('resuming a training run on a CUDA device with determinism "run-to-run"', () => {
  it("repeats the uninterrupted run's losses bit for bit (bf16-mixed, tensor-core attention)", async () => {
    const kernels = Cuda({ determinism: "run-to-run" })
    const program = Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const outDir = yield* fs.makeTempDirectoryScoped()
      const config = tinyConfig({
        outDir,
        steps: 4,
        model: { ...tinyModel, dim: 128, heads: 2, textDim: 128, textHeads: 2 },
        cadence: { logEvery: 2, samplePrompts: 2, checkpointEvery: 2, keepCheckpoints: 2 }
      })
      const straight = trainingRecorder()
      yield* train({ ...config, name: "straight" }).pipe(Effect.provide(straight.layer), Effect.provide(kernels))
      const first = trainingRecorder(2)
      const interrupted = yield* Effect.exit(train({ ...config, name: "resumed" }).pipe(Effect.provide(first.layer), Effect.provide(kernels)))
      expect(Exit.isInterrupted(interrupted)).toBe(true)
      const second = trainingRecorder()
      yield* train({ ...config, name: "resumed" }, { resume: "latest" }).pipe(Effect.provide(second.layer), Effect.provide(kernels))
      return { straight: straight.losses, resumed: [...first.losses, ...second.losses] }
    })
    const { straight, resumed } = await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(NodeContext.layer)))
    expect(straight).toHaveLength(4)
    expect(straight.every(Number.isFinite), `losses ${straight.join(", ")}`).toBe(true)
    expect(resumed).toEqual(straight)
  })
})
