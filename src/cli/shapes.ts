/**
 * `selfe shapes ...`: look at the ShapeEval world and write evaluation folders.
 *   render  a captioned grid PNG of training pairs
 *   export  ground-truth (or noise) images plus prompts.jsonl in the evaluation folder layout
 *   prompts the evaluation prompt set as JSONL
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option, Schema } from "effect"
import { decodeShapeEvalConfig } from "../data/config.ts"
import { evaluationPrompts, groundTruthScene, heldOutPrompts, IMAGES_PER_PROMPT } from "../data/eval-sets.ts"
import { type HeldOut, heldOut } from "../data/held-out.ts"
import { PromptRecord } from "../data/prompts.ts"
import { renderScene } from "../data/render.ts"
import { Rng } from "../data/rng.ts"
import { trainingPairs } from "../data/training-pairs.ts"
import { TAGS } from "../data/world.ts"
import { writeEvaluationFolder } from "../eval/export-folder.ts"
import { noiseImage } from "../eval/noise-image.ts"
import { captionGrid } from "../io/caption-grid.ts"
import { formatJsonl } from "../io/jsonl.ts"
import { writePng } from "../io/png.ts"
import { rgbFromChw } from "../io/rgb-image.ts"
import { writeTextFile } from "../io/text-file.ts"

const seed = Options.integer("seed").pipe(Options.withDefault(0), Options.withDescription("seed of every random choice"))
const size = Options.integer("size").pipe(
  Options.withDefault(32),
  Options.withDescription("image side in pixels (16 to 128)")
)
const promptSet = Options.choice("set", ["eval", "heldout"]).pipe(
  Options.withDefault("eval"),
  Options.withDescription("eval: GenEval-sized main set; heldout: prompts naming colour-shape pairs training never shows")
)

/** A count option that must be a positive integer. */
const positive = (name: string, fallback: number, description: string) =>
  Options.integer(name).pipe(
    Options.withSchema(Schema.Int.pipe(Schema.positive())),
    Options.withDefault(fallback),
    Options.withDescription(description)
  )

const promptsOf = (set: "eval" | "heldout", held: HeldOut) =>
  set === "eval" ? evaluationPrompts(held) : heldOutPrompts(held)

const render = Command.make(
  "render",
  {
    n: positive("n", 64, "number of images"),
    out: Options.file("out").pipe(Options.withDescription("PNG file to write")),
    seed,
    size,
    tag: Options.choice("tag", TAGS).pipe(Options.optional, Options.withDescription("only prompts of this GenEval tag"))
  },
  ({ n, out, seed, size, tag }) =>
    Effect.gen(function* () {
      const tags = Option.match(tag, { onNone: () => TAGS, onSome: (only) => [only] })
      const config = yield* decodeShapeEvalConfig({ seed, resolution: size, tags })
      const pairs = trainingPairs(config)
      const cells = Array.from({ length: n }, (_, index) => {
        const pair = pairs(index)
        return { image: rgbFromChw(renderScene(pair.scene), size, size), caption: pair.record.prompt }
      })
      yield* writePng(out, captionGrid(cells))
      yield* Console.log(`wrote ${out}: ${n} training pairs at ${size}x${size}`)
    })
).pipe(Command.withDescription("render a captioned grid of training pairs to a PNG"))

const exportSet = Command.make(
  "export",
  {
    out: Options.directory("out").pipe(Options.withDescription("folder to write (created if missing)")),
    set: promptSet,
    imagesPerPrompt: positive("images-per-prompt", IMAGES_PER_PROMPT, "images written for each prompt"),
    seed,
    size,
    noise: Options.boolean("noise").pipe(
      Options.withDescription("write pure noise instead of ground truth (a negative control)")
    )
  },
  ({ out, set, imagesPerPrompt, seed, size, noise }) =>
    Effect.gen(function* () {
      const config = yield* decodeShapeEvalConfig({ seed, resolution: size })
      const held = heldOut(config.heldOutPairs)
      const records = promptsOf(set, held)
      const groundTruth = (promptIndex: number, sample: number) =>
        rgbFromChw(renderScene(groundTruthScene(records[promptIndex], size, held, seed, promptIndex, sample)), size, size)
      yield* writeEvaluationFolder(out, records, imagesPerPrompt, (promptIndex, sample) =>
        noise ? noiseImage(size, Rng.at(seed, promptIndex, sample)) : groundTruth(promptIndex, sample)
      )
      const kind = noise ? "noise" : "ground-truth"
      yield* Console.log(`wrote ${out}: ${records.length} prompts x ${imagesPerPrompt} ${kind} images at ${size}x${size}`)
    })
).pipe(Command.withDescription("write an evaluation folder: prompts.jsonl and one PNG folder per prompt"))

const prompts = Command.make(
  "prompts",
  {
    set: promptSet,
    out: Options.file("out").pipe(
      Options.optional,
      Options.withDescription("JSONL file to write (default: standard output)")
    )
  },
  ({ set, out }) =>
    Effect.gen(function* () {
      const config = yield* decodeShapeEvalConfig({})
      const text = formatJsonl(PromptRecord, promptsOf(set, heldOut(config.heldOutPairs)))
      yield* Option.match(out, { onNone: () => Console.log(text.trimEnd()), onSome: (path) => writeTextFile(path, text) })
    })
).pipe(Command.withDescription("print or write an evaluation prompt set as JSONL"))

export const shapesCommand = Command.make("shapes").pipe(
  Command.withDescription("the ShapeEval synthetic world: look at it, export evaluation folders"),
  Command.withSubcommands([render, exportSet, prompts])
)
