/** Writes an evaluation folder (layout in folder.ts): the prompt file plus images from a callback. */
import { FileSystem, Path } from "@effect/platform"
import { Effect } from "effect"
import { PromptRecord } from "../data/prompts.ts"
import { FileWriteError } from "../io/file-errors.ts"
import { writeJsonl } from "../io/jsonl.ts"
import { writePng } from "../io/png.ts"
import type { RgbImage } from "../io/rgb-image.ts"
import { PROMPTS_FILE, promptFolderName, sampleFileName } from "./folder.ts"

export const writeEvaluationFolder = (
  dir: string,
  records: ReadonlyArray<PromptRecord>,
  imagesPerPrompt: number,
  imageFor: (promptIndex: number, sample: number) => RgbImage
): Effect.Effect<void, FileWriteError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const makeFolder = (folder: string) =>
      fs.makeDirectory(folder, { recursive: true }).pipe(
        Effect.mapError((cause) => new FileWriteError({ path: folder, reason: cause.message }))
      )
    yield* makeFolder(dir)
    yield* writeJsonl(PromptRecord, path.join(dir, PROMPTS_FILE), records)
    yield* Effect.forEach(
      records.keys(),
      (promptIndex) =>
        Effect.gen(function* () {
          const folder = path.join(dir, promptFolderName(promptIndex))
          yield* makeFolder(folder)
          for (let sample = 0; sample < imagesPerPrompt; sample++) {
            yield* writePng(path.join(folder, sampleFileName(sample)), imageFor(promptIndex, sample))
          }
        }),
      { concurrency: 8, discard: true }
    )
  })
