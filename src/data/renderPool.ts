/**
 * Training batches drawn on worker threads. Rendering a batch is CPU work on the training loop's thread
 * otherwise (about 5 ms for 64 images at 32x32, 30 ms at 128x128 on one core), and a GPU step waits for its
 * host: with the pool, the loop's thread only receives finished batches, their buffers handed over, not copied.
 * Batch k goes to worker k mod n, each worker renders with the same `batchRenderer`, so batches do not depend on
 * where or how many workers drew them.
 */
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { Effect, Schema, type Scope } from "effect"
import type { ShapeEvalConfig } from "./config.ts"
import type { Batch } from "./stream.ts"

export class RenderWorkerError extends Schema.TaggedError<RenderWorkerError>()("RenderWorkerError", {
  step: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `rendering training batch ${this.step} on a worker thread failed: ${this.reason} (data.workers = 0 renders on the training loop's thread)`
  }
}

/** What the main thread asks a worker (src/data/renderWorkerLoop.ts) for. */
export interface RenderRequest {
  readonly id: number
  readonly step: number
}

/** A worker's answer: the batch, or why it could not render it. */
export type RenderReply = { readonly id: number; readonly batch: Batch } | { readonly id: number; readonly error: string }

export interface RenderPool {
  readonly workers: number
  readonly render: (step: number) => Effect.Effect<Batch, RenderWorkerError>
}

/** The worker threads a `data.workers` setting means: "auto" leaves one core to the training loop, at most 4. */
export const renderWorkerCount = (workers: ShapeEvalConfig["workers"]): number =>
  workers === "auto" ? Math.max(0, Math.min(4, availableParallelism() - 1)) : workers

const workerEntry = new URL("./renderWorker.mjs", import.meta.url)

interface Slot {
  readonly worker: Worker
  readonly waiting: Map<number, (reply: RenderReply) => void>
  /** Why the worker can render no more (it failed to start, threw outside a render, or exited). */
  stopped: string | undefined
}

const startSlot = (config: ShapeEvalConfig, index: number, entry: URL): Slot => {
  const worker = new Worker(entry, { workerData: { config }, name: `selfe render ${index}` })
  const slot: Slot = { worker, waiting: new Map(), stopped: undefined }
  const stop = (reason: string) => {
    if (slot.stopped !== undefined) return
    slot.stopped = reason
    for (const [id, answer] of slot.waiting) answer({ id, error: reason })
    slot.waiting.clear()
  }
  worker.on("message", (reply: RenderReply) => {
    const answer = slot.waiting.get(reply.id)
    slot.waiting.delete(reply.id)
    answer?.(reply)
  })
  worker.on("error", (error) => stop(`worker ${index} stopped: ${error.message}`))
  worker.on("messageerror", (error) => stop(`worker ${index} sent a batch that could not be read: ${error.message}`))
  worker.on("exit", (code) => stop(`worker ${index} exited (code ${code})`))
  return slot
}

/**
 * `workers` (at least 1) render threads for `config`'s batches, stopped when the Scope closes. `entry` is the worker's
 * script (tests give one that fails).
 */
export const makeRenderPool = (
  config: ShapeEvalConfig,
  workers: number,
  entry: URL = workerEntry
): Effect.Effect<RenderPool, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => Array.from({ length: workers }, (_, index) => startSlot(config, index, entry))),
      (slots) =>
        Effect.promise(() =>
          Promise.all(
            slots.map((slot) => {
              slot.stopped ??= "the pool was closed"
              return slot.worker.terminate()
            })
          )
        )
    ),
    (slots) => {
      let nextId = 0
      return {
        workers: slots.length,
        render: (step) =>
          Effect.async<Batch, RenderWorkerError>((resume) => {
            const slot = slots[step % slots.length] as Slot
            if (slot.stopped !== undefined) return resume(Effect.fail(new RenderWorkerError({ step, reason: slot.stopped })))
            const id = nextId++
            slot.waiting.set(id, (reply) =>
              resume("batch" in reply ? Effect.succeed(reply.batch) : Effect.fail(new RenderWorkerError({ step, reason: reply.error })))
            )
            slot.worker.postMessage({ id, step } satisfies RenderRequest)
            // Interrupted (the stream was stopped): a late answer finds nobody waiting and is dropped.
            return Effect.sync(() => slot.waiting.delete(id))
          })
      }
    }
  )
