import { Schema } from "effect"

/** A DiT size: the fields a preset fixes (any can be overridden in the config). */
export interface ModelSize {
  /** Width of the joint (text + image) token stream. */
  readonly dim: number
  /** Joint DiT blocks. */
  readonly depth: number
  readonly heads: number
  /** MLP hidden width = mlpRatio * dim. */
  readonly mlpRatio: number
  /** Image side in pixels divided into patch x patch tokens. */
  readonly patch: number
  readonly textDim: number
  readonly textDepth: number
  readonly textHeads: number
  /** Sinusoidal features fed to the time MLPs. */
  readonly timeFeatures: number
}

/** Named sizes: `tiny` trains on a 2-core CPU in minutes; `S` and `B` are GPU sizes (DiT-S/B widths). */
export const modelPresets = {
  tiny: { dim: 96, depth: 4, heads: 4, mlpRatio: 4, patch: 4, textDim: 64, textDepth: 2, textHeads: 4, timeFeatures: 128 },
  S: { dim: 384, depth: 12, heads: 6, mlpRatio: 4, patch: 2, textDim: 256, textDepth: 4, textHeads: 4, timeFeatures: 256 },
  B: { dim: 768, depth: 12, heads: 12, mlpRatio: 4, patch: 2, textDim: 384, textDepth: 6, textHeads: 6, timeFeatures: 256 }
} as const satisfies Record<string, ModelSize>

const Positive = Schema.Int.pipe(Schema.positive())
const override = (description: string) => Schema.optional(Positive).annotations({ description })

export const ModelConfig = Schema.Struct({
  preset: Schema.optionalWith(Schema.Literal("tiny", "S", "B"), { default: () => "tiny" as const }).annotations({
    description: "named size (tiny: CPU; S, B: GPU); the fields below override it"
  }),
  dim: override("width of the joint token stream"),
  depth: override("number of joint DiT blocks"),
  heads: override("attention heads (dim must divide by it)"),
  mlpRatio: override("MLP hidden width as a multiple of dim"),
  patch: override("patch side in pixels (the resolution must divide by it)"),
  textDim: override("text encoder width"),
  textDepth: override("text encoder layers"),
  textHeads: override("text encoder attention heads"),
  timeFeatures: override("sinusoidal features of each time embedding (even)")
})
export type ModelConfig = typeof ModelConfig.Type

/** Everything the model needs to build itself: a size plus the data's geometry and vocabulary. */
export interface ModelSpec extends ModelSize {
  readonly resolution: number
  readonly channels: number
  /** Text tokens per prompt. */
  readonly maxTokens: number
  /** The tokenizer's vocabulary size; the model appends one learned null-prompt token after it. */
  readonly vocabSize: number
}

export const resolveModel = (
  config: ModelConfig,
  data: { readonly resolution: number; readonly channels: number; readonly maxTokens: number; readonly vocabSize: number }
): ModelSpec => {
  const preset = modelPresets[config.preset]
  const pick = <K extends keyof ModelSize>(key: K): ModelSize[K] => (config[key] ?? preset[key]) as ModelSize[K]
  return {
    dim: pick("dim"),
    depth: pick("depth"),
    heads: pick("heads"),
    mlpRatio: pick("mlpRatio"),
    patch: pick("patch"),
    textDim: pick("textDim"),
    textDepth: pick("textDepth"),
    textHeads: pick("textHeads"),
    timeFeatures: pick("timeFeatures"),
    ...data
  }
}

/** Problems with a resolved spec, as "field: reason" (empty when it is usable). */
export const modelSpecProblems = (spec: ModelSpec): ReadonlyArray<string> => [
  ...(spec.dim % spec.heads === 0 ? [] : [`model.heads: dim ${spec.dim} is not divisible by ${spec.heads} heads`]),
  ...(spec.textDim % spec.textHeads === 0 ? [] : [`model.textHeads: textDim ${spec.textDim} is not divisible by ${spec.textHeads} heads`]),
  ...(spec.resolution % spec.patch === 0 ? [] : [`model.patch: resolution ${spec.resolution} is not divisible by patch ${spec.patch}`]),
  ...(spec.timeFeatures % 2 === 0 ? [] : [`model.timeFeatures: must be even, got ${spec.timeFeatures}`])
]

/** Image tokens per sample. */
export const imageTokens = (spec: ModelSpec) => (spec.resolution / spec.patch) ** 2

/** The learned null-prompt token's id (one past the tokenizer's vocabulary). */
export const nullTokenId = (spec: ModelSpec) => spec.vocabSize
