import { Path } from "@effect/platform"
import { Effect } from "effect"
import type { PromptRecord } from "../data/prompts.ts"
import type { Summary } from "../eval/aggregate.ts"
import { captionGrid } from "../io/caption-grid.ts"
import type { Ink } from "../io/bitmap-font.ts"
import { linePlot } from "../io/linePlot.ts"
import { writePng } from "../io/png.ts"
import type { Model } from "../model/model.ts"
import type { ParamSet } from "../nn/params.ts"
import type { SamplerConfig } from "../selfe/config.ts"
import { generateImages, scoreImages } from "./generate.ts"

/** A trained model to compare, and the landing rule its sampler uses. */
export interface Contender {
  readonly label: string
  readonly model: Model
  readonly params: ParamSet
  readonly landing: SamplerConfig["landing"]
}

export interface AnyStepRow {
  readonly label: string
  readonly steps: number
  readonly summary: Summary
  readonly seconds: number
}

const COLORS: ReadonlyArray<Ink> = [
  [200, 50, 40],
  [40, 90, 200],
  [40, 150, 60],
  [150, 60, 170]
]

/**
 * The any-step comparison: every contender samples every prompt at every step count, images are scored
 * GenEval-style, and a grid of the first prompts is written per (contender, steps) into `outDir`.
 */
export const anyStepTable = (
  contenders: ReadonlyArray<Contender>,
  records: ReadonlyArray<PromptRecord>,
  stepCounts: ReadonlyArray<number>,
  imagesPerPrompt: number,
  sampler: SamplerConfig,
  batchSize: number,
  outDir: string,
  onRow: (row: AnyStepRow) => Effect.Effect<void> = () => Effect.void
) =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const rows: Array<AnyStepRow> = []
    const prompts = records.map((r) => r.prompt)
    for (const contender of contenders)
      for (const steps of stepCounts) {
        const started = performance.now()
        const config = { ...sampler, steps, landing: contender.landing }
        const images = yield* generateImages(contender.model, contender.params, prompts, imagesPerPrompt, config, batchSize)
        const row = { label: contender.label, steps, summary: scoreImages(records, images, imagesPerPrompt), seconds: (performance.now() - started) / 1000 }
        rows.push(row)
        yield* onRow(row)
        // Prompts spread over the whole set, so the grid shows every tag.
        const shown = Math.min(24, records.length)
        const cells = Array.from({ length: shown }, (_, i) => {
          const p = Math.floor((i * records.length) / shown)
          return { image: images[p * imagesPerPrompt]!, caption: prompts[p] as string }
        })
        yield* writePng(path.join(outDir, `grid-${contender.label}-${steps}steps.png`), captionGrid(cells, { columns: 6 }))
      }
    const plot = linePlot({
      title: "ShapeEval overall vs sampling steps",
      xLabel: "steps (log scale)",
      yLabel: "overall",
      logX: true,
      yMin: 0,
      yMax: 1,
      series: contenders.map((c, i) => ({
        label: c.label,
        color: COLORS[i % COLORS.length] as Ink,
        points: rows.filter((r) => r.label === c.label).map((r) => ({ x: r.steps, y: r.summary.overall }))
      }))
    })
    yield* writePng(path.join(outDir, "overall-vs-steps.png"), plot)
    return rows
  })

/** The table as Markdown: one row per contender and step count, GenEval's six tags and the overall. */
export const formatAnyStepTable = (rows: ReadonlyArray<AnyStepRow>): string => {
  const tags = rows[0]?.summary.tags.map((t) => t.tag) ?? []
  const header = `| model | steps | overall | ${tags.join(" | ")} | seconds |`
  const rule = `|---|---|---|${tags.map(() => "---").join("|")}|---|`
  const lines = rows.map(
    (r) => `| ${r.label} | ${r.steps} | ${r.summary.overall.toFixed(4)} | ${r.summary.tags.map((t) => t.accuracy.toFixed(3)).join(" | ")} | ${r.seconds.toFixed(1)} |`
  )
  return [header, rule, ...lines].join("\n")
}
