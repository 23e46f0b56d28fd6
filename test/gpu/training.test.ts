import { Effect } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import { backward } from "../../src/autograd/backward.ts"
import * as F from "../../src/autograd/functional.ts"
import { withTape } from "../../src/autograd/tape.ts"
import { Kernels, type KernelsService } from "../../src/kernels/Kernels.ts"
import type { NativeStats } from "../../src/kernels/native/binding.ts"
import type { DType } from "../../src/tensor/dtype.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"
import { expectClose } from "../helpers/compare.ts"
import { Gen } from "../helpers/gen.ts"
import { cudaEmulated, describeCuda, makeCudaAndCpu, runOn } from "./cuda.ts"

/**
 * Whole training steps of a small DiT-style block (adaLN from a conditioning vector, masked attention with
 * two heads of 64, gated residuals, GELU MLP, MSE loss; backward by the tape; global-norm clipping, AdamW,
 * EMA): the same losses and parameters on CUDA as on the CPU; mixed precision (bf16 activations and weight
 * copies, f32 master weights and optimizer state) close to f32; and no memory taken from the system once
 * a step has run, over 1000 steps; and, on a device with determinism "run-to-run", the same bits twice.
 */

const dims = { batch: 4, tokens: 64, dim: 128, heads: 2, hidden: 256 }
const { batch, tokens, dim, heads, hidden } = dims
const paramShapes = {
  wAda: [3 * dim, dim],
  bAda: [3 * dim],
  wq: [dim, dim],
  wk: [dim, dim],
  wv: [dim, dim],
  wo: [dim, dim],
  bo: [dim],
  w1: [hidden, dim],
  b1: [hidden],
  w2: [dim, hidden],
  b2: [dim]
} as const
type Name = keyof typeof paramShapes
const names = Object.keys(paramShapes) as ReadonlyArray<Name>

interface State {
  readonly params: Record<Name, Tensor>
  readonly m: ReadonlyArray<Tensor>
  readonly v: ReadonlyArray<Tensor>
  readonly ema: ReadonlyArray<Tensor>
  readonly x: Tensor
  readonly cond: Tensor
  readonly target: Tensor
  readonly mask: Tensor
}

const numel = (shape: ReadonlyArray<number>) => shape.reduce((a, b) => a * b, 1)

/** Parameters, optimizer state and one batch, the same numbers on every backend (owned by the caller's Scope). */
const initState = (seed: number) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const g = new Gen(seed)
    const params = {} as Record<Name, Tensor>
    for (const name of names) {
      const shape = paramShapes[name]
      const t = yield* k.fromArray(g.normals(numel(shape), shape.length === 2 ? 1 / Math.sqrt(shape[1]) : 0.02), shape)
      t.requiresGrad = true
      t.name = name
      params[name] = t
    }
    const list = names.map((n) => params[n])
    return {
      params,
      m: yield* Effect.forEach(list, (p) => k.zeros(p.shape)),
      v: yield* Effect.forEach(list, (p) => k.zeros(p.shape)),
      ema: yield* Effect.forEach(list, (p) => k.copy(p)),
      x: yield* k.fromArray(g.normals(batch * tokens * dim), [batch, tokens, dim]),
      cond: yield* k.fromArray(g.normals(batch * dim), [batch, dim]),
      target: yield* k.fromArray(g.normals(batch * tokens * dim), [batch, tokens, dim]),
      mask: yield* k.fromArray(Array.from({ length: batch * tokens }, (_, i) => (i % tokens < tokens - Math.floor(i / tokens) * 8 ? 1 : 0)), [batch, tokens], "i32")
    } satisfies State
  })

/** The block's loss; with dtype bf16 every weight and activation is a bf16 copy, the loss f32. */
const loss = (s: State, dtype: DType) =>
  Effect.gen(function* () {
    const c = (t: Tensor) => (dtype === "f32" ? Effect.succeed(t) : F.cast(t, dtype))
    const p = {} as Record<Name, Tensor>
    for (const name of names) p[name] = yield* c(s.params[name])
    const x = yield* c(s.x)
    const ada = yield* F.linear(yield* F.silu(yield* c(s.cond)), p.wAda, p.bAda)
    const [shift, scale, gate] = yield* Effect.forEach([0, 1, 2], (i) => F.narrow(ada, 1, i * dim, dim))
    const normed = yield* F.modulate(yield* F.layerNorm(x, { eps: 1e-6 }), shift!, scale!)
    const headShape = [batch, tokens, heads, dim / heads]
    const q = yield* F.view(yield* F.linear(normed, p.wq), headShape)
    const kk = yield* F.view(yield* F.linear(normed, p.wk), headShape)
    const v = yield* F.view(yield* F.linear(normed, p.wv), headShape)
    const attended = yield* F.view(yield* F.attention(q, kk, v, { keyMask: s.mask }), [batch, tokens, dim])
    const h = yield* F.gatedResidual(x, gate!, yield* F.linear(attended, p.wo, p.bo))
    const mlp = yield* F.linear(yield* F.gelu(yield* F.linear(yield* F.layerNorm(h, { eps: 1e-6 }), p.w1, p.b1)), p.w2, p.b2)
    const out = yield* F.add(h, mlp)
    return yield* F.mse(dtype === "f32" ? out : yield* F.cast(out, "f32"), s.target)
  })

