/**
 * ShapeEval throughput on one core: scenes/s for layout + rasterising, batches/s for the training
 * stream (render + tokenize + Stream machinery), images/s for the pixel evaluator.
 * Run: npm run bench:data
 */
import { Effect, Stream } from "effect"
import { defaultShapeEvalConfig, type ShapeEvalConfig } from "../src/data/config.ts"
import { renderScene } from "../src/data/render.ts"
import { trainingBatches } from "../src/data/stream.ts"
import { trainingPairs } from "../src/data/training-pairs.ts"
import { evaluateImage } from "../src/eval/evaluate-image.ts"
import { rgbFromChw } from "../src/io/rgb-image.ts"

const MEASURE_SECONDS = 2

/** Runs `work` (which reports how many items it did) until MEASURE_SECONDS have passed; items per second. */
const throughput = (work: () => number): number => {
  work()
  const start = performance.now()
  let items = 0
  while (performance.now() - start < MEASURE_SECONDS * 1000) items += work()
  return items / ((performance.now() - start) / 1000)
}

const benchmarkScenes = (config: ShapeEvalConfig): number => {
  const pairs = trainingPairs(config)
  const out = new Float32Array(3 * config.resolution * config.resolution)
  let index = 0
  return throughput(() => {
    for (let k = 0; k < 100; k++) renderScene(pairs(index++).scene, out)
    return 100
  })
}

/** Batches per second through the whole stream (prefetch included), after a short warm-up. */
const benchmarkStream = async (config: ShapeEvalConfig): Promise<number> => {
  const warmUp = 10
  await Effect.runPromise(Stream.runDrain(Stream.take(trainingBatches(config), warmUp)))
  const start = performance.now()
  const batches = await Effect.runPromise(
    Stream.runCount(
      Stream.takeUntil(trainingBatches(config, warmUp), () => performance.now() - start > MEASURE_SECONDS * 1000)
    )
  )
  return batches / ((performance.now() - start) / 1000)
}

const benchmarkEvaluator = (config: ShapeEvalConfig): number => {
  const pairs = trainingPairs(config)
  const size = config.resolution
  const images = Array.from({ length: 200 }, (_, index) => {
    const pair = pairs(index)
    return { record: pair.record, image: rgbFromChw(renderScene(pair.scene), size, size) }
  })
  return throughput(() => {
    for (const { record, image } of images) evaluateImage(record, image)
    return images.length
  })
}

const rows: Array<string> = []
for (const resolution of [32, 64]) {
  const config = { ...defaultShapeEvalConfig, resolution }
  const scenes = benchmarkScenes(config)
  const batchesPerSecond = await benchmarkStream(config)
  const evaluated = benchmarkEvaluator(config)
  const pairsPerSecond = batchesPerSecond * config.batchSize
  const cells = [
    `${resolution}x${resolution}`,
    scenes.toFixed(0),
    `${batchesPerSecond.toFixed(1)} (${pairsPerSecond.toFixed(0)} pairs/s)`,
    evaluated.toFixed(0)
  ]
  rows.push(`| ${cells.join(" | ")} |`)
}
const batchSize = defaultShapeEvalConfig.batchSize
console.log(`| resolution | renderer scenes/s | stream batches/s (batch ${batchSize}) | evaluator images/s |`)
console.log("|---|---|---|---|")
for (const row of rows) console.log(row)
