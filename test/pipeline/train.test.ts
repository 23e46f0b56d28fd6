import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { it } from "@effect/vitest"
import { Effect, Exit, Layer, Stream } from "effect"
import { describe, expect } from "vitest"
import { trainingBatches } from "../../src/data/stream.ts"
import { Kernels, type KernelsService } from "../../src/kernels/Kernels.ts"
import { Native } from "../../src/kernels/layers.ts"
import { makeModel } from "../../src/model/model.ts"
import { decodeSafetensors } from "../../src/io/safetensors.ts"
import { decodeTrainConfig } from "../../src/pipeline/config.ts"
import { listCheckpoints } from "../../src/pipeline/checkpoint.ts"
import { freshState } from "../../src/pipeline/state.ts"
import { trainStep } from "../../src/pipeline/step.ts"
import { modelSpecFor, train } from "../../src/pipeline/train.ts"
import { tinyConfig } from "../helpers/tinyRun.ts"
import { trainingRecorder } from "../helpers/trainingRecorder.ts"

const kernels = Native()

describe("training runs", () => {
  it.scoped("resume from a checkpoint repeats the uninterrupted run's losses exactly", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const outDir = yield* fs.makeTempDirectoryScoped()
      const config = tinyConfig({ outDir, cadence: { logEvery: 2, samplePrompts: 2, checkpointEvery: 4, keepCheckpoints: 2 } })

      const straight = trainingRecorder()
      yield* train({ ...config, name: "straight" }).pipe(Effect.provide(straight.layer), Effect.provide(kernels))

      const first = trainingRecorder(4)
      const interrupted = yield* Effect.exit(train({ ...config, name: "resumed" }).pipe(Effect.provide(first.layer), Effect.provide(kernels)))
      expect(Exit.isInterrupted(interrupted)).toBe(true)
      const second = trainingRecorder()
      yield* train({ ...config, name: "resumed" }, { resume: "latest" }).pipe(Effect.provide(second.layer), Effect.provide(kernels))

      expect(first.losses).toHaveLength(4)
      expect(straight.losses).toHaveLength(8)
      expect([...first.losses, ...second.losses]).toEqual(straight.losses)
      // The resumed run's metrics continue the interrupted one's, without repeats.
      const path = yield* Path.Path
      const steps = (name: string) =>
        Effect.map(fs.readFileString(path.join(outDir, name, "metrics.jsonl")), (text) =>
          text.trim().split("\n").map((line) => (JSON.parse(line) as { step: number }).step)
        )
      expect(yield* steps("resumed")).toEqual([2, 4, 6, 8])
      expect(second.messages[0]).toMatch(/^resumed from .*step-00000004\.safetensors at step 4$/)
      // Resuming with other settings says which ones.
      const changed = trainingRecorder()
      yield* train({ ...config, name: "resumed", steps: 10, optimizer: { ...config.optimizer, lr: 5e-4 } }, { resume: "latest" }).pipe(
        Effect.provide(changed.layer),
        Effect.provide(kernels)
      )
      expect(changed.messages[0]).toMatch(/config differs from the checkpoint's in steps, optimizer\.lr$/)
      // A fresh run in a used folder starts its metrics anew.
      yield* train({ ...config, name: "straight", steps: 2 }).pipe(Effect.provide(trainingRecorder().layer), Effect.provide(kernels))
      expect(yield* steps("straight")).toEqual([2])
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("learns: on the CPU the loss falls, and the run writes metrics, a sample grid and checkpoints", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const outDir = yield* fs.makeTempDirectoryScoped()
      const config = tinyConfig({
        outDir,
        name: "learns",
        steps: 60,
        data: { resolution: 16, batchSize: 16, prefetch: 2 },
        optimizer: { lr: 3e-3, warmupSteps: 5 },
        // The fake term adds its own loss late in training; the data loss is what must fall here.
        objective: { fakeScore: { enabled: false } },
        cadence: { logEvery: 10, samplePrompts: 4, checkpointEvery: 20, keepCheckpoints: 2 }
      })
      const run = trainingRecorder()
      const result = yield* train(config).pipe(Effect.provide(run.layer), Effect.provide(kernels))
      const early = run.losses.slice(0, 10).reduce((a, b) => a + b, 0) / 10
      const late = run.losses.slice(-10).reduce((a, b) => a + b, 0) / 10
      expect(late).toBeLessThan(0.7 * early)

      const runDir = path.join(outDir, "learns")
      const metrics = (yield* fs.readFileString(path.join(runDir, "metrics.jsonl"))).trim().split("\n").map((line) => JSON.parse(line))
      expect(metrics.map((m) => m.step)).toEqual([10, 20, 30, 40, 50, 60])
      expect(metrics[0].lossByT).toHaveLength(5)
      const grid = yield* fs.readFile(path.join(runDir, "samples", "step-00000060.png"))
      expect(Array.from(grid.subarray(1, 4))).toEqual([0x50, 0x4e, 0x47])
      // Only the newest checkpoints are kept, and they are complete safetensors files.
      const kept = yield* listCheckpoints(path.join(runDir, "checkpoints"))
      expect(kept.map((f) => path.basename(f))).toEqual(["step-00000040.safetensors", "step-00000060.safetensors"])
      expect(result.checkpoint).toBe(kept[1])
      const file = decodeSafetensors(yield* fs.readFile(kept[1] as string))
      expect(file.metadata["step"]).toBe("60")
      expect(file.tensors.filter((t) => t.name.startsWith("ema/")).length).toBe(file.tensors.filter((t) => t.name.startsWith("params/")).length)
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("keeps one step in flight: step n+1 is enqueued before step n's metrics are awaited, except at checkpoints; the losses are a step-by-step loop's", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const outDir = yield* fs.makeTempDirectoryScoped()
      const config = tinyConfig({ outDir, name: "in-flight", cadence: { logEvery: 2, samplePrompts: 2, checkpointEvery: 4 } })
      // Marks each update (one AdamW + EMA per step) and each wait for a step's reads, by step number.
      const events: Array<string> = []
      const traced = Layer.effect(
        Kernels,
        Effect.map(Kernels, (k): KernelsService => {
          let updates = 0
          const mark = (event: string) => Effect.sync(() => void (events.at(-1) !== event && events.push(event)))
          return {
            ...k,
            adamwEma: (...args) => Effect.zipRight(Effect.suspend(() => mark(`update ${++updates}`)), k.adamwEma(...args)),
            startRead: (x) => Effect.map(k.startRead(x), (wait) => Effect.zipRight(mark(`wait ${updates}`), wait))
          }
        })
      ).pipe(Layer.provide(kernels))
      const run = trainingRecorder()
      yield* train(config).pipe(Effect.provide(run.layer), Effect.provide(traced))
      expect(events).toEqual([
        ...["update 1", "update 2", "wait 1", "update 3", "wait 2", "update 4", "wait 3", "wait 4"],
        ...["update 5", "update 6", "wait 5", "update 7", "wait 6", "update 8", "wait 7", "wait 8"]
      ])

      const stepByStep = yield* Effect.scoped(
        Effect.gen(function* () {
          const model = yield* makeModel(modelSpecFor(config), "f32")
          let state = yield* freshState(model, config.seed)
          const losses: Array<number> = []
          yield* Stream.runForEach(trainingBatches(config.data, 0).pipe(Stream.take(config.steps)), (batch) =>
            Effect.map(trainStep({ model, config }, state, batch), (metrics) => {
              state = { ...state, step: metrics.step }
              losses.push(metrics.loss)
            })
          )
          return losses
        })
      ).pipe(Effect.provide(kernels))
      expect(run.losses).toEqual(stepByStep)
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.effect("a bad config fails before any work, naming the field", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodeTrainConfig({ optimizer: { lr: -1 }, model: { heads: 0 }, data: { resolution: 7 } }))
      expect(error.message).toMatch(/optimizer\.lr/)
      expect(error.message).toMatch(/model\.heads/)
      expect(error.message).toMatch(/data\.resolution/)
      const unknown = yield* Effect.flip(decodeTrainConfig({ optimiser: {} }))
      expect(unknown.message).toMatch(/optimiser/)
    })
  )
})
