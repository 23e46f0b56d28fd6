/**
 * The render worker's loop (src/data/renderPool.ts): renders the batches the main thread asks for with the same
 * `batchRenderer` the main thread would use, so a batch is the same bit for bit wherever it was drawn.
 */
import { parentPort, workerData } from "node:worker_threads"
import type { ShapeEvalConfig } from "./config.ts"
import type { RenderReply, RenderRequest } from "./renderPool.ts"
import { type Batch, batchRenderer } from "./stream.ts"

const port = parentPort
if (port === null) throw new Error("renderWorkerLoop.ts runs as a worker thread (src/data/renderPool.ts starts it)")
const renderer = batchRenderer((workerData as { config: ShapeEvalConfig }).config)
// batchRenderer allocates a batch's buffers for it alone, so they move to the main thread instead of being copied.
const buffersOf = (batch: Batch) => [batch.images.buffer, batch.tokens.buffer, batch.mask.buffer] as Array<ArrayBuffer>
port.on("message", ({ id, step }: RenderRequest) => {
  let reply: RenderReply
  try {
    reply = { id, batch: renderer.render(step) }
  } catch (cause) {
    reply = { id, error: cause instanceof Error ? cause.message : String(cause) }
  }
  port.postMessage(reply, "batch" in reply ? buffersOf(reply.batch) : [])
})
