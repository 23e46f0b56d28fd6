import { Effect } from "effect"
import type { PromptRecord } from "../data/prompts.ts"
import { captionGrid } from "../io/caption-grid.ts"
import { writePng } from "../io/png.ts"
import type { Model } from "../model/model.ts"
import type { ParamSet } from "../nn/params.ts"
import type { SamplerConfig } from "../selfe/config.ts"
import { generateImages } from "./generate.ts"

/** Samples one image per prompt and writes them as a captioned grid PNG. */
export const writeSampleGrid = (
  file: string,
  model: Model,
  params: ParamSet,
  records: ReadonlyArray<PromptRecord>,
  sampler: SamplerConfig,
  batchSize: number,
  label: string
) =>
  Effect.gen(function* () {
    const prompts = records.map((r) => r.prompt)
    const images = yield* generateImages(model, params, prompts, 1, sampler, batchSize)
    const grid = captionGrid(images.map((image, i) => ({ image, caption: `${prompts[i]} (${label})` })))
    yield* writePng(file, grid)
    return file
  })
