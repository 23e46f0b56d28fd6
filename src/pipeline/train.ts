import { FileSystem, Path } from "@effect/platform"
import { Effect, Stream } from "effect"
import { trainingBatches } from "../data/stream.ts"
import { shapeEvalVocabulary } from "../data/tokenizer.ts"
import { FileWriteError } from "../io/file-errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import { type ModelSpec, modelSpecProblems, resolveModel } from "../model/config.ts"
import { makeModel } from "../model/model.ts"
import { saveCheckpoint, listCheckpoints, loadCheckpoint, pruneCheckpoints } from "./checkpoint.ts"
import { ConfigError, type TrainConfig } from "./config.ts"
import { type MetricsLine, summariseWindow } from "./metrics.ts"
import { TrainingObserver } from "./observer.ts"
import { resolvePrecision } from "./precision.ts"
import { spreadPrompts } from "./samplePrompts.ts"
import { writeSampleGrid } from "./sampleGrid.ts"
import { freshState, type TrainState } from "./state.ts"
import { enqueueTrainStep, type PendingStep, type StepMetrics } from "./step.ts"

export interface TrainOptions {
  /** A checkpoint file to continue from, or "latest" for the newest in the run's directory. */
  readonly resume?: string | undefined
}

export interface TrainResult {
  readonly runDir: string
  readonly checkpoint: string
  readonly steps: number
  readonly lastMetrics: MetricsLine | undefined
}

/** The model a config trains (the data fixes resolution, channels, tokens and vocabulary). */
export const modelSpecFor = (config: TrainConfig) =>
  resolveModel(config.model, {
    resolution: config.data.resolution,
    channels: 3,
    maxTokens: config.data.maxTokens,
    vocabSize: shapeEvalVocabulary.tokens.length
  })

/** The config's model, or a ConfigError naming every problem with it (a width the heads do not divide, ...). */
export const checkedModelSpec = (config: TrainConfig): Effect.Effect<ModelSpec, ConfigError> => {
  const spec = modelSpecFor(config)
  const problems = modelSpecProblems(spec)
  return problems.length > 0 ? Effect.fail(new ConfigError({ reason: problems.join("; ") })) : Effect.succeed(spec)
}

/** Dotted paths where two JSON values differ (a resumed run says which settings it changed). */
const differingPaths = (a: unknown, b: unknown, prefix = ""): ReadonlyArray<string> => {
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])]
    return keys.flatMap((key) => differingPaths((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], prefix === "" ? key : `${prefix}.${key}`))
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix === "" ? "(root)" : prefix]
}

/**
 * A training run: data stream -> step (landing, critique, update) -> periodic samples and checkpoints,
 * with metrics as JSONL in <outDir>/<name>/metrics.jsonl. Parameters live in the run's Scope; each step's
 * activations in the step's.
 */
