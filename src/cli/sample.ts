/** `selfe sample`: images for prompts from a checkpoint, in any number of steps, as a captioned grid PNG. */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option, Schema } from "effect"
import { captionGrid } from "../io/caption-grid.ts"
import { writePng } from "../io/png.ts"
import { forBackend, fromConfig } from "../kernels/layers.ts"
import { generateImages } from "../pipeline/generate.ts"
import type { PrecisionChoice } from "../pipeline/config.ts"
import { loadTrainedModel } from "../pipeline/trainedModel.ts"
import { SamplerConfig } from "../selfe/config.ts"

export interface SampleRequest {
  readonly checkpoint: string
  readonly prompts: ReadonlyArray<string>
  readonly imagesPerPrompt: number
  readonly out: string
  /** Sampler fields to set (steps, landing, guidance, omega, eta, seed); the landing defaults to the model's objective. */
  readonly sampler: Record<string, unknown>
  /** Default: SELFE_BACKEND (cpu). */
  readonly backend?: "cpu" | "cuda" | "reference" | undefined
  /** Default auto: bf16-mixed on cuda, f32 elsewhere. */
  readonly precision?: PrecisionChoice | undefined
}

/** Samples a checkpoint (EMA weights) and writes a captioned grid, one row per prompt; returns a summary line. */
export const sampleToPng = (request: SampleRequest) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { model, params, config, step } = yield* loadTrainedModel(request.checkpoint, { precision: request.precision ?? "auto" })
      const sampler = yield* Schema.decodeUnknown(SamplerConfig)({
        landing: config.objective.kind === "self-e" ? "self-e" : "flow-matching",
        ...request.sampler
      })
      const images = yield* generateImages(model, params, request.prompts, request.imagesPerPrompt, sampler, config.data.batchSize)
      const cells = images.map((image, i) => ({ image, caption: request.prompts[Math.floor(i / request.imagesPerPrompt)] as string }))
      yield* writePng(request.out, captionGrid(cells, { columns: request.imagesPerPrompt }))
      return `${request.out}: ${images.length} images, ${sampler.steps} steps, ${model.precision}, ${sampler.landing} landing, ${sampler.guidance} (omega ${sampler.omega}), checkpoint step ${step}`
    })
  ).pipe(Effect.provide(request.backend === undefined ? fromConfig : forBackend(request.backend)))

export const sampleCommand = Command.make(
  "sample",
  {
    checkpoint: Options.file("checkpoint").pipe(Options.withDescription("a checkpoint written by selfe train")),
    prompt: Options.text("prompt").pipe(Options.repeated, Options.withDescription('a prompt, e.g. "a photo of a red circle" (repeatable)')),
    steps: Options.integer("steps").pipe(Options.withDefault(2), Options.withDescription("network evaluations per image")),
    images: Options.integer("images").pipe(Options.withDefault(4), Options.withDescription("images per prompt")),
    landing: Options.choice("landing", ["self-e", "flow-matching"]).pipe(Options.optional, Options.withDescription("s_k = t_{k+1} (self-e) or s_k = t_k (flow-matching); default: how the model was trained")),
    guidance: Options.choice("guidance", ["none", "cfg", "ep-cfg"]).pipe(Options.withDefault("ep-cfg" as const)),
    omega: Options.float("omega").pipe(Options.withDefault(5), Options.withDescription("guidance scale")),
    eta: Options.choice("eta", ["0", "1"]).pipe(Options.withDefault("1" as const), Options.withDescription("1 re-noises between steps (the paper's sampler), 0 is Euler")),
    seed: Options.integer("seed").pipe(Options.withDefault(0)),
    backend: Options.choice("backend", ["cpu", "cuda", "reference"]).pipe(Options.withDefault("cpu" as const)),
    precision: Options.choice("precision", ["auto", "f32", "bf16-mixed"]).pipe(Options.withDefault("auto" as const), Options.withDescription("auto: bf16-mixed on cuda, f32 elsewhere")),
    out: Options.file("out").pipe(Options.withDescription("PNG to write"))
  },
  (args) =>
    Effect.gen(function* () {
      if (args.prompt.length === 0) return yield* Console.error("selfe sample: give at least one --prompt")
      const written = yield* sampleToPng({
        checkpoint: args.checkpoint,
        prompts: args.prompt,
        imagesPerPrompt: args.images,
        out: args.out,
        backend: args.backend,
        precision: args.precision,
        sampler: {
          steps: args.steps,
          ...Option.match(args.landing, { onNone: () => ({}), onSome: (landing) => ({ landing }) }),
          guidance: args.guidance,
          omega: args.omega,
          eta: Number(args.eta),
          seed: args.seed
        }
      })
      yield* Console.log(written)
    })
).pipe(Command.withDescription("sample a checkpoint in any number of steps and write a captioned grid PNG"))
