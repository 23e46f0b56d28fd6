import { Effect } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import type { NativeStats } from "../../src/kernels/native/binding.ts"
import type { KernelsService } from "../../src/kernels/Kernels.ts"
import type { DType, Shape } from "../../src/tensor/dtype.ts"
import { type Tolerance, expectClose } from "../helpers/compare.ts"
import { Gen } from "../helpers/gen.ts"
import { describeCuda, makeCudaAndCpu, rms, roundToBf16 } from "./cuda.ts"

/**
 * CUDA attention forward and backward against the CPU backend on ragged shapes (lengths off the tiles,
 * Lq != Lk, several batches and heads, head dims 64 and 128, masks including a batch with no key), f32 and
 * bf16 storage; once with the default kernels (tensor cores for bf16 at head dims 64 and 128) and once on a
 * device created with attentionKernels "simt" (CUDA cores for everything).
 */

interface Config {
  readonly batch: number
  readonly lq: number
  readonly lk: number
  readonly heads: number
  readonly headDim: number
  readonly masked: boolean
}

const fixed: ReadonlyArray<Config> = [
  { batch: 1, lq: 64, lk: 64, heads: 1, headDim: 64, masked: false },
  { batch: 2, lq: 130, lk: 97, heads: 3, headDim: 64, masked: true },
  { batch: 3, lq: 200, lk: 300, heads: 2, headDim: 128, masked: true },
  { batch: 2, lq: 33, lk: 250, heads: 2, headDim: 128, masked: false },
  { batch: 3, lq: 300, lk: 17, heads: 4, headDim: 64, masked: true },
  { batch: 2, lq: 128, lk: 192, heads: 2, headDim: 128, masked: false },
  { batch: 2, lq: 65, lk: 129, heads: 3, headDim: 80, masked: true }
]

// Random shapes; at least 32 queries, so that dk (a sum over queries of bf16 dS) is not dominated by a few
// rounded terms under the bf16 tolerance.
const random: ReadonlyArray<Config> = Array.from({ length: 6 }, (_, seed) => {
  const g = new Gen(9000 + seed)
  return { batch: g.int(1, 3), lq: g.int(32, 300), lk: g.int(1, 300), heads: g.int(1, 4), headDim: g.int(0, 1) === 0 ? 64 : 128, masked: g.int(0, 1) === 1 }
})

const label = (c: Config) => `B=${c.batch} Lq=${c.lq} Lk=${c.lk} H=${c.heads} d=${c.headDim}${c.masked ? " masked" : ""}`

const F32_TOL: Tolerance = { atol: 2e-4, rtol: 2e-4 }
const bf16Tol = (expected: ArrayLike<number>): Tolerance => ({ atol: 2e-2 * Math.max(rms(expected), 1e-3), rtol: 2e-2 })

/**
 * out, lse, dq, dk, dv of one configuration on one backend, with inputs stored as `storage`; `rounded`: the
 * inputs are first rounded to bf16 (so that f32 on the CPU sees the values bf16 storage holds on CUDA).
 */
const runAttention = (k: KernelsService, c: Config, seed: number, storage: DType, rounded: boolean) => {
  const g = new Gen(seed)
  const floats = (shape: Shape) => {
    const values = g.normals(shape.reduce((a, b) => a * b, 1))
    return k.fromArray(rounded ? values.map(roundToBf16) : values, shape, storage)
  }
  // Batch 0 attends everything, batch 1 a random half, batch 2 nothing at all.
  const maskData = Array.from({ length: c.batch * c.lk }, (_, i) => (i < c.lk ? 1 : i < 2 * c.lk ? g.int(0, 1) : 0))
  return Effect.scoped(
    Effect.gen(function* () {
      const q = yield* floats([c.batch, c.lq, c.heads, c.headDim])
      const kk = yield* floats([c.batch, c.lk, c.heads, c.headDim])
      const v = yield* floats([c.batch, c.lk, c.heads, c.headDim])
      const dout = yield* floats([c.batch, c.lq, c.heads, c.headDim])
      const keyMask = c.masked ? yield* k.fromArray(maskData, [c.batch, c.lk], "i32") : undefined
      const saved = yield* k.attention(q, kk, v, { keyMask })
      const grads = yield* k.attentionBackward(dout, q, kk, v, saved, { keyMask })
      const named = { out: saved.out, lse: saved.lse, dq: grads.dq, dk: grads.dk, dv: grads.dv }
      return yield* Effect.forEach(Object.entries(named), ([name, t]) => Effect.map(k.read(t), (data) => [name, Array.from(data)] as const))
    })
  )
}

for (const attentionKernels of ["auto", "simt"] as const)
  describeCuda(`CUDA attention (attentionKernels "${attentionKernels}") matches the CPU backend, forward and backward, f32 and bf16`, () => {
    let backends: ReturnType<typeof makeCudaAndCpu>
    beforeAll(() => {
      backends = makeCudaAndCpu({ attentionKernels })
    })
    afterAll(() => backends?.dispose())

    it("runs on the device the option asked for", () => {
      expect((backends.cudaBackend.stats() as NativeStats).attentionKernels).toBe(attentionKernels)
    })

    for (const [index, c] of [...fixed, ...random].entries())
      it(label(c), async () => {
        for (const dtype of ["f32", "bf16"] as const) {
          const seed = 31 * index + (dtype === "bf16" ? 7 : 0)
          const rounded = dtype === "bf16"
          const expected = await Effect.runPromise(runAttention(backends.cpu, c, seed, "f32", rounded))
          const actual = await Effect.runPromise(runAttention(backends.cuda, c, seed, dtype, rounded))
          expect(actual.map(([name]) => name)).toEqual(expected.map(([name]) => name))
          actual.forEach(([name, data], i) => {
            const reference = expected[i]![1]
            // bf16 storage: ~1e-2 relative, as the bf16 suite; lse stays f32 but comes from bf16 inputs too.
            expectClose(data, reference, dtype === "f32" ? F32_TOL : bf16Tol(reference), `${label(c)} ${dtype} ${name}`)
          })
        }
      })
  })
