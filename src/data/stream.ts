/**
 * Training batches as an Effect Stream. Batch k holds pairs k*B .. k*B+B-1 of the seeded pair
 * sequence, so the stream is resumable: `trainingBatches(config, k)` yields exactly the batches the
 * original stream yields after its first k. Store `batch.step + 1` with a checkpoint to resume.
 */
import { Effect, Stream } from "effect"
import type { ShapeEvalConfig } from "./config.ts"
import { makeRenderPool, type RenderWorkerError, renderWorkerCount } from "./renderPool.ts"
import { renderScene } from "./render.ts"
import { makeTokenizer, shapeEvalVocabulary, type Tokenizer } from "./tokenizer.ts"
import { type TrainingPairSource, trainingPairs } from "./training-pairs.ts"
import type { PromptRecord } from "./prompts.ts"

export interface Batch {
  /** Position of this batch in the stream (0-based). */
  readonly step: number
  readonly batchSize: number
  /** Image side in pixels. */
  readonly resolution: number
  /** Token row length. */
  readonly maxTokens: number
  /** [batchSize, 3, resolution, resolution], values in [-1, 1]. */
  readonly images: Float32Array
  /** [batchSize, maxTokens] token ids, padded with 0. */
  readonly tokens: Int32Array
  /** [batchSize, maxTokens], 1 = real token, 0 = padding. */
  readonly mask: Int32Array
  readonly prompts: ReadonlyArray<string>
  /** The clauses each image satisfies (tag included), for per-tag diagnostics. */
  readonly records: ReadonlyArray<PromptRecord>
}

export interface BatchRenderer {
  readonly render: (step: number) => Batch
}

/** Renders any batch of the stream directly (no stream machinery): the primitive behind `trainingBatches`. */
export const batchRenderer = (
  config: ShapeEvalConfig,
  tokenizer: Tokenizer = makeTokenizer(shapeEvalVocabulary, config.maxTokens)
): BatchRenderer => {
  const pairs: TrainingPairSource = trainingPairs(config)
  const { batchSize, resolution, maxTokens } = config
  const imageSize = 3 * resolution * resolution
  return {
    render: (step) => {
      const images = new Float32Array(batchSize * imageSize)
      const records: Array<PromptRecord> = []
      for (let row = 0; row < batchSize; row++) {
        const pair = pairs(step * batchSize + row)
        renderScene(pair.scene, images, row * imageSize)
        records.push(pair.record)
      }
      const prompts = records.map((record) => record.prompt)
      const { tokens, mask } = tokenizer.encode(prompts)
      return { step, batchSize, resolution, maxTokens, images, tokens, mask, prompts, records }
    }
  }
}

/**
 * The infinite training stream from batch `fromStep`, drawn on `config.workers` worker threads (as many batches
 * in flight as workers) or, with none, on the consumer's thread; up to `config.prefetch` finished batches wait
 * beyond those.
 */
export const trainingBatches = (config: ShapeEvalConfig, fromStep = 0): Stream.Stream<Batch, RenderWorkerError> => {
  const steps = Stream.iterate(fromStep, (step) => step + 1)
  const workers = renderWorkerCount(config.workers)
  const renderHere = (renderer: BatchRenderer) => Stream.mapEffect(steps, (step) => Effect.sync(() => renderer.render(step)))
  const batches: Stream.Stream<Batch, RenderWorkerError> =
    workers === 0
      ? renderHere(batchRenderer(config))
      : Stream.unwrapScoped(
          Effect.map(makeRenderPool(config, workers), (pool) => Stream.mapEffect(steps, pool.render, { concurrency: workers }))
        )
  return config.prefetch > 0 ? Stream.buffer(batches, { capacity: config.prefetch }) : batches
}