export const train = (config: TrainConfig, options: TrainOptions = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const observer = yield* TrainingObserver
      const spec = yield* checkedModelSpec(config)
      const precision = yield* resolvePrecision(config.precision, yield* Kernels)
      const model = yield* makeModel(spec, precision)
      const runDir = path.join(config.outDir, config.name)
      const checkpointDir = path.join(runDir, "checkpoints")
      const writeFailed = (file: string) => (cause: { message: string }) => new FileWriteError({ path: file, reason: cause.message })
      yield* fs.makeDirectory(path.join(runDir, "samples"), { recursive: true }).pipe(Effect.mapError(writeFailed(runDir)))

      const resumeFrom = options.resume === "latest" ? (yield* listCheckpoints(checkpointDir)).at(-1) : options.resume
      let state: TrainState
      if (resumeFrom === undefined) {
        state = yield* freshState(model, config.seed)
        yield* observer.onEvent({ kind: "start", step: 0, message: `training ${config.name}: ${state.params.count.toLocaleString()} parameters, ${config.steps} steps, ${precision}` })
      } else {
        const loaded = yield* loadCheckpoint(resumeFrom, model.paramSpecs)
        state = loaded.state
        const changed = differingPaths(loaded.contents.config, config)
        yield* observer.onEvent({
          kind: "resumed",
          step: state.step,
          message: `resumed from ${resumeFrom} at step ${state.step}${changed.length === 0 ? "" : `; config differs from the checkpoint's in ${changed.join(", ")}`}`,
          path: resumeFrom
        })
      }
      const configFile = path.join(runDir, "config.json")
      yield* fs.writeFileString(configFile, JSON.stringify(config, null, 2) + "\n").pipe(Effect.mapError(writeFailed(configFile)))

      const metricsFile = path.join(runDir, "metrics.jsonl")
      // A fresh run starts a new metrics file; a resumed one keeps the lines up to its checkpoint's step.
      const earlier = resumeFrom === undefined ? "" : yield* fs.readFileString(metricsFile).pipe(Effect.orElseSucceed(() => ""))
      const stepOf = (line: string) => {
        try {
          return (JSON.parse(line) as { step?: unknown }).step
        } catch {
          return undefined // a line torn by a crash mid-write
        }
      }
      const kept = earlier.split("\n").filter((line) => {
        const step = stepOf(line)
        return typeof step === "number" && step <= state.step
      })
      yield* fs.writeFileString(metricsFile, kept.map((line) => `${line}\n`).join("")).pipe(Effect.mapError(writeFailed(metricsFile)))
      const ctx = { model, config }
      const gridPrompts = spreadPrompts(config.data, config.cadence.samplePrompts)
      const sampleGrid = (step: number) =>
        Effect.flatMap(
          writeSampleGrid(path.join(runDir, "samples", `step-${String(step).padStart(8, "0")}.png`), model, state.ema, gridPrompts, config.sampler, config.data.batchSize, `${config.sampler.steps} steps`),
          (file) => observer.onEvent({ kind: "samples", step, message: `samples at step ${step}`, path: file })
        )
      const checkpoint = (step: number) =>
        Effect.gen(function* () {
          const file = yield* saveCheckpoint(checkpointDir, state, config.seed, config)
          yield* pruneCheckpoints(checkpointDir, config.cadence.keepCheckpoints)
          yield* observer.onEvent({ kind: "checkpoint", step, message: `checkpoint at step ${step}`, path: file })
          return file
        })

      let window: Array<StepMetrics> = []
      let lastMetrics: MetricsLine | undefined
      const started = performance.now()
      let windowStarted = started
      const every = (interval: number, step: number) => interval > 0 && step % interval === 0
      const report = (pending: PendingStep) =>
        Effect.gen(function* () {
          const metrics = yield* pending.metrics
          window.push(metrics)
          yield* observer.onStep(metrics, config.steps)
          if (every(config.cadence.logEvery, metrics.step) || metrics.step === config.steps) {
            const now = performance.now()
            lastMetrics = summariseWindow(window, (window.length * 1000) / (now - windowStarted), (now - started) / 1000)
            yield* fs.writeFileString(metricsFile, JSON.stringify(lastMetrics) + "\n", { flag: "a" }).pipe(Effect.mapError(writeFailed(metricsFile)))
            window = []
            windowStarted = now
          }
        })
      // One step in flight: step n+1 is enqueued before step n's metrics are waited for, so the device works
      // while the host prepares the next step. Samples and checkpoints wait for their step first.
      let inFlight: PendingStep | undefined
      yield* Stream.runForEach(
        trainingBatches(config.data, state.step).pipe(Stream.take(Math.max(0, config.steps - state.step))),
        (batch) =>
          Effect.gen(function* () {
            const pending = yield* enqueueTrainStep(ctx, state, batch)
            state = { ...state, step: pending.step }
            if (inFlight !== undefined) yield* report(inFlight)
            inFlight = pending
            const sampleNow = every(config.cadence.sampleEvery, pending.step) && pending.step < config.steps
            const checkpointNow = every(config.cadence.checkpointEvery, pending.step) && pending.step < config.steps
            if (sampleNow || checkpointNow || pending.step === config.steps) {
              inFlight = undefined
              yield* report(pending)
            }
            if (sampleNow) yield* sampleGrid(pending.step)
            if (checkpointNow) yield* checkpoint(pending.step)
          })
      )
      if (inFlight !== undefined) yield* report(inFlight)
      const finalCheckpoint = yield* checkpoint(state.step)
      yield* sampleGrid(state.step)
      yield* Effect.flatMap(Kernels, (k) => k.sync())
      yield* observer.onEvent({ kind: "done", step: state.step, message: `done: ${state.step} steps`, path: finalCheckpoint })
      return { runDir, checkpoint: finalCheckpoint, steps: state.step, lastMetrics } satisfies TrainResult
    })
  )
