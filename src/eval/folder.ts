/**
 * The evaluation folder layout, GenEval's with a shared prompt file:
 *
 *   DIR/prompts.jsonl          one PromptRecord per line; line i (0-based, blank lines skipped) is prompt i
 *   DIR/00000/0000.png         image 0 of prompt 0, ...; any *.png in the folder counts, sorted by name
 *   DIR/00001/...
 *
 * Every prompt needs a folder with at least one PNG, and all images must share one square size.
 */
import { FileSystem, Path } from "@effect/platform"
import { Effect, Schema } from "effect"
import { PromptRecord } from "../data/prompts.ts"
import { Tag } from "../data/world.ts"
import type { FileReadError } from "../io/file-errors.ts"
import { type MalformedJsonlLine, readJsonl } from "../io/jsonl.ts"
import { type PngReadError, readPng } from "../io/png.ts"
import { summarise } from "./aggregate.ts"
import { evaluateImage } from "./evaluate-image.ts"

export const PROMPTS_FILE = "prompts.jsonl"

export const promptFolderName = (promptIndex: number): string => String(promptIndex).padStart(5, "0")
export const sampleFileName = (sample: number): string => `${String(sample).padStart(4, "0")}.png`

export class ImagesFolderNotFound extends Schema.TaggedError<ImagesFolderNotFound>()("ImagesFolderNotFound", {
  path: Schema.String
}) {
  override get message(): string {
    return `image folder ${this.path} does not exist or is not a directory`
  }
}

export class MissingSamples extends Schema.TaggedError<MissingSamples>()("MissingSamples", {
  path: Schema.String,
  prompt: Schema.String
}) {
  override get message(): string {
    return `no PNG images in ${this.path} (for prompt "${this.prompt}")`
  }
}

export class ImageSizeMismatch extends Schema.TaggedError<ImageSizeMismatch>()("ImageSizeMismatch", {
  path: Schema.String,
  expected: Schema.String,
  actual: Schema.String
}) {
  override get message(): string {
    return `image ${this.path} is ${this.actual}, expected ${this.expected}`
  }
}

export type FolderEvaluationError =
  | ImagesFolderNotFound
  | MissingSamples
  | ImageSizeMismatch
  | PngReadError
  | FileReadError
  | MalformedJsonlLine

export const ImageResult = Schema.Struct({
  promptIndex: Schema.Int,
  file: Schema.String,
  tag: Tag,
  prompt: Schema.String,
  correct: Schema.Boolean,
  reasons: Schema.Array(Schema.String)
})
export type ImageResult = typeof ImageResult.Type

export const EvaluationReport = Schema.Struct({
  overall: Schema.Number,
  tags: Schema.Array(Schema.Struct({ tag: Tag, correct: Schema.Int, total: Schema.Int, accuracy: Schema.Number })),
  images: Schema.Array(ImageResult)
})
export type EvaluationReport = typeof EvaluationReport.Type

export interface FolderEvaluationOptions {
  /** Prompt file; defaults to DIR/prompts.jsonl. */
  readonly promptsPath?: string
  /** Required image side; defaults to the size of the first image. */
  readonly size?: number
}

const describeSize = (width: number, height: number) => `${width}x${height}`

export const evaluateFolder = (
  dir: string,
  options: FolderEvaluationOptions = {}
): Effect.Effect<EvaluationReport, FolderEvaluationError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const isDirectory = (target: string) =>
      fs.stat(target).pipe(
        Effect.map((info) => info.type === "Directory"),
        Effect.orElseSucceed(() => false)
      )
    if (!(yield* isDirectory(dir))) return yield* new ImagesFolderNotFound({ path: dir })
    const records = yield* readJsonl(PromptRecord, options.promptsPath ?? path.join(dir, PROMPTS_FILE))
    let expectedSize = options.size
    const results: Array<ImageResult> = []
    for (const [promptIndex, record] of records.entries()) {
      const folder = path.join(dir, promptFolderName(promptIndex))
      const entries = (yield* isDirectory(folder))
        ? yield* fs.readDirectory(folder).pipe(Effect.orElseSucceed(() => []))
        : []
      const files = entries.filter((name) => name.toLowerCase().endsWith(".png")).sort()
      if (files.length === 0) return yield* new MissingSamples({ path: folder, prompt: record.prompt })
      const images = yield* Effect.forEach(files, (name) => readPng(path.join(folder, name)), { concurrency: 8 })
      for (const [k, image] of images.entries()) {
        const file = path.join(folder, files[k])
        expectedSize ??= image.width
        if (image.width !== expectedSize || image.height !== expectedSize) {
          return yield* new ImageSizeMismatch({
            path: file,
            expected: describeSize(expectedSize, expectedSize),
            actual: describeSize(image.width, image.height)
          })
        }
        const { correct, reasons } = evaluateImage(record, image)
        results.push({ promptIndex, file, tag: record.tag, prompt: record.prompt, correct, reasons })
      }
    }
    return { ...summarise(results), images: results }
  })
