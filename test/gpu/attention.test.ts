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
 * bf16 storage; once with the default kernels (attentionKernels "auto": tensor cores for bf16 at head dims 64
 * and 128, the forward and the backward's key kernel (at head dim 64 past 256 keys, at 128 always) on warpgroup
 * tensor cores where the GPU is sm_90), once on a device created with "mma.sync" (the FlashAttention-2-style tensor-core kernels alone) and
 * once with "simt" (CUDA cores for everything); bf16 again on a device with determinism "run-to-run", twice.
 */

interface Config {
  readonly batch: number
  readonly lq: number
  readonly lk: number
  readonly heads: number
  readonly headDim: number
  readonly masked: boolean
  // The softmax scale, if not 1 / sqrt(headDim).
  readonly scale?: number
  // Scores spread so wide that most rows are nearly one-hot: there dS = P (dP - delta) nearly cancels, so the bf16
  // gradients carry the rounding of P, dS and out more than the kernels' differences; bf16 checks out and lse only.
  readonly wideScores?: boolean
}

const fixed: ReadonlyArray<Config> = [
  { batch: 1, lq: 64, lk: 64, heads: 1, headDim: 64, masked: false },
  { batch: 2, lq: 130, lk: 97, heads: 3, headDim: 64, masked: true },
  { batch: 3, lq: 200, lk: 300, heads: 2, headDim: 128, masked: true },
  { batch: 2, lq: 33, lk: 250, heads: 2, headDim: 128, masked: false },
  { batch: 3, lq: 300, lk: 17, heads: 4, headDim: 64, masked: true },
  { batch: 2, lq: 128, lk: 192, heads: 2, headDim: 128, masked: false },
  { batch: 2, lq: 65, lk: 129, heads: 3, headDim: 80, masked: true },
  // Past 256 keys at head dim 64: the backward's 128-key blocks (and on "auto" on sm_90, its warpgroup key kernel).
  { batch: 2, lq: 150, lk: 300, heads: 2, headDim: 64, masked: true },
  // Scores spread wide (rows' maxima keep rising from tile to tile by more than the wgmma forward's lazy max lets
  // pass without a rescale), and non-positive scales (which the wgmma forward leaves to mma.sync).
  { batch: 2, lq: 100, lk: 300, heads: 2, headDim: 64, masked: true, scale: 3, wideScores: true },
  { batch: 1, lq: 90, lk: 200, heads: 2, headDim: 128, masked: false, scale: 2, wideScores: true },
  { batch: 2, lq: 70, lk: 90, heads: 2, headDim: 64, masked: true, scale: -0.2 },
  { batch: 1, lq: 40, lk: 70, heads: 1, headDim: 128, masked: false, scale: 0 }
]

// Random shapes; at least 32 queries, so that dk (a sum over queries of bf16 dS) is not dominated by a few
// rounded terms under the bf16 tolerance.
const random: ReadonlyArray<Config> = Array.from({ length: 6 }, (_, seed) => {
  const g = new Gen(9000 + seed)
  return { batch: g.int(1, 3), lq: g.int(32, 300), lk: g.int(1, 300), heads: g.int(1, 4), headDim: g.int(0, 1) === 0 ? 64 : 128, masked: g.int(0, 1) === 1 }
})

const label = (c: Config) =>
  `B=${c.batch} Lq=${c.lq} Lk=${c.lk} H=${c.heads} d=${c.headDim}${c.masked ? " masked" : ""}${c.scale !== undefined ? ` scale ${c.scale}` : ""}`

