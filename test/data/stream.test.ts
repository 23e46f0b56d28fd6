import { Chunk, Effect, Either, Stream } from "effect"
import { describe, expect, it } from "vitest"
import { decodeShapeEvalConfig, defaultShapeEvalConfig, type ShapeEvalConfig } from "../../src/data/config.ts"
import type { RenderWorkerError } from "../../src/data/renderPool.ts"
import { type Batch, batchRenderer, trainingBatches } from "../../src/data/stream.ts"
import { makeTokenizer, shapeEvalVocabulary } from "../../src/data/tokenizer.ts"
import { TAGS } from "../../src/data/world.ts"

const config: ShapeEvalConfig = { ...defaultShapeEvalConfig, batchSize: 8, prefetch: 2, seed: 3 }
const take = (stream: Stream.Stream<Batch, RenderWorkerError>, n: number) =>
  Effect.runPromise(Stream.runCollect(Stream.take(stream, n))).then(Chunk.toReadonlyArray)

describe("training batches", () => {
  it("carry images [B,3,H,W], tokens and mask [B,L], prompts and their records", async () => {
    const [batch] = await take(trainingBatches(config), 1)
    expect(batch.step).toBe(0)
    expect(batch.images).toHaveLength(8 * 3 * 32 * 32)
    expect(batch.tokens).toHaveLength(8 * 16)
    expect(batch.mask).toHaveLength(8 * 16)
    expect(batch.prompts).toHaveLength(8)
    expect(batch.records.map((record) => record.prompt)).toEqual(batch.prompts)
    const tokenizer = makeTokenizer(shapeEvalVocabulary, 16)
    expect(batch.tokens).toEqual(tokenizer.encode(batch.prompts).tokens)
    expect(batch.mask).toEqual(tokenizer.encode(batch.prompts).mask)
  })

  it("resume: the stream from step k yields the original stream's batches after its first k", async () => {
    const original = await take(trainingBatches(config), 6)
    const resumed = await take(trainingBatches(config, 4), 2)
    expect(resumed.map((batch) => batch.step)).toEqual([4, 5])
    for (const [k, batch] of resumed.entries()) {
      expect(batch.images).toEqual(original[4 + k].images)
      expect(batch.tokens).toEqual(original[4 + k].tokens)
      expect(batch.prompts).toEqual(original[4 + k].prompts)
    }
  })

  it("do not depend on prefetching or render workers, and change with the seed", async () => {
    const buffered = await take(trainingBatches(config), 3)
    const unbuffered = await take(trainingBatches({ ...config, prefetch: 0, workers: 0 }), 3)
    expect(unbuffered.map((batch) => batch.images)).toEqual(buffered.map((batch) => batch.images))
    const reseeded = batchRenderer({ ...config, seed: 4 }).render(0)
    expect(reseeded.prompts).not.toEqual(buffered[0].prompts)
  })

  it("mix all six tags, or only the configured ones", () => {
    const mixed = batchRenderer({ ...config, batchSize: 300 }).render(0)
    expect(new Set(mixed.records.map((record) => record.tag))).toEqual(new Set(TAGS))
    const counting = batchRenderer({ ...config, tags: ["counting"], maxObjects: 2 }).render(0)
    expect(counting.prompts.every((prompt) => prompt.includes(" two "))).toBe(true)
  })

  it("render at other resolutions", () => {
    const batch = batchRenderer({ ...config, resolution: 64 }).render(7)
    expect(batch.images).toHaveLength(8 * 3 * 64 * 64)
    expect(batch.resolution).toBe(64)
  })
})

describe("ShapeEval config", () => {
  it("fills every field from defaults", () => {
    expect(defaultShapeEvalConfig).toMatchObject({ resolution: 32, maxObjects: 4, maxTokens: 16, seed: 0, batchSize: 64, prefetch: 4, workers: "auto" })
    expect(defaultShapeEvalConfig.heldOutPairs).toHaveLength(4)
    expect(defaultShapeEvalConfig.tags).toEqual(TAGS)
  })

  it("rejects bad fields, naming them", async () => {
    const failure = async (input: unknown) => {
      const result = await Effect.runPromise(Effect.either(decodeShapeEvalConfig(input)))
      if (Either.isRight(result)) throw new Error(`accepted ${JSON.stringify(input)}`)
      return result.left.message
    }
    expect(await failure({ resolution: 8 })).toMatch(/resolution/)
    expect(await failure({ maxTokens: 4 })).toMatch(/maxTokens/)
    expect(await failure({ tags: ["style"] })).toMatch(/tags/)
    expect(await failure({ batchSize: 0 })).toMatch(/batchSize/)
    expect(await failure({ workers: -1 })).toMatch(/workers/)
    expect(await failure({ workers: 65 })).toMatch(/workers/)
    expect(await failure({ workers: "many" })).toMatch(/workers/)
    expect(await failure({ resolutoin: 32 })).toMatch(/resolutoin/)
    const starved = ["red", "orange", "yellow", "green", "blue"].map((color) => ({ color, shape: "oval" }))
    expect(await failure({ heldOutPairs: starved })).toMatch(/oval/)
  })
})