/** One optimizer step; returns the loss (read back, which also waits for the step). */
const step = (s: State, dtype: DType, stepNumber: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const k = yield* Kernels
      const [value, tape] = yield* withTape(loss(s, dtype))
      const grads = yield* backward(value, tape)
      const params = names.map((n) => s.params[n])
      const gradList = params.map((p) => grads.get(p) as Tensor)
      const norm = yield* k.globalNorm(gradList)
      yield* k.clipByNorm(gradList, norm, 1)
      yield* k.adamw({ params, grads: gradList, m: s.m, v: s.v }, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, step: stepNumber })
      yield* k.emaUpdate(s.ema, params, 0.99)
      return yield* k.readNumber(value)
    })
  )

/** Losses of `steps` steps from the same start, and every parameter and EMA weight after them. */
const train = (kernels: KernelsService, dtype: DType, steps: number) =>
  runOn(
    kernels,
    Effect.gen(function* () {
      const k = yield* Kernels
      const s = yield* initState(42)
      const losses: Array<number> = []
      for (let i = 1; i <= steps; i++) losses.push(yield* step(s, dtype, i))
      const weights = yield* Effect.forEach([...names.map((n) => s.params[n]), ...s.ema], (t) => Effect.map(k.read(t), (d) => Array.from(d)))
      return { losses, weights }
    })
  )

let backends: ReturnType<typeof makeCudaAndCpu>

describeCuda("training steps of a small DiT block on CUDA", () => {
  beforeAll(() => {
    backends = makeCudaAndCpu()
  })
  afterAll(() => backends?.dispose())

  it("gives the CPU backend's losses and parameters (f32)", async () => {
    const cpu = await train(backends.cpu, "f32", 3)
    const cuda = await train(backends.cuda, "f32", 3)
    cuda.losses.forEach((l, i) => expect(Math.abs(l - cpu.losses[i]!) / cpu.losses[i]!, `loss of step ${i + 1}`).toBeLessThan(1e-4))
    cuda.weights.forEach((w, i) => expectClose(w, cpu.weights[i]!, { atol: 1e-4, rtol: 1e-3 }, `weight ${i}`))
  })

  it("in mixed precision (bf16 copies, f32 masters) follows the f32 losses to ~1e-2", async () => {
    const f32 = await train(backends.cpu, "f32", 3)
    const mixed = await train(backends.cuda, "bf16", 3)
    mixed.losses.forEach((l, i) => expect(Math.abs(l - f32.losses[i]!) / f32.losses[i]!, `loss of step ${i + 1}`).toBeLessThan(3e-2))
  })

  // Emulated, a step takes seconds: fewer steps show the same steady state.
  const steps = cudaEmulated ? 30 : 1000
  it(`takes no memory from the system after warm-up over ${steps} steps, and leaks no tensor`, async () => {
    const stats = await runOn(
      backends.cuda,
      Effect.gen(function* () {
        const s = yield* initState(7)
        for (let i = 1; i <= 3; i++) {
          yield* step(s, "f32", i)
          yield* step(s, "bf16", i)
        }
        const warm = backends.cudaBackend.stats() as NativeStats
        let lastLoss = Number.NaN
        for (let i = 4; i <= steps; i++) lastLoss = yield* step(s, i % 2 === 0 ? "f32" : "bf16", i)
        return { warm, end: backends.cudaBackend.stats() as NativeStats, lastLoss }
      })
    )
    expect(Number.isFinite(stats.lastLoss)).toBe(true)
    expect(stats.end.systemAllocs, "cudaMalloc calls after warm-up").toBe(stats.warm.systemAllocs)
    expect(stats.end.liveTensors).toBe(stats.warm.liveTensors)
    expect(stats.end.liveBytes).toBe(stats.warm.liveBytes)
    expect(stats.end.pinnedBytes, "pinned staging memory").toBe(stats.warm.pinnedBytes)
  })
})

// A device with determinism "run-to-run" (its attention's dq without atomics): the same training twice gives
// the same bits. Meaningful on a GPU, where the default device's dq is added in an order the hardware picks. Also
// with less cuBLASLt workspace than the default, where the heuristic may pick other (split-K) GEMM algorithms:
// the cuBLAS guide has cublasLtMatmul repeat itself whatever the algorithm (docs/cuda.md, GEMM).
for (const gemmWorkspaceBytes of [undefined, 1 << 20, 0]) {
  describeCuda(`training steps on a device with determinism "run-to-run"${gemmWorkspaceBytes === undefined ? "" : ` and gemmWorkspaceBytes ${gemmWorkspaceBytes}`}`, () => {
    let deterministic: ReturnType<typeof makeCudaAndCpu>
    beforeAll(() => {
      deterministic = makeCudaAndCpu({ determinism: "run-to-run", ...(gemmWorkspaceBytes === undefined ? {} : { gemmWorkspaceBytes }) })
    })
    afterAll(() => deterministic?.dispose())

    it("repeat themselves bit for bit, in f32 and in mixed precision", async () => {
      for (const dtype of ["f32", "bf16"] as const) {
        const first = await train(deterministic.cuda, dtype, 3)
        const second = await train(deterministic.cuda, dtype, 3)
        expect(second.losses, `${dtype} losses`).toEqual(first.losses)
        second.weights.forEach((w, i) => expect(w, `${dtype} weight ${i}`).toEqual(first.weights[i]))
      }
    })
  })
}
