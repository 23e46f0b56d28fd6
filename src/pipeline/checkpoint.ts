import { FileSystem, Path } from "@effect/platform"
import { Effect, Schema, type Scope } from "effect"
import { FileReadError, FileWriteError } from "../io/file-errors.ts"
import { type NamedTensor, SafetensorsError, decodeSafetensors, encodeSafetensors } from "../io/safetensors.ts"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import { ParamSet, type ParamSpec, describeMismatch } from "../nn/params.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import type { TrainState } from "./state.ts"

/**
 * Checkpoints are safetensors files holding the weights, the EMA, both Adam moments (as "params/NAME",
 * "ema/NAME", "adam.m/NAME", "adam.v/NAME") and, in the metadata, the step, the seed (every random draw
 * is addressed by (seed, step), so that is the whole RNG state) and the run's config. They are written
 * to a temporary file, flushed, then renamed, so a crash never leaves a torn checkpoint.
 */
export const CHECKPOINT_FORMAT = "selfe-checkpoint/1"

const GROUPS = [
  ["params", "params"],
  ["ema", "ema"],
  ["m", "adam.m"],
  ["v", "adam.v"]
] as const

/** A checkpoint file that cannot be used, naming the file and the problem. */
export class CheckpointError extends Schema.TaggedError<CheckpointError>()("CheckpointError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `checkpoint ${this.path}: ${this.reason}`
  }
}

export const checkpointFileName = (step: number) => `step-${String(step).padStart(8, "0")}.safetensors`
const CHECKPOINT_PATTERN = /^step-(\d{8})\.safetensors$/

export interface CheckpointContents {
  readonly step: number
  readonly seed: number
  /** The run's config as JSON (decode it with decodeTrainConfig). */
  readonly config: unknown
}

/** Reads the state's tensors and writes `<dir>/step-NNNNNNNN.safetensors` atomically; returns its path. */
export const saveCheckpoint = (dir: string, state: TrainState, seed: number, config: unknown) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const tensors: Array<NamedTensor> = []
    for (const [key, prefix] of GROUPS) {
      const set = state[key]
      for (let i = 0; i < set.tensors.length; i++) {
        const tensor = set.tensors[i] as Tensor
        const data = yield* k.read(tensor)
        tensors.push({ name: `${prefix}/${set.names[i]}`, dtype: "F32", shape: tensor.shape, data: Float32Array.from(data) })
      }
    }
    const bytes = encodeSafetensors({
      tensors,
      metadata: { format: CHECKPOINT_FORMAT, step: String(state.step), seed: String(seed), config: JSON.stringify(config) }
    })
    const target = path.join(dir, checkpointFileName(state.step))
    const temporary = path.join(dir, `.${checkpointFileName(state.step)}.${process.pid}.tmp`)
    const failed = (cause: { message: string }) => new FileWriteError({ path: target, reason: cause.message })
    yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError(failed))
    yield* Effect.scoped(
      Effect.gen(function* () {
        const file = yield* fs.open(temporary, { flag: "w" })
        yield* file.writeAll(bytes)
        yield* file.sync
      })
    ).pipe(Effect.mapError(failed))
    yield* fs.rename(temporary, target).pipe(Effect.mapError(failed))
    return target
  })

/** Checkpoints in `dir`, oldest first. */
export const listCheckpoints = (dir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const exists = yield* fs.exists(dir).pipe(Effect.orElseSucceed(() => false))
    if (!exists) return []
    const names = yield* fs.readDirectory(dir).pipe(Effect.mapError((cause) => new FileReadError({ path: dir, reason: cause.message })))
    return names
      .filter((name) => CHECKPOINT_PATTERN.test(name))
      .sort()
      .map((name) => path.join(dir, name))
  })

/** Deletes all but the `keep` most recent checkpoints (only ever after a newer one is complete). */
export const pruneCheckpoints = (dir: string, keep: number) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const all = yield* listCheckpoints(dir)
    yield* Effect.forEach(all.slice(0, Math.max(0, all.length - keep)), (file) =>
      fs.remove(file).pipe(Effect.mapError((cause) => new FileWriteError({ path: file, reason: cause.message })))
    )
  })

