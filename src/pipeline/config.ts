import { Effect, ParseResult, Schema } from "effect"
import { ShapeEvalConfig } from "../data/config.ts"
import { ModelConfig } from "../model/config.ts"
import { ObjectiveConfig, SamplerConfig } from "../selfe/config.ts"

const field = <S extends Schema.Schema.Any>(schema: S, value: Schema.Schema.Type<S>, description: string) =>
  Schema.optionalWith(schema, { default: () => value }).annotations({ description })
const section = <S extends Schema.Schema.AnyNoContext>(schema: S, description: string) =>
  Schema.optionalWith(schema, { default: () => Schema.decodeUnknownSync(schema)({}) }).annotations({ description })

const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegativeInt = Schema.NonNegativeInt

export const OptimizerConfig = Schema.Struct({
  lr: field(Schema.Number.pipe(Schema.positive()), 3e-4, "peak learning rate (after warm-up); the paper's 3e-4"),
  minLr: field(Schema.NonNegative, 1e-5, "learning rate at the last step (linear decay from lr after warm-up); the paper's 1e-5"),
  warmupSteps: field(NonNegativeInt, 100, "linear warm-up steps from 0 to lr (1k in the paper)"),
  beta1: field(Schema.Number.pipe(Schema.between(0, 0.999999)), 0.9, "Adam beta1"),
  beta2: field(Schema.Number.pipe(Schema.between(0, 0.999999)), 0.95, "Adam beta2 (the paper's 0.95)"),
  eps: field(Schema.Number.pipe(Schema.positive()), 1e-8, "Adam epsilon"),
  weightDecay: field(Schema.NonNegative, 0, "decoupled weight decay (AdamW)"),
  gradClip: field(Schema.Number.pipe(Schema.positive()), 1, "clip gradients to this global L2 norm"),
  emaDecay: field(Schema.Number.pipe(Schema.between(0, 1)), 0.999, "EMA decay (0.9999 in the paper, for 710k steps)"),
  emaWarmup: field(Schema.Boolean, true, "use min(decay, (1 + step) / (10 + step)) so short runs have a useful EMA [ours]")
})
export type OptimizerConfig = typeof OptimizerConfig.Type

export const CadenceConfig = Schema.Struct({
  logEvery: field(PositiveInt, 10, "steps between metric lines (JSONL) and progress updates"),
  sampleEvery: field(NonNegativeInt, 0, "steps between sample grids (0 = only at the end)"),
  checkpointEvery: field(NonNegativeInt, 0, "steps between checkpoints (0 = only at the end)"),
  keepCheckpoints: field(PositiveInt, 3, "most recent checkpoints kept on disk"),
  samplePrompts: field(PositiveInt, 16, "prompts in each periodic sample grid")
})
export type CadenceConfig = typeof CadenceConfig.Type

/** A precision setting: "auto" is bf16-mixed on the CUDA backend and f32 elsewhere (see precision.ts). */
export const PrecisionChoice = Schema.Literal("auto", "f32", "bf16-mixed")
export type PrecisionChoice = typeof PrecisionChoice.Type

export const TrainConfig = Schema.Struct({
  name: field(Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]+$/)), "selfe", "run name; outputs go to <outDir>/<name>"),
  outDir: field(Schema.String, "runs", "directory for run outputs (checkpoints, metrics, samples)"),
  backend: field(Schema.Literal("cpu", "cuda", "reference"), "cpu", "kernel backend"),
  precision: field(PrecisionChoice, "auto", "f32, or bf16-mixed (bf16 attention and MLP branches, f32 master weights); auto: bf16-mixed on cuda"),
  seed: field(NonNegativeInt, 0, "seed of initialisation and of every random draw of training"),
  steps: field(PositiveInt, 1000, "training steps"),
  data: section(ShapeEvalConfig, "the ShapeEval world and its training stream (batchSize is the training batch)"),
  model: section(ModelConfig, "model size"),
  objective: section(ObjectiveConfig, "the Self-E objective (or the flow-matching baseline)"),
  optimizer: section(OptimizerConfig, "AdamW, EMA, clipping and the learning-rate schedule"),
  sampler: section(SamplerConfig, "sampler used for periodic sample grids"),
  cadence: section(CadenceConfig, "logging, sampling and checkpoint intervals")
})
export type TrainConfig = typeof TrainConfig.Type

/** A config that failed to decode, with every offending field's path. */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", { reason: Schema.String }) {
  override get message(): string {
    return `invalid training config: ${this.reason}`
  }
}

const describe = (error: ParseResult.ParseError) =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ")

/** Decodes a partial config (missing fields take defaults); unknown fields and bad values fail by path. */
export const decodeTrainConfig = (input: unknown): Effect.Effect<TrainConfig, ConfigError> =>
  Schema.decodeUnknown(TrainConfig)(input, { onExcessProperty: "error", errors: "all" }).pipe(
    Effect.mapError((error) => new ConfigError({ reason: describe(error) }))
  )

/** Parses "a.b.c=value" (value as JSON when it parses, else a string) into the raw config object. */
export const applyOverride = (raw: unknown, assignment: string): Effect.Effect<unknown, ConfigError> =>
  Effect.suspend(() => {
    const eq = assignment.indexOf("=")
    if (eq <= 0) return Effect.fail(new ConfigError({ reason: `--set ${assignment}: expected path=value` }))
    const path = assignment.slice(0, eq).split(".")
    const text = assignment.slice(eq + 1)
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      value = text
    }
    const root: Record<string, unknown> = typeof raw === "object" && raw !== null ? structuredClone(raw as Record<string, unknown>) : {}
    let node = root
    for (const key of path.slice(0, -1)) {
      const next = node[key]
      if (next !== undefined && (typeof next !== "object" || next === null || Array.isArray(next)))
        return Effect.fail(new ConfigError({ reason: `--set ${assignment}: ${key} is not a section` }))
      node = (node[key] ??= {}) as Record<string, unknown>
    }
    node[path[path.length - 1] as string] = value
    return Effect.succeed(root)
  })

export const defaultTrainConfig: TrainConfig = Schema.decodeUnknownSync(TrainConfig)({})
