import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Kernels } from "../../src/kernels/Kernels.ts"
import { liftBackend } from "../../src/kernels/lift.ts"
import { loadAddon } from "../../src/kernels/native/binding.ts"
import { NativeBackend } from "../../src/kernels/native/NativeBackend.ts"
import { Tensor, type TensorOwner } from "../../src/tensor/Tensor.ts"

/** An owner that records what it is asked to free. */
const recordingOwner = (device: string) => {
  const calls: Array<ReadonlyArray<unknown>> = []
  const owner: TensorOwner = {
    device,
    releaseHandle: (handle) => void calls.push([handle]),
    releaseHandles: (handles) => void calls.push([...handles])
  }
  return { owner, calls }
}

describe("releasing many tensors at once", () => {
  it("Tensor.releaseAll frees each live tensor once, in order, with one call per owner", () => {
    const a = recordingOwner("a")
    const b = recordingOwner("b")
    const tensors = [1, 2, 3, 4, 5].map((id) => new Tensor(id, [1], "f32", id % 2 === 0 ? b.owner : a.owner))
    ;(tensors[2] as Tensor).release()
    Tensor.releaseAll([...tensors, tensors[0] as Tensor])
    expect(a.calls).toEqual([[3], [1, 5]])
    expect(b.calls).toEqual([[2, 4]])
    expect(tensors.every((t) => t.released)).toBe(true)
    Tensor.releaseAll(tensors)
    expect(a.calls.length + b.calls.length).toBe(3)
  })

  it("a closing Scope frees its tensors with one addon call, views and their bases included", async () => {
    const addon = loadAddon()
    const calls = { release: 0, releaseAll: 0 }
    const ops = new Proxy(addon.ops, {
      get: (target, name: string) => {
        const op = (target as unknown as Record<string, (...args: Array<unknown>) => unknown>)[name] as (...args: Array<unknown>) => unknown
        return (...args: Array<unknown>) => {
          if (name === "release" || name === "releaseAll") calls[name]++
          return op(...args)
        }
      }
    })
    const backend = new NativeBackend({ ...addon, ops })
    const k = liftBackend(backend)
    const before = backend.stats().liveTensors
    const total = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const x = yield* k.fromArray([1, 2, 3, 4, 5, 6], [2, 3])
          const y = yield* k.affine(yield* k.view(x, [3, 2]), 2, 0)
          return (yield* k.read(yield* k.sum(y)))[0]
        })
      ).pipe(Effect.provideService(Kernels, k))
    )
    expect(total).toBe(42)
    expect(backend.stats().liveTensors).toBe(before)
    expect(calls).toEqual({ release: 0, releaseAll: 1 })
    backend.dispose()
  })

  it("the addon's releaseAll refuses a released handle, a handle listed twice and a non-array, naming them, and then releases none", () => {
    const addon = loadAddon()
    const device = new addon.Device({ backend: "cpu", threads: 1 })
    const ops = addon.ops
    const [x, y, z] = [0, 1, 2].map(() => ops.full(device, 0, [4], 1))
    ops.release(device, z)
    const live = () => ops.stats(device).liveTensors
    expect(live()).toBe(2)
    const refusal = (handles: unknown) => {
      try {
        ops.releaseAll(device, handles as ReadonlyArray<number>)
      } catch (error) {
        return [(error as { code: string }).code, (error as Error).message]
      }
      return undefined
    }
    expect(refusal([x, y, z])).toEqual(["SELFE_DISPOSED", "releaseAll: handles[2]: it was released"])
    expect(refusal([x, y, x])).toEqual(["SELFE_INVALID_ARGUMENT", "releaseAll: handles lists a tensor twice"])
    expect(refusal(x)).toEqual(["SELFE_INVALID_ARGUMENT", "releaseAll: handles must be an array of tensor handles"])
    expect(live()).toBe(2)
    expect(refusal([y, x])).toBeUndefined()
    expect(live()).toBe(0)
    ops.dispose(device)
  })
})