const F32_TOL: Tolerance = { atol: 2e-4, rtol: 2e-4 }
const bf16Tol = (expected: ArrayLike<number>, relative = 2e-2): Tolerance => ({ atol: relative * Math.max(rms(expected), 1e-3), rtol: 2e-2 })
// Gradients from the tensor-core kernels, where P and dS enter their products as bf16 (docs/cuda.md): 3e-2 of
// their rms, as the emulator's CPU-twin check allows them. A row with few keys has dq terms that nearly cancel,
// so one bf16 rounding of dS weighs more there.
const tensorCoreGradient = (c: Config, name: string, attentionKernels: string) =>
  (c.headDim === 64 || c.headDim === 128) && attentionKernels !== "simt" && ["dq", "dk", "dv"].includes(name)
// Which outputs a bf16 run is held to (Config.wideScores).
const checkedInBf16 = (c: Config, name: string) => c.wideScores !== true || name === "out" || name === "lse"

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
      const options = { keyMask, ...(c.scale !== undefined ? { scale: c.scale } : {}) }
      const saved = yield* k.attention(q, kk, v, options)
      // bf16 storage keeps out as bf16, and the backward's delta = rowsum(dout * out) reads that; the f32
      // reference takes its out rounded the same way, or rows with few keys (where dS nearly cancels) differ
      // by the rounding of out rather than by the kernels.
      const stored =
        rounded && storage === "f32"
          ? { ...saved, out: yield* k.fromArray(Array.from(yield* k.read(saved.out), roundToBf16), saved.out.shape, "f32") }
          : saved
      const grads = yield* k.attentionBackward(dout, q, kk, v, stored, options)
      const named = { out: saved.out, lse: saved.lse, dq: grads.dq, dk: grads.dk, dv: grads.dv }
      return yield* Effect.forEach(Object.entries(named), ([name, t]) => Effect.map(k.read(t), (data) => [name, Array.from(data)] as const))
    })
  )
}

const againstCpu = (attentionKernels: "auto" | "mma.sync" | "simt") =>
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
            if (dtype === "bf16" && !checkedInBf16(c, name)) return
            const reference = expected[i]![1]
            // bf16 storage: ~1e-2 relative, as the bf16 suite; lse stays f32 but comes from bf16 inputs too.
            const tolerance = dtype === "f32" ? F32_TOL : bf16Tol(reference, tensorCoreGradient(c, name, attentionKernels) ? 3e-2 : 2e-2)
            expectClose(data, reference, tolerance, `${label(c)} ${dtype} ${name}`)
          })
        }
      })
  })

againstCpu("auto")
againstCpu("mma.sync")
againstCpu("simt")

// determinism "run-to-run": bf16 at head dims 64 and 128 takes the tensor-core backward whose dq comes from a
// kernel of its own (no atomics). The same as the CPU to the bf16 tolerance, and the same bits on a second run
// (which the default device does not promise: its dq is added with atomics in an order the GPU picks).
describeCuda('CUDA attention on a device with determinism "run-to-run" matches the CPU and repeats itself bit for bit', () => {
  let backends: ReturnType<typeof makeCudaAndCpu>
  beforeAll(() => {
    backends = makeCudaAndCpu({ determinism: "run-to-run" })
  })
  afterAll(() => backends?.dispose())

  it("runs on the device the option asked for", () => {
    expect((backends.cudaBackend.stats() as NativeStats).determinism).toBe("run-to-run")
  })

  for (const [index, c] of fixed.filter((c) => c.headDim === 64 || c.headDim === 128).entries())
    it(label(c), async () => {
      const seed = 101 + index
      const expected = await Effect.runPromise(runAttention(backends.cpu, c, seed, "f32", true))
      const first = await Effect.runPromise(runAttention(backends.cuda, c, seed, "bf16", true))
      first.forEach(([name, data], i) => {
        if (!checkedInBf16(c, name)) return
        const reference = expected[i]![1]
        expectClose(data, reference, bf16Tol(reference, tensorCoreGradient(c, name, "auto") ? 3e-2 : 2e-2), `${label(c)} bf16 ${name}`)
      })
      const second = await Effect.runPromise(runAttention(backends.cuda, c, seed, "bf16", true))
      expect(second).toEqual(first)
    })
})
