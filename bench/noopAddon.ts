/**
 * An addon whose ops do nothing, for timing the JS host path of a whole training step alone: the model, autograd,
 * Effect, the lifetimes and NativeBackend's shape rules run as ever, but no N-API call, launch or kernel does.
 * Every op answers fresh handles (destructuring into as many as an op returns; split an array of its count,
 * castAll one per tensor), reads answer a few zeros (a step reads only scalars and per-row values), and the rest answers nothing. Its
 * times are a floor under any backend's step on the same CPU: a GPU step near it is bound by the host.
 */
import type { NativeAddon } from "../src/kernels/native/binding.ts"

let next = 1
/**
 * An opaque handle that also destructures into fresh ones, as the ops that return several are read. The
 * iterator is the class's, not a closure per handle: making a handle should cost about what the real
 * addon's number does, or the floor reads high.
 */
class Handle {
  readonly id = next++;
  *[Symbol.iterator](): Generator<Handle> {
    for (;;) yield new Handle()
  }
}
const handle = (): unknown => new Handle()
const silent = new Set(["release", "releaseAll", "write", "assign", "emptyCache", "dispose"])
const ops = new Proxy(
  {},
  {
    get: (_target, name: string) => {
      if (name === "read") return () => Promise.resolve(new Float32Array(64))
      if (name === "split") return (_device: unknown, _x: unknown, _axis: number, count: number) => Array.from({ length: count }, handle)
      if (name === "castAll") return (_device: unknown, xs: ReadonlyArray<unknown>) => xs.map(handle)
      if (name === "sync") return () => Promise.resolve()
      if (name === "stats") return () => ({ backend: "noop" })
      return silent.has(name) ? () => undefined : () => handle()
    }
  }
)

/** The do-nothing addon; a NativeBackend over it with backend "cuda" stores bf16, as bf16-mixed needs. */
export const noopAddon = { Device: class {}, ops, build: { backends: "cpu,cuda", blas: "none" }, cudaDeviceCount: () => 1 } as unknown as NativeAddon
