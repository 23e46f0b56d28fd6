import type { NativeStats } from "../../src/kernels/native/binding.ts"
import type { NativeBackend } from "../../src/kernels/native/NativeBackend.ts"

/**
 * Queues 20 products of 256 x 256 matrices on an idle device and waits for them: the seconds the thread draining
 * its queue (the CPU worker, CUDA's launch thread) reported busy meanwhile (stats().streamBusySeconds), and the
 * wall seconds from the first call to the end. Busy time is bounded by the wall time and is not zero.
 */
export const busyAcrossProducts = async (backend: NativeBackend): Promise<{ busy: number; wall: number }> => {
  const busySeconds = () => (backend.stats() as unknown as NativeStats).streamBusySeconds
  await backend.sync()
  const before = busySeconds()
  const start = performance.now()
  const a = backend.full([256, 256], 1)
  for (let i = 0; i < 20; i++) backend.matmul(a, a).release()
  a.release()
  await backend.sync()
  // Busy first: time the worker counts after this read is in neither figure.
  const busy = busySeconds() - before
  return { busy, wall: (performance.now() - start) / 1000 }
}
