import { Effect } from "effect"
import type { PromptRecord } from "../data/prompts.ts"
import { makeTokenizer, shapeEvalVocabulary } from "../data/tokenizer.ts"
import { summarise, type Summary } from "../eval/aggregate.ts"
import { evaluateImage } from "../eval/evaluate-image.ts"
import { Kernels } from "../kernels/Kernels.ts"
import { type RgbImage, rgbFromChw } from "../io/rgb-image.ts"
import type { Model } from "../model/model.ts"
import type { ParamSet } from "../nn/params.ts"
import type { SamplerConfig } from "../selfe/config.ts"
import { sample } from "../selfe/sampler.ts"

/** Images for prompts, `imagesPerPrompt` each, in batches; image i of prompt p is at p * imagesPerPrompt + i. */
export const generateImages = (
  model: Model,
  params: ParamSet,
  prompts: ReadonlyArray<string>,
  imagesPerPrompt: number,
  sampler: SamplerConfig,
  batchSize: number,
  onBatch: (done: number, total: number) => Effect.Effect<void> = () => Effect.void
) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const spec = model.spec
    const tokenizer = makeTokenizer(shapeEvalVocabulary, spec.maxTokens)
    const rows = prompts.flatMap((prompt) => Array.from({ length: imagesPerPrompt }, () => prompt))
    const images: Array<RgbImage> = []
    for (let start = 0, draw = 0; start < rows.length; start += batchSize, draw++) {
      const chunk = rows.slice(start, start + batchSize)
      const encoded = tokenizer.encode(chunk)
      const pixels = yield* Effect.scoped(
        Effect.flatMap(sample(model, params, { ...encoded, nullRows: [] }, sampler, draw), (x) => k.read(x))
      )
      const plane = 3 * spec.resolution * spec.resolution
      chunk.forEach((_, i) => images.push(rgbFromChw(Float32Array.from(pixels.subarray(i * plane, (i + 1) * plane)), spec.resolution, spec.resolution)))
      yield* onBatch(images.length, rows.length)
    }
    return images
  })

/** GenEval's score of generated images against their prompt records (images laid out as generateImages does). */
export const scoreImages = (records: ReadonlyArray<PromptRecord>, images: ReadonlyArray<RgbImage>, imagesPerPrompt: number): Summary =>
  summarise(
    images.map((image, i) => {
      const record = records[Math.floor(i / imagesPerPrompt)] as PromptRecord
      return { tag: record.tag, correct: evaluateImage(record, image).correct }
    })
  )