const groupFrom = (file: string, tensors: ReadonlyMap<string, NamedTensor>, prefix: string, specs: ReadonlyArray<ParamSpec>) => {
  const entries = specs.map((spec) => tensors.get(`${prefix}/${spec.name}`))
  const missing = specs.findIndex((_, i) => entries[i] === undefined)
  if (missing >= 0) return Effect.fail(new CheckpointError({ path: file, reason: `missing ${prefix}/${specs[missing]!.name}` }))
  const found = entries as ReadonlyArray<NamedTensor>
  const mismatch = describeMismatch(specs, specs.map((s) => s.name), found.map((t) => t.shape))
  return mismatch === undefined ? Effect.succeed(found) : Effect.fail(new CheckpointError({ path: file, reason: `${prefix}: ${mismatch}` }))
}

/** A checkpoint read from disk: its metadata and its tensors by name (host side, not yet checked). */
export interface CheckpointFile {
  readonly path: string
  readonly contents: CheckpointContents
  readonly tensors: ReadonlyMap<string, NamedTensor>
}

export const readCheckpointFile = (file: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const bytes = yield* fs.readFile(file).pipe(Effect.mapError((cause) => new FileReadError({ path: file, reason: cause.message })))
    const decoded = yield* Effect.try({
      try: () => decodeSafetensors(bytes),
      catch: (cause) => new CheckpointError({ path: file, reason: cause instanceof SafetensorsError ? cause.reason : String(cause) })
    })
    const meta = decoded.metadata
    if (meta["format"] !== CHECKPOINT_FORMAT)
      return yield* new CheckpointError({ path: file, reason: `format is ${meta["format"] ?? "missing"}, expected ${CHECKPOINT_FORMAT}` })
    const step = Number(meta["step"])
    const seed = Number(meta["seed"])
    if (!Number.isInteger(step) || step < 0 || !Number.isInteger(seed)) return yield* new CheckpointError({ path: file, reason: "step or seed metadata is not an integer" })
    const config = yield* Effect.try({ try: () => JSON.parse(meta["config"] ?? "null") as unknown, catch: () => new CheckpointError({ path: file, reason: "config metadata is not JSON" }) })
    return { path: file, contents: { step, seed, config }, tensors: new Map(decoded.tensors.map((t) => [t.name, t])) } satisfies CheckpointFile
  })

const upload = (specs: ReadonlyArray<ParamSpec>, tensors: ReadonlyArray<NamedTensor>, prefix: string, trainable: boolean) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const uploaded = yield* Effect.forEach(tensors, (t, i) =>
      Effect.map(k.fromArray(t.data, t.shape), (tensor) => {
        tensor.name = `${prefix}${specs[i]!.name}`
        tensor.requiresGrad = trainable
        return tensor
      })
    )
    return new ParamSet(specs.map((s) => s.name), uploaded)
  })

/** One group ("params", "ema", ...) of a checkpoint on the device, checked against the model's parameters. */
export const uploadGroup = (checkpoint: CheckpointFile, specs: ReadonlyArray<ParamSpec>, group: (typeof GROUPS)[number][0]) =>
  Effect.gen(function* () {
    const [, prefix] = GROUPS.find(([key]) => key === group) as (typeof GROUPS)[number]
    const tensors = yield* groupFrom(checkpoint.path, checkpoint.tensors, prefix, specs)
    return yield* upload(specs, tensors, group === "params" ? "" : `${prefix}.`, group === "params")
  })

/** Restores a run's state from a checkpoint onto the device (owned by the caller's Scope). */
export const loadCheckpoint = (
  file: string,
  specs: ReadonlyArray<ParamSpec>
): Effect.Effect<
  { readonly state: TrainState; readonly contents: CheckpointContents },
  CheckpointError | FileReadError | KernelError,
  Kernels | FileSystem.FileSystem | Scope.Scope
> =>
  Effect.gen(function* () {
    const checkpoint = yield* readCheckpointFile(file)
    return {
      contents: checkpoint.contents,
      state: {
        params: yield* uploadGroup(checkpoint, specs, "params"),
        ema: yield* uploadGroup(checkpoint, specs, "ema"),
        m: yield* uploadGroup(checkpoint, specs, "m"),
        v: yield* uploadGroup(checkpoint, specs, "v"),
        step: checkpoint.contents.step
      }
    }
  })
