import { Cause, Chunk, Effect, Exit, Fiber, Stream } from "effect"
import { availableParallelism } from "node:os"
import { describe, expect, it } from "vitest"
import { defaultShapeEvalConfig, type ShapeEvalConfig } from "../../src/data/config.ts"
import { makeRenderPool, RenderWorkerError, renderWorkerCount } from "../../src/data/renderPool.ts"
import { type Batch, batchRenderer, trainingBatches } from "../../src/data/stream.ts"

const config: ShapeEvalConfig = { ...defaultShapeEvalConfig, batchSize: 6, prefetch: 1, seed: 5 }
const take = (stream: Stream.Stream<Batch, RenderWorkerError>, n: number) =>
  Effect.runPromise(Stream.runCollect(Stream.take(stream, n))).then(Chunk.toReadonlyArray)
const failingWorker = new URL("./fixtures/failingRenderWorker.mjs", import.meta.url)
const exitingWorker = new URL("./fixtures/exitingRenderWorker.mjs", import.meta.url)
const silentWorker = new URL("./fixtures/silentRenderWorker.mjs", import.meta.url)
/** Worker threads alive in this process (Node's diagnostic report lists them). */
const liveWorkers = () => (process.report.getReport() as { workers: Array<unknown> }).workers.length

/** The RenderWorkerError an effect failed with (or a test failure where it did not fail so). */
const renderFailure = async <A>(effect: Effect.Effect<A, RenderWorkerError>) => {
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) throw new Error("expected a RenderWorkerError, got a batch")
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "None") throw new Error(`expected a RenderWorkerError, got ${Cause.pretty(exit.cause)}`)
  expect(failure.value).toBeInstanceOf(RenderWorkerError)
  return failure.value
}

describe("render workers", () => {
  it("draw the same batches as the consumer's thread, bit for bit, from any step", async () => {
    const onWorkers = await take(trainingBatches({ ...config, workers: 2 }, 3), 5)
    const renderer = batchRenderer(config)
    expect(onWorkers.map((batch) => batch.step)).toEqual([3, 4, 5, 6, 7])
    for (const batch of onWorkers) {
      const here = renderer.render(batch.step)
      expect(Buffer.from(batch.images.buffer).equals(Buffer.from(here.images.buffer))).toBe(true)
      expect(batch.tokens).toEqual(here.tokens)
      expect(batch.mask).toEqual(here.mask)
      expect(batch.prompts).toEqual(here.prompts)
      expect(batch.records).toEqual(here.records)
      expect(batch.images).toBeInstanceOf(Float32Array)
    }
  })

  it("give a typed error naming the batch when a worker cannot start", async () => {
    const error = await renderFailure(Effect.scoped(Effect.flatMap(makeRenderPool(config, 2, failingWorker), (pool) => pool.render(7))))
    expect(error.step).toBe(7)
    expect(error.message).toMatch(/batch 7/)
    expect(error.message).toMatch(/this worker cannot render/)
    expect(error.message).toMatch(/data\.workers = 0/)
  })

  it("give that error, not a crash, when a worker cannot even be constructed", async () => {
    const notAFile = new URL("http://example.invalid/renderWorker.mjs")
    const error = await renderFailure(Effect.scoped(Effect.flatMap(makeRenderPool(config, 2, notAFile), (pool) => pool.render(1))))
    expect(error.step).toBe(1)
    expect(error.reason).toMatch(/worker \d could not start: ./)
  })

  it("fail the batch a worker was drawing when it exits, naming its exit code", async () => {
    const error = await renderFailure(Effect.scoped(Effect.flatMap(makeRenderPool(config, 1, exitingWorker), (pool) => pool.render(4))))
    expect(error.step).toBe(4)
    expect(error.reason).toMatch(/exited \(code 3\)/)
  })

  it("fail the training stream with that error, not hang", async () => {
    const pool = Stream.unwrapScoped(Effect.map(makeRenderPool(config, 1, failingWorker), (p) => Stream.mapEffect(Stream.make(0, 1), p.render)))
    const error = await renderFailure(Stream.runDrain(pool))
    expect(error.step).toBe(0)
  })

  it("are stopped when their Scope closes: the threads end, and a request still waiting fails", async () => {
    const before = liveWorkers()
    const { pool, waiting } = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const pool = yield* makeRenderPool(config, 2, silentWorker)
          // A request from outside the pool's Scope, which the closing Scope does not interrupt.
          const waiting = yield* Effect.forkDaemon(pool.render(3))
          // The threads are listed once they have started (within 5 s even on a loaded machine).
          for (let waited = 0; liveWorkers() < before + 2 && waited < 5000; waited += 20) yield* Effect.sleep("20 millis")
          expect(liveWorkers()).toBe(before + 2)
          return { pool, waiting }
        })
      )
    )
    expect(liveWorkers()).toBe(before)
    expect((await renderFailure(Fiber.join(waiting))).reason).toMatch(/closed/)
    expect((await renderFailure(pool.render(0))).reason).toMatch(/closed/)
  })

  it("'auto' leaves a core to the training loop and takes at most 4", () => {
    expect(renderWorkerCount("auto")).toBe(Math.max(0, Math.min(4, availableParallelism() - 1)))
    expect(renderWorkerCount(0)).toBe(0)
    expect(renderWorkerCount(3)).toBe(3)
  })
})
