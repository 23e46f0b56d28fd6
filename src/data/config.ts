/**
 * ShapeEval's data configuration: every knob of the synthetic world and its training stream, with
 * defaults, so `Schema.decodeUnknown(ShapeEvalConfig)({})` is a complete, valid config.
 */
import { Effect, Schema } from "effect"
import { describeParseError } from "../io/parse-issues.ts"
import { ColorShapePair, COLORS, MAX_COUNT, SHAPES, Tag, TAGS } from "./world.ts"

/** Longest prompt any template produces, in words ("a photo of an orange triangle and a blue diamond"). */
export const LONGEST_PROMPT_WORDS = 10

/** Held out by default: one pair per shape but the oval, each with a different colour. */
export const DEFAULT_HELD_OUT_PAIRS: ReadonlyArray<ColorShapePair> = [
  { color: "blue", shape: "triangle" },
  { color: "red", shape: "square" },
  { color: "green", shape: "circle" },
  { color: "yellow", shape: "diamond" }
]

const field = <S extends Schema.Schema.Any>(schema: S, value: Schema.Schema.Type<S>, description: string) =>
  Schema.optionalWith(schema, { default: () => value }).annotations({ description })

export const ShapeEvalConfig = Schema.Struct({
  resolution: field(Schema.Int.pipe(Schema.between(16, 128)), 32, "image side in pixels (square images)"),
  maxObjects: field(
    Schema.Int.pipe(Schema.between(2, MAX_COUNT)),
    MAX_COUNT,
    "largest object count a training prompt asks for (counting prompts use 2 to this)"
  ),
  maxTokens: field(
    Schema.Int.pipe(Schema.between(LONGEST_PROMPT_WORDS, 256)),
    16,
    "token row length; prompts are padded to it"
  ),
  seed: field(Schema.NonNegativeInt, 0, "seed of the training stream; batch k is a pure function of (seed, k)"),
  heldOutPairs: field(
    Schema.Array(ColorShapePair),
    DEFAULT_HELD_OUT_PAIRS,
    "colour-shape pairs never rendered in training scenes (compositional generalisation test)"
  ),
  batchSize: field(Schema.Int.pipe(Schema.positive()), 64, "pairs per training batch"),
  prefetch: field(Schema.NonNegativeInt, 4, "rendered batches kept ready ahead of the consumer (beyond those the workers are drawing)"),
  workers: field(
    Schema.Union(Schema.Literal("auto"), Schema.NonNegativeInt.pipe(Schema.lessThanOrEqualTo(64))),
    "auto",
    "threads that render batches off the training loop's thread (auto: one per core but one, at most 4; 0: none)"
  ),
  tags: field(Schema.Array(Tag).pipe(Schema.minItems(1)), TAGS, "GenEval tags mixed (uniformly) in the training stream")
}).pipe(
  Schema.filter((config) => {
    // color_attr needs two distinct colours on distinct shapes, and every shape some colour.
    const starved = SHAPES.filter(
      (shape) => config.heldOutPairs.filter((pair) => pair.shape === shape).length > COLORS.length - 2
    )
    return starved.length === 0 ? undefined : `held-out pairs leave fewer than two colours for ${starved.join(", ")}`
  })
)
export type ShapeEvalConfig = typeof ShapeEvalConfig.Type

export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", { reason: Schema.String }) {
  override get message(): string {
    return `invalid ShapeEval config: ${this.reason}`
  }
}

/** Decodes a partial config (missing fields take their defaults); a bad field fails naming its path. */
export const decodeShapeEvalConfig = (input: unknown): Effect.Effect<ShapeEvalConfig, InvalidConfig> =>
  Schema.decodeUnknown(ShapeEvalConfig)(input, { onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => new InvalidConfig({ reason: describeParseError(error) }))
  )

/** The all-defaults config. */
export const defaultShapeEvalConfig: ShapeEvalConfig = Schema.decodeUnknownSync(ShapeEvalConfig)({})
