/**
 * Training batches drawn on worker threads. Rendering a batch is CPU work on the training loop's thread
 * otherwise (about 2.4 ms for 64 images at 32x32, 20 ms at 128x128 on one core of the dev VM, warm), and a GPU
 * step waits for its host: with the pool, the loop's thread only receives finished batches, their buffers handed
 * over, not copied. A batch goes to the running worker with the fewest requests waiting; every worker renders
 * with the same `batchRenderer`, so batches do not depend on where or how many workers drew them.
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

const messageOf = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** A render thread and the requests it has not answered yet. */
class Slot {
  readonly waiting = new Map<number, (reply: RenderReply) => void>()
  /** Why the worker can render no more (it failed to start, threw outside a render, exited, or was closed). */
  stopped: string | undefined
  readonly worker: Worker | undefined

  constructor(config: ShapeEvalConfig, index: number, entry: URL) {
    let worker: Worker | undefined
    try {
      worker = new Worker(entry, { workerData: { config }, name: `selfe render ${index}` })
    } catch (cause) {
      this.stopped = `worker ${index} could not start: ${messageOf(cause)}`
    }
    this.worker = worker
    worker?.on("message", (reply: RenderReply) => {
      const answer = this.waiting.get(reply.id)
      this.waiting.delete(reply.id)
      answer?.(reply)
    })
    worker?.on("error", (error) => this.stop(`worker ${index} stopped: ${messageOf(error)}`))
    worker?.on("messageerror", (error) => this.stop(`worker ${index} sent a batch that could not be read: ${messageOf(error)}`))
    worker?.on("exit", (code) => this.stop(`worker ${index} exited (code ${code})`))
  }

  /** Answers every waiting request with `reason` and takes no more. */
  stop(reason: string): void {
    if (this.stopped !== undefined) return
    this.stopped = reason
    for (const [id, answer] of this.waiting) answer({ id, error: reason })
    this.waiting.clear()
  }
}

/**
 * The worker for batch `step`: of those still running, the one with the fewest requests waiting, batch k's
 * turn starting at worker k mod n (so with one batch in flight each, batch k goes to worker k mod n).
 */
const slotFor = (slots: ReadonlyArray<Slot>, step: number): Slot => {
  let best: Slot | undefined
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[(step + i) % slots.length] as Slot
    if (slot.stopped === undefined && (best === undefined || slot.waiting.size < best.waiting.size)) best = slot
  }
  return best ?? (slots[step % slots.length] as Slot)
}

/**
 * `workers` (at least 1) render threads for `config`'s batches, stopped when the Scope closes (a request still
 * waiting then fails). `entry` is the worker's script (tests give ones that fail).
 */
export const makeRenderPool = (
  config: ShapeEvalConfig,
  workers: number,
  entry: URL = workerEntry
): Effect.Effect<RenderPool, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => Array.from({ length: workers }, (_, index) => new Slot(config, index, entry))),
      (slots) =>
        Effect.promise(() =>
          Promise.all(
            slots.map((slot) => {
              slot.stop("the pool was closed")
              return slot.worker?.terminate()
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
            const slot = slotFor(slots, step)
            if (slot.stopped !== undefined || slot.worker === undefined)
              return resume(Effect.fail(new RenderWorkerError({ step, reason: slot.stopped ?? "no worker" })))
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
