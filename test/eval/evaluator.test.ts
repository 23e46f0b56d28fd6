/**
 * The evaluator judged on images with known answers: near-perfect on freshly rendered ground truth
 * (also after blur and noise, and after a PNG round trip), near-zero on noise, blank images and
 * prompts shuffled against their images.
 */
import { Effect } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import { defaultShapeEvalConfig } from "../../src/data/config.ts"
import { evaluationPrompts, groundTruthScene, heldOutPrompts, IMAGES_PER_PROMPT } from "../../src/data/eval-sets.ts"
import { heldOut } from "../../src/data/held-out.ts"
import type { PromptRecord } from "../../src/data/prompts.ts"
import { renderScene } from "../../src/data/render.ts"
import { emptyScene } from "../../src/data/scene.ts"
import { Rng } from "../../src/data/rng.ts"
import { TAGS } from "../../src/data/world.ts"
import { formatSummary, type Summary, summarise } from "../../src/eval/aggregate.ts"
import { evaluateImage } from "../../src/eval/evaluate-image.ts"
import { noiseImage } from "../../src/eval/noise-image.ts"
import { decodePng, encodePng } from "../../src/io/png.ts"
import { type RgbImage, rgbFromChw } from "../../src/io/rgb-image.ts"
import { addNoise, blur } from "./degrade.ts"

const held = heldOut(defaultShapeEvalConfig.heldOutPairs)
const evalSet = evaluationPrompts(held)
const SEED = 11

interface Case {
  readonly record: PromptRecord
  readonly image: RgbImage
}

const score = (cases: ReadonlyArray<Case>): Summary =>
  summarise(cases.map(({ record, image }) => ({ tag: record.tag, correct: evaluateImage(record, image).correct })))

/** Every prompt of `records` with `perPrompt` images made by `imageOf` from the ground-truth render. */
const casesFor = (
  records: ReadonlyArray<PromptRecord>,
  size: number,
  perPrompt: number,
  imageOf: (chw: Float32Array, rng: Rng) => RgbImage
): Array<Case> =>
  records.flatMap((record, promptIndex) =>
    Array.from({ length: perPrompt }, (_, sample) => {
      const chw = renderScene(groundTruthScene(record, size, held, SEED, promptIndex, sample))
      return { record, image: imageOf(chw, Rng.at(SEED, promptIndex, sample, 7)) }
    })
  )

const pngRoundTrip = (image: RgbImage): Effect.Effect<RgbImage, unknown> =>
  encodePng(image).pipe(Effect.flatMap((bytes) => decodePng(bytes)))

const expectEveryTag = (summary: Summary, check: (accuracy: number) => void) => {
  expect(summary.tags.map((score) => score.tag)).toEqual(TAGS)
  for (const tag of summary.tags) check(tag.accuracy)
}

/** A background with nothing on it. */
const blankImage = (size: number, rng: Rng): RgbImage => rgbFromChw(renderScene(emptyScene(size, rng)), size, size)

const results: Record<string, Summary> = {}

describe("evaluator on 32x32 images (GenEval evaluation set, 4 images per prompt)", () => {
  beforeAll(async () => {
    const truth = casesFor(evalSet, 32, IMAGES_PER_PROMPT, (chw) => rgbFromChw(chw, 32, 32))
    const decoded = await Effect.runPromise(
      Effect.forEach(truth, (c) => Effect.map(pngRoundTrip(c.image), (image) => ({ record: c.record, image })), { concurrency: 8 })
    )
    results["ground truth (PNG round trip)"] = score(decoded)
    results["blur + noise 0.05"] = score(
      casesFor(evalSet, 32, IMAGES_PER_PROMPT, (chw, rng) => rgbFromChw(addNoise(blur(chw, 32), 0.05, rng), 32, 32))
    )
    results["pure noise"] = score(truth.map((c, k) => ({ record: c.record, image: noiseImage(32, Rng.at(SEED, k, 1)) })))
    results["blank background"] = score(truth.map((c, k) => ({ record: c.record, image: blankImage(32, Rng.at(SEED, k, 2)) })))
    const order = new Rng(SEED).shuffle(truth.map((_, k) => k))
    results["shuffled prompts"] = score(truth.map((c, k) => ({ record: truth[order[k]].record, image: c.image })))
    console.log(
      Object.entries(results)
        .map(([name, summary]) => `${name}\n${formatSummary(summary)}`)
        .join("\n\n")
    )
  })

  it("scores ground truth at least 0.98 in every tag after a PNG round trip", () => {
    expectEveryTag(results["ground truth (PNG round trip)"], (accuracy) => expect(accuracy).toBeGreaterThanOrEqual(0.98))
  })

  it("scores blurred and noisy ground truth at least 0.98 in every tag", () => {
    expectEveryTag(results["blur + noise 0.05"], (accuracy) => expect(accuracy).toBeGreaterThanOrEqual(0.98))
  })

  it("scores pure noise at most 0.05", () => {
    expect(results["pure noise"].overall).toBeLessThanOrEqual(0.05)
  })

  it("scores blank backgrounds at most 0.05", () => {
    expect(results["blank background"].overall).toBeLessThanOrEqual(0.05)
  })

  it("scores prompts shuffled against their images at most 0.10", () => {
    expect(results["shuffled prompts"].overall).toBeLessThanOrEqual(0.1)
  })
})

describe("evaluator on other inputs", () => {
  it("scores the held-out set's ground truth at least 0.98 per tag", () => {
    const summary = score(casesFor(heldOutPrompts(held), 32, 2, (chw) => rgbFromChw(chw, 32, 32)))
    expect(summary.tags.map((score) => score.tag)).toEqual(["colors", "color_attr"])
    for (const tag of summary.tags) expect(tag.accuracy).toBeGreaterThanOrEqual(0.98)
  })

  it("scores 64x64 and 128x128 ground truth, clean and blurred with noise, at least 0.98 per tag", () => {
    // One image for every second prompt at 64 and every eighth at 128 (16 times the pixels of 32) keeps the test quick.
    const everyNth = (n: number) => evalSet.filter((_, k) => k % n === 0)
    for (const [size, records] of [[64, everyNth(2)], [128, everyNth(8)]] as const) {
      const clean = score(casesFor(records, size, 1, (chw) => rgbFromChw(chw, size, size)))
      const degraded = score(casesFor(records, size, 1, (chw, rng) => rgbFromChw(addNoise(blur(chw, size), 0.05, rng), size, size)))
      expectEveryTag(clean, (accuracy) => expect(accuracy).toBeGreaterThanOrEqual(0.98))
      expectEveryTag(degraded, (accuracy) => expect(accuracy).toBeGreaterThanOrEqual(0.98))
    }
  })

  it("scores flat images (black, grey, white) zero", () => {
    for (const level of [0, 128, 255]) {
      const image: RgbImage = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(level) }
      expect(score(evalSet.map((record) => ({ record, image }))).overall).toBe(0)
    }
  })
})
