/**
 * ShapeEval throughput: scenes/s for layout + rasterising on one core, batches/s for the training stream
 * (render + tokenize + Stream machinery) drawn on the consumer's thread and on the render workers
 * (`data.workers: "auto"`), the time a training loop working 25 ms a step spends taking each batch (what its
 * thread pays for the data), and images/s for the pixel evaluator on one core.
 * Run: npm run bench:data
 */
import { Chunk, Effect, Stream } from "effect"
import { cpus } from "node:os"
import { defaultShapeEvalConfig, type ShapeEvalConfig } from "../src/data/config.ts"
import { renderScene } from "../src/data/render.ts"
import { renderWorkerCount } from "../src/data/renderPool.ts"
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

/** The host work of a training step, as a loop that uses its thread for `ms` between batches. */
const work = (ms: number) => {
  const until = performance.now() + ms
  let x = 0
  while (performance.now() < until) x += Math.sqrt(x + 1)
  return x
}

/**
 * Batches per second through one stream (prefetch and workers included) whose consumer works `stepMs` between
 * batches, and the milliseconds per batch it spent taking them (rendering, or waiting for and receiving them):
 * what its thread pays for the data. 30 batches of warm-up (the workers started, their code warm), then
 * MEASURE_SECONDS.
 */
const benchmarkStream = (config: ShapeEvalConfig, stepMs: number) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pull = yield* Stream.toPull(trainingBatches(config))
        let ready = 0
        const take = Effect.suspend(() => (ready > 0 ? Effect.sync(() => ready--) : Effect.map(Effect.orDie(pull), (chunk) => (ready = Chunk.size(chunk) - 1))))
        for (let n = 0; n < 30; n++) {
          yield* take
          work(stepMs)
        }
        const start = performance.now()
        let batches = 0
        let taking = 0
        while (performance.now() - start < MEASURE_SECONDS * 1000) {
          const taken = performance.now()
          yield* take
          taking += performance.now() - taken
          batches++
          work(stepMs)
        }
        return { batchesPerSecond: batches / ((performance.now() - start) / 1000), takeMs: taking / batches }
      })
    )
  )

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

const workers = renderWorkerCount("auto")
// A loop's thread working 25 ms a step: the order of a DiT-S bf16-mixed step's JS work on the dev VM (BENCHMARKS.md).
const STEP_MS = 25
const stream = async (config: ShapeEvalConfig) =>
  `${(await benchmarkStream(config, 0)).batchesPerSecond.toFixed(1)} | ${(await benchmarkStream(config, STEP_MS)).takeMs.toFixed(2)}`
const rows: Array<string> = []
for (const resolution of [32, 64, 128]) {
  const config = { ...defaultShapeEvalConfig, resolution }
  const scenes = benchmarkScenes(config)
  const here = await stream({ ...config, workers: 0 })
  const onWorkers = workers === 0 ? "— | —" : await stream({ ...config, workers })
  const evaluated = benchmarkEvaluator(config)
  rows.push(`| ${resolution}x${resolution} | ${scenes.toFixed(0)} | ${here} | ${onWorkers} | ${evaluated.toFixed(0)} |`)
}
const { batchSize, prefetch } = defaultShapeEvalConfig
console.log(`${cpus()[0]?.model ?? "cpu"} x${cpus().length}, node ${process.version}; batch ${batchSize}, prefetch ${prefetch}; data.workers "auto" = ${workers} here`)
console.log(`| resolution | renderer scenes/s | stream batches/s, no workers | taking a batch beside ${STEP_MS} ms steps (ms), no workers | stream batches/s, ${workers} worker(s) | taking a batch beside ${STEP_MS} ms steps (ms), ${workers} worker(s) | evaluator images/s |`)
console.log("|---|---|---|---|---|---|---|")
for (const row of rows) console.log(row)
