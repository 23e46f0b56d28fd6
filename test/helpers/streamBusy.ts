import type { NativeBackend } from "../../src/kernels/native/NativeBackend.ts"
import type { OpTime, StreamTimes } from "../../src/kernels/ops.ts"
import { streamTimesBetween } from "../../src/pipeline/stepProfile.ts"

/**
 * Queues 20 products of 256 x 256 matrices on an idle device and waits for them: the seconds the thread draining
 * its queue (the CPU worker, CUDA's launch thread) reported busy meanwhile (streamTimes(), from
 * stats().streamBusySeconds), the wall seconds from the first call to the end, and that busy time by op. Busy
 * time is bounded by the wall time and is not zero.
 */
export const busyAcrossProducts = async (backend: NativeBackend): Promise<{ busy: number; wall: number; ops: ReadonlyMap<string, OpTime> }> => {
  const times = () => backend.streamTimes() as StreamTimes
  await backend.sync()
  const before = times()
  const start = performance.now()
  const a = backend.full([256, 256], 1)
  for (let i = 0; i < 20; i++) backend.matmul(a, a).release()
  a.release()
  await backend.sync()
  // Read first: time the worker counts after this reading is in neither figure.
  const { busySeconds, ops } = streamTimesBetween(before, times())
  return { busy: busySeconds, wall: (performance.now() - start) / 1000, ops: new Map(ops.map((time) => [time.op, time])) }
}
