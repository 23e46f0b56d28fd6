import { Effect, type Scope } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import type { KernelError } from "../../src/kernels/errors.ts"
import { Kernels, type KernelsService } from "../../src/kernels/Kernels.ts"
import type { NativeStats } from "../../src/kernels/native/binding.ts"
import { tensorOpNames } from "../../src/kernels/ops.ts"
import type { Shape } from "../../src/tensor/dtype.ts"
import type { Tensor } from "../../src/tensor/Tensor.ts"
import { fusedVersusSplit } from "../helpers/adamwEma.ts"
import { type Tolerance, expectClose } from "../helpers/compare.ts"
import { Gen } from "../helpers/gen.ts"
import { type Case, F32, LOOSE, opCases, outputsOf, readOutputs } from "../helpers/opCases.ts"
import { cudaEmulated, describeCuda, makeCudaAndCpu, rms, roundToBf16, runOn } from "./cuda.ts"

/**
 * The CUDA backend against the CPU backend (itself checked against the Reference): every op of the contract
 * on the parity cases' random small shapes, then at sizes that cross the CUDA kernels' tiles, chunks and
 * batches, then every bf16-capable op with bf16 storage against f32 on the same bf16-rounded inputs.
 */

type Backends = ReturnType<typeof makeCudaAndCpu>
let backends: Backends

const compareOutputs = async (name: string, c: Case, seed: number, tol: Tolerance) => {
  const expected = await runOn(backends.cpu, readOutputs(c, seed))
  const actual = await runOn(backends.cuda, readOutputs(c, seed))
  expect(actual.length, `${name} outputs`).toBe(expected.length)
  actual.forEach((out, i) => {
    const ref = expected[i]!
    expect(out.shape, `${name} output ${i} shape`).toEqual(ref.shape)
    expect(out.dtype, `${name} output ${i} dtype`).toBe(ref.dtype)
    expectClose(out.data, ref.data, tol, `${name} (seed ${seed}) output ${i}`)
  })
}

describeCuda("CUDA kernels match the CPU backend: every op, random small shapes, f32", () => {
  beforeAll(() => {
    backends = makeCudaAndCpu()
  })
  afterAll(() => backends?.dispose())

  for (const [index, name] of tensorOpNames.entries())
    it(name, async () => {
      const c = opCases[name]
      for (let run = 0; run < 25; run++) await compareOutputs(name, c, 7919 * run + index, c.tol ?? F32)
    })
})

// ---- sizes that cross the kernels' tiles (32-row attention tiles, 8192-column norm chunks, the optimizer's
// 4096-element chunks and per-launch tensor tables, multi-block reductions) --------------------------------

const k$ = <A>(f: (k: KernelsService) => Effect.Effect<A, KernelError, Scope.Scope>) => Effect.flatMap(Kernels, f)
const normal = (g: Gen, shape: Shape, scale = 1) => k$((k) => k.fromArray(g.normals(shape.reduce((a, b) => a * b, 1), scale), shape))
const uniform = (g: Gen, shape: Shape, lo: number, hi: number) =>
  k$((k) => k.fromArray(g.uniforms(shape.reduce((a, b) => a * b, 1), lo, hi), shape))
const mask = (g: Gen, batch: number, keys: number) =>
  // Batch 0 attends everything, batch 1 a random half, batch 2 (when there is one) nothing at all.
  k$((k) => k.fromArray(Array.from({ length: batch * keys }, (_, i) => (i < keys ? 1 : i < 2 * keys ? g.int(0, 1) : 0)), [batch, keys], "i32"))

const attentionAt = (lq: number, lk: number, heads: number, headDim: number, masked: boolean, withBackward: boolean): Case => ({
  run: (g) =>
    Effect.gen(function* () {
      const batch = masked ? 3 : 2
      const q = yield* normal(g, [batch, lq, heads, headDim])
      const kk = yield* normal(g, [batch, lk, heads, headDim])
      const v = yield* normal(g, [batch, lk, heads, headDim])
      const keyMask = masked ? yield* mask(g, batch, lk) : undefined
      const options = { keyMask }
      const saved = yield* k$((k) => k.attention(q, kk, v, options))
      if (!withBackward) return saved
      const dout = yield* normal(g, q.shape)
      return [saved, yield* k$((k) => k.attentionBackward(dout, q, kk, v, saved, options))]
    }),
  tol: { atol: 2e-4, rtol: 2e-4 }
})

const many = (g: Gen, count: number) => Effect.forEach(Array.from({ length: count }), (_, i) => normal(g, [g.int(0, 3) === 0 ? 1 : g.int(1, 600), i % 7 === 0 ? 33 : 3]))

const largeCases: Record<string, Case> = {
  "attention 256x256, 2 heads of 64": attentionAt(256, 256, 2, 64, false, true),
  "attention 300x37, head dim 128, masked": attentionAt(300, 37, 2, 128, true, true),
  "attention 65x129, head dim 80 (runs padded to 128)": attentionAt(65, 129, 3, 80, true, true),
  "attention 40x40, head dim 24 (padded to 32)": attentionAt(40, 40, 1, 24, false, true),
  "attention 96x96, head dim 256": attentionAt(96, 96, 1, 256, true, true),
  "layerNorm 2048 x 1152 with affine, and backward": {
    run: (g) =>
      Effect.gen(function* () {
        const x = yield* normal(g, [2, 1024, 1152], 2)
        const weight = yield* normal(g, [1152])
        const bias = yield* normal(g, [1152])
        const saved = yield* k$((k) => k.layerNorm(x, { weight, bias, eps: 1e-6 }))
        const dy = yield* normal(g, x.shape)
        return [saved, yield* k$((k) => k.layerNormBackward(dy, x, saved, { weight, withBias: true }))]
      }),
    tol: { atol: 2e-4, rtol: 2e-4 }
  },
  "modulate, fused LayerNorm + modulate and gatedResidual backward over 512 tokens": {
    run: (g) =>
      Effect.gen(function* () {
        const x = yield* normal(g, [4, 512, 384])
        const [shift, scale, gate] = yield* Effect.all([normal(g, [4, 384]), normal(g, [4, 384]), normal(g, [4, 384])])
        const branch = yield* normal(g, x.shape)
        const dy = yield* normal(g, x.shape)
        return [
          yield* k$((k) => k.modulate(x, shift, scale)),
          yield* k$((k) => k.modulateBackward(dy, x, scale)),
          yield* Effect.flatMap(k$((k) => k.layerNormModulate(x, shift, scale, 1e-6)), (saved) =>
            Effect.map(k$((k) => k.layerNormModulateBackward(dy, x, saved, scale)), (grads) => [saved, grads])
          ),
          yield* k$((k) => k.gatedResidual(x, gate, branch)),
          yield* k$((k) => k.gatedResidualBackward(dy, gate, branch))
        ]
      }),
    tol: { atol: 2e-4, rtol: 2e-4 }
  },
  "matmul and linear at DiT widths": {
    run: (g) =>
      Effect.gen(function* () {
        const x = yield* normal(g, [4, 128, 384])
        const w = yield* normal(g, [1152, 384], 0.05)
        const bias = yield* normal(g, [1152])
        const a = yield* normal(g, [3, 64, 96])
        const b = yield* normal(g, [3, 80, 96])
        const c = yield* normal(g, [3, 64, 50])
        const narrowWeight = yield* normal(g, [384, 64])
        const up = yield* normal(g, [1536, 384], 0.05)
        const upBias = yield* normal(g, [1536])
        const dy = yield* normal(g, [4, 128, 1152])
        return [
          yield* k$((k) => k.linear(x, w, bias)),
          yield* k$((k) => k.linearBackward(dy, x, w, { dx: true, dweight: true, dbias: true })),
          yield* k$((k) => k.linearGelu(x, up, upBias)),
          yield* k$((k) => k.matmul(x, w, { transB: true })),
          yield* k$((k) => k.matmul(a, b, { transB: true, alpha: 0.5 })),
          yield* k$((k) => k.matmul(a, c, { transA: true, alpha: -1 })),
          yield* k$((k) => k.matmul(x, narrowWeight))
        ]
      }),
    tol: { atol: 1e-3, rtol: 1e-4 }
  },
  "reductions over a million elements": {
    run: (g) =>
      Effect.gen(function* () {
        const x = yield* normal(g, [1024, 1000])
        const y = yield* normal(g, [1024, 1000])
        return [
          yield* k$((k) => k.sum(x)),
          yield* k$((k) => k.mean(x)),
          yield* k$((k) => k.mse(x, y)),
          yield* k$((k) => k.mseRows(x, y, 1)),
          yield* k$((k) => k.sumAxis(x, 0)),
          yield* k$((k) => k.sumAxis(x, 1)),
          yield* k$((k) => k.rowDot(x, y, 1))
        ]
      }),
    tol: { atol: 1e-3, rtol: 1e-4 }
  },
  "optimizer over 100 tensors (one launch each)": {
    run: (g) =>
      Effect.gen(function* () {
        const params = yield* many(g, 100)
        const grads = yield* Effect.forEach(params, (p) => normal(g, p.shape))
        const m = yield* Effect.forEach(params, (p) => normal(g, p.shape, 0.1))
        const v = yield* Effect.forEach(params, (p) => uniform(g, p.shape, 0, 0.01))
        const ema = yield* Effect.forEach(params, (p) => normal(g, p.shape))
        const norm = yield* k$((k) => k.globalNorm(grads))
        yield* k$((k) => k.clipByNorm(grads, norm, 1))
        yield* k$((k) => k.adamw({ params, grads, m, v }, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, step: 7 }))
        yield* k$((k) => k.emaUpdate(ema, params, 0.999))
        return [norm, ...params, ...m, ...v, ...ema]
      }),
    tol: LOOSE
  },
  // 1101 tensors: three launches of AdamW+EMA (tables of 438 tensors); sizes not multiples of 4 (the scalar
  // tails) and a tensor of 245 chunks.
  "adamwEma over 1100 tensors and a million-element one": {
    run: (g) =>
      Effect.gen(function* () {
        const params = [...(yield* many(g, 1100)), yield* normal(g, [1000, 1001])]
        const grads = yield* Effect.forEach(params, (p) => normal(g, p.shape))
        const m = yield* Effect.forEach(params, (p) => normal(g, p.shape, 0.1))
        const v = yield* Effect.forEach(params, (p) => uniform(g, p.shape, 0, 0.01))
        const ema = yield* Effect.forEach(params, (p) => normal(g, p.shape))
        yield* k$((k) => k.adamwEma({ params, grads, m, v, ema }, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, step: 7 }, 0.999))
        return [...params, ...m, ...v, ...ema]
      }),
    tol: LOOSE
  },
  "Philox streams of a million numbers at a large offset": {
    run: () =>
      Effect.gen(function* () {
        const stream = { seed: 2 ** 40 + 12345, offset: 2 ** 33 + 7 }
        return [yield* k$((k) => k.randomUniform([1000003], stream)), yield* k$((k) => k.randomNormal([1000003], stream))]
      }),
    tol: { atol: 1e-6, rtol: 1e-6 }
  },
  "score combinations over rows wider than one norm chunk": {
    run: (g) =>
      Effect.gen(function* () {
        const shape = [4, 3, 64, 64]
        const [x0, x0Hat, xt, gUncond, gCond, gFake] = yield* Effect.forEach(Array.from({ length: 6 }), () => normal(g, shape))
        const t = yield* uniform(g, [4], 0.05, 1)
        const lambda = yield* uniform(g, [4], 0, 4)
        return [
          yield* k$((k) => k.selfEvaluationTarget({ x0: x0!, x0Hat: x0Hat!, xt: xt!, t, lambda, gUncond: gUncond!, gCond: gCond!, gFake, k: 0.9 })),
          yield* k$((k) => k.selfEvaluationTarget({ x0: x0!, x0Hat: x0Hat!, xt: xt!, t, lambda, gUncond: gUncond!, gCond: gCond!, k: 1 })),
          yield* k$((k) => k.energyPreservingCfg(gUncond!, gCond!, 5)),
          yield* k$((k) => k.energyPreservingRenorm(x0Hat!, x0!))
        ]
      }),
    tol: LOOSE
  },
  "embedding backward with repeated ids, layout ops": {
    run: (g) =>
      Effect.gen(function* () {
        const ids = yield* k$((k) => k.fromArray(Array.from({ length: 4096 }, () => g.int(0, 99)), [64, 64], "i32"))
        const dout = yield* normal(g, [64, 64, 48])
        const table = yield* normal(g, [100, 48])
        const image = yield* normal(g, [2, 4, 32, 32])
        const tokens = yield* k$((k) => k.patchify(image, 2))
        return [
          yield* k$((k) => k.embeddingBackward(dout, ids, 100)),
          yield* k$((k) => k.embedding(table, ids)),
          tokens,
          yield* k$((k) => k.unpatchify(tokens, { channels: 4, height: 32, width: 32, patch: 2 })),
          yield* k$((k) => k.concat([dout, dout], 1)),
          yield* k$((k) => k.narrow(dout, 2, 5, 20)),
          yield* k$((k) => k.pad(dout, 1, 3, 1))
        ]
      }),
    tol: { atol: 1e-4, rtol: 1e-5 }
  }
}

describeCuda("adamwEma on CUDA equals adamw followed by emaUpdate on CUDA, bit for bit", () => {
  beforeAll(() => {
    backends = makeCudaAndCpu()
  })
  afterAll(() => backends?.dispose())

  it("over random lists (600 to 1200 tensors: several tables; a 2^20-element tensor in some)", async () => {
    for (const seed of [1, 2, 3, 4]) {
      const g = new Gen(seed)
      const shapes: Array<Shape> = Array.from({ length: g.int(600, 1200) }, () => [g.int(0, 3) === 0 ? 1 : g.int(1, 600), g.pick([1, 3, 4, 33])])
      if (seed % 2 === 0) shapes.push([1024, 1024])
      expect(await runOn(backends.cuda, fusedVersusSplit(g, shapes)), `seed ${seed}`).toEqual([])
    }
  })
})

// embeddingBackward sums each table element in an order fixed by the ids (no atomics), on every device.
describeCuda("embeddingBackward on CUDA gives the same bits on every call", () => {
  beforeAll(() => {
    backends = makeCudaAndCpu()
  })
  afterAll(() => backends?.dispose())

  it("with 16384 ids over 300 rows (many repeats, several row and column blocks)", async () => {
    const g = new Gen(5)
    const ids = Array.from({ length: 16384 }, () => (g.int(0, 3) === 0 ? g.int(0, 299) : g.int(0, 9)))
    const douts = g.normals(16384 * 70)
    const once = () =>
      runOn(
        backends.cuda,
        Effect.gen(function* () {
          const k = yield* Kernels
          const grad = yield* k.embeddingBackward(yield* k.fromArray(douts, [16384, 70]), yield* k.fromArray(ids, [16384], "i32"), 300)
          return Array.from(yield* k.read(grad))
        })
      )
    const first = await once()
    expect(await once()).toEqual(first)
  })
})

describeCuda("CUDA kernels match the CPU backend at sizes that cross tiles, chunks and batches", () => {
  beforeAll(() => {
    backends = makeCudaAndCpu()
  })
  afterAll(() => backends?.dispose())

  // Emulated, one seed: these sizes take a minute or more there.
  for (const [name, c] of Object.entries(largeCases))
    it(name, async () => {
      for (const seed of cudaEmulated ? [1] : [1, 2]) await compareOutputs(name, c, seed, c.tol ?? F32)
    })
})

// ---- bf16 storage ---------------------------------------------------------------------------------------

/** An input: floats (bf16 on CUDA, the same bf16-rounded values as f32 on the CPU) or i32 ids/masks. */
type Input = { readonly shape: Shape; readonly data: ReadonlyArray<number>; readonly int?: boolean }
type Bf16Case = {
  readonly inputs: (g: Gen) => ReadonlyArray<Input>
  readonly run: (k: KernelsService, xs: ReadonlyArray<Tensor>) => Effect.Effect<unknown, KernelError, Scope.Scope>
}

const floats = (g: Gen, shape: Shape, scale = 1): Input => ({ shape, data: g.normals(shape.reduce((a, b) => a * b, 1), scale) })
const at = (xs: ReadonlyArray<Tensor>, i: number) => xs[i] as Tensor

const bf16Cases: Record<string, Bf16Case> = {
  add: { inputs: (g) => [floats(g, [8, 33, 40]), floats(g, [33, 40])], run: (k, xs) => k.add(at(xs, 0), at(xs, 1)) },
  sub: { inputs: (g) => [floats(g, [8, 40]), floats(g, [8, 40])], run: (k, xs) => k.sub(at(xs, 0), at(xs, 1)) },
  mul: { inputs: (g) => [floats(g, [8, 40]), floats(g, [40])], run: (k, xs) => k.mul(at(xs, 0), at(xs, 1)) },
  mulRows: { inputs: (g) => [floats(g, [6, 7, 40]), floats(g, [6])], run: (k, xs) => k.mulRows(at(xs, 0), at(xs, 1)) },
  affine: { inputs: (g) => [floats(g, [1000])], run: (k, xs) => k.affine(at(xs, 0), 1.5, -0.25) },
  axpy: { inputs: (g) => [floats(g, [1000]), floats(g, [1000])], run: (k, xs) => k.axpy(-0.5, at(xs, 0), at(xs, 1)) },
  gelu: { inputs: (g) => [floats(g, [4000], 3)], run: (k, xs) => k.gelu(at(xs, 0)) },
  geluBackward: { inputs: (g) => [floats(g, [4000]), floats(g, [4000], 3)], run: (k, xs) => k.geluBackward(at(xs, 0), at(xs, 1)) },
  silu: { inputs: (g) => [floats(g, [4000], 3)], run: (k, xs) => k.silu(at(xs, 0)) },
  siluBackward: { inputs: (g) => [floats(g, [4000]), floats(g, [4000], 3)], run: (k, xs) => k.siluBackward(at(xs, 0), at(xs, 1)) },
  layerNorm: {
    inputs: (g) => [floats(g, [300, 384], 2), floats(g, [384]), floats(g, [384])],
    run: (k, xs) => k.layerNorm(at(xs, 0), { weight: at(xs, 1), bias: at(xs, 2), eps: 1e-6 })
  },
  "layerNormBackward, alone and added to a base": {
    inputs: (g) => [floats(g, [300, 384], 2), floats(g, [384]), floats(g, [300, 384]), floats(g, [300, 384])],
    run: (k, xs) =>
      Effect.flatMap(k.layerNorm(at(xs, 0), { weight: at(xs, 1), eps: 1e-6 }), (saved) =>
        Effect.all([
          k.layerNormBackward(at(xs, 2), at(xs, 0), saved, { weight: at(xs, 1), withBias: true }),
          k.layerNormBackward(at(xs, 2), at(xs, 0), saved, { weight: at(xs, 1), withBias: false, addTo: { dx: at(xs, 3) } })
        ])
      )
  },
  modulate: { inputs: (g) => [floats(g, [2, 100, 64]), floats(g, [2, 64]), floats(g, [2, 64])], run: (k, xs) => k.modulate(at(xs, 0), at(xs, 1), at(xs, 2)) },
  modulateBackward: {
    inputs: (g) => [floats(g, [2, 100, 64]), floats(g, [2, 100, 64]), floats(g, [2, 64])],
    run: (k, xs) => k.modulateBackward(at(xs, 0), at(xs, 1), at(xs, 2))
  },
  layerNormModulate: {
    inputs: (g) => [floats(g, [2, 150, 384], 2), floats(g, [2, 384]), floats(g, [2, 384])],
    run: (k, xs) => k.layerNormModulate(at(xs, 0), at(xs, 1), at(xs, 2), 1e-6)
  },
  "layerNormModulateBackward, alone and added to a base": {
    inputs: (g) => [floats(g, [2, 150, 384], 2), floats(g, [2, 384]), floats(g, [2, 150, 384]), floats(g, [2, 150, 384])],
    run: (k, xs) =>
      Effect.flatMap(k.layerNormModulate(at(xs, 0), at(xs, 1), at(xs, 1), 1e-6), (saved) =>
        Effect.all([
          k.layerNormModulateBackward(at(xs, 2), at(xs, 0), saved, at(xs, 1)),
          k.layerNormModulateBackward(at(xs, 2), at(xs, 0), saved, at(xs, 1), { dx: at(xs, 3) })
        ])
      )
  },
  gatedResidual: {
    inputs: (g) => [floats(g, [2, 100, 64]), floats(g, [2, 64]), floats(g, [2, 100, 64])],
    run: (k, xs) => k.gatedResidual(at(xs, 0), at(xs, 1), at(xs, 2))
  },
  gatedResidualBackward: {
    inputs: (g) => [floats(g, [2, 100, 64]), floats(g, [2, 64]), floats(g, [2, 100, 64])],
    run: (k, xs) => k.gatedResidualBackward(at(xs, 0), at(xs, 1), at(xs, 2))
  },
  "attention, head dim 64": {
    inputs: (g) => [floats(g, [2, 130, 4, 64]), floats(g, [2, 97, 4, 64]), floats(g, [2, 97, 4, 64])],
    run: (k, xs) => k.attention(at(xs, 0), at(xs, 1), at(xs, 2), {})
  },
  "attention and backward in the [B, L, H·D] layout, 6 heads of 64 (DiT-S)": {
    inputs: (g) => [floats(g, [2, 272, 384]), floats(g, [2, 272, 384]), floats(g, [2, 272, 384]), floats(g, [2, 272, 384])],
    run: (k, xs) =>
      Effect.gen(function* () {
        const options = { heads: 6 }
        const saved = yield* k.attention(at(xs, 0), at(xs, 1), at(xs, 2), options)
        return [saved, yield* k.attentionBackward(at(xs, 3), at(xs, 0), at(xs, 1), at(xs, 2), saved, options)]
      })
  },
  "attention and backward, head dim 128, masked": {
    inputs: (g) => [
      floats(g, [2, 64, 2, 128]),
      floats(g, [2, 80, 2, 128]),
      floats(g, [2, 80, 2, 128]),
      floats(g, [2, 64, 2, 128]),
      { shape: [2, 80], data: Array.from({ length: 160 }, (_, i) => (i < 80 || g.int(0, 1) === 1 ? 1 : 0)), int: true }
    ],
    run: (k, xs) =>
      Effect.gen(function* () {
        const options = { keyMask: at(xs, 4) }
        const saved = yield* k.attention(at(xs, 0), at(xs, 1), at(xs, 2), options)
        return [saved, yield* k.attentionBackward(at(xs, 3), at(xs, 0), at(xs, 1), at(xs, 2), saved, options)]
      })
  },
  "matmul, shared weight and strided batches": {
    inputs: (g) => [floats(g, [4, 96, 384]), floats(g, [384, 256], 0.05), floats(g, [4, 96, 50])],
    run: (k, xs) =>
      Effect.all([
        k.matmul(at(xs, 0), at(xs, 1)),
        k.matmul(at(xs, 0), at(xs, 2), { transA: true }),
        k.matmul(at(xs, 2), at(xs, 0), { transA: true, alpha: 0.25 })
      ])
  },
  "linear with bias": {
    inputs: (g) => [floats(g, [512, 384]), floats(g, [1152, 384], 0.05), floats(g, [1152])],
    run: (k, xs) => k.linear(at(xs, 0), at(xs, 1), at(xs, 2))
  },
  "linear backward, every gradient, the weight's alone, and added to bases": {
    inputs: (g) => [
      floats(g, [4, 128, 384]),
      floats(g, [1152, 384], 0.05),
      floats(g, [4, 128, 1152]),
      floats(g, [4, 128, 384]),
      floats(g, [1152, 384], 4),
      floats(g, [1152], 8)
    ],
    run: (k, xs) =>
      Effect.all([
        k.linearBackward(at(xs, 2), at(xs, 0), at(xs, 1), { dx: true, dweight: true, dbias: true }),
        k.linearBackward(at(xs, 2), at(xs, 0), at(xs, 1), { dx: false, dweight: true, dbias: false }),
        k.linearBackward(at(xs, 2), at(xs, 0), at(xs, 1), {
          dx: true,
          dweight: true,
          dbias: true,
          addTo: { dx: at(xs, 3), dweight: at(xs, 4), dbias: at(xs, 5) }
        })
      ])
  },
  "linear + GELU, with and without bias": {
    inputs: (g) => [floats(g, [512, 384]), floats(g, [1536, 384], 0.05), floats(g, [1536])],
    run: (k, xs) => Effect.all([k.linearGelu(at(xs, 0), at(xs, 1), at(xs, 2)), k.linearGelu(at(xs, 0), at(xs, 1))])
  },
  sumAxis: { inputs: (g) => [floats(g, [700, 3, 40])], run: (k, xs) => Effect.all([k.sumAxis(at(xs, 0), 0), k.sumAxis(at(xs, 0), 2)]) },
  "concat, narrow, split, pad": {
    inputs: (g) => [floats(g, [3, 5, 7]), floats(g, [3, 2, 7]), floats(g, [64, 2304])],
    run: (k, xs) =>
      Effect.all([
        k.concat([at(xs, 0), at(xs, 1)], 1),
        k.narrow(at(xs, 0), 2, 1, 5),
        k.pad(at(xs, 1), 0, 2, 1),
        k.split(at(xs, 2), 1, 6),
        k.split(at(xs, 0), 1, 5)
      ])
  }
}

const inputsOn = (k: KernelsService, inputs: ReadonlyArray<Input>, bf16: boolean) =>
  Effect.forEach(inputs, (input) =>
    input.int === true
      ? k.fromArray(input.data, input.shape, "i32")
      : bf16
        ? k.fromArray(input.data, input.shape, "bf16")
        : k.fromArray(input.data.map(roundToBf16), input.shape)
  )

const readAll = (k: KernelsService, value: unknown) =>
  Effect.forEach(outputsOf(value), (t) => Effect.map(k.read(t), (data) => ({ dtype: t.dtype, shape: t.shape, data: Array.from(data) })))

/** Inputs whose values are bf16-representable, so that a bf16 tensor on CUDA holds what an f32 one holds on the CPU. */
const bf16Floats = (g: Gen, shape: Shape): Input => ({ shape, data: g.normals(shape.reduce((a, b) => a * b, 1)).map(roundToBf16) })

type BranchEdges = (
  k: KernelsService,
  branchDtype: "f32" | "bf16"
) => Effect.Effect<ReadonlyArray<{ dtype: string; data: ReadonlyArray<number> }>, KernelError, Scope.Scope>

/**
 * A bf16 branch's edges in an f32 stream: `edges` run on the CPU in f32 and on CUDA with bf16 branch tensors;
 * each CUDA output has its dtype and matches the CPU's (bf16 to ~1e-2 relative, f32 to ~1e-4).
 */
const compareBranchEdges = async (label: string, edges: BranchEdges, outputs: ReadonlyArray<readonly [string, "f32" | "bf16"]>) => {
  const expected = await Effect.runPromise(Effect.scoped(edges(backends.cpu, "f32")))
  const actual = await Effect.runPromise(Effect.scoped(edges(backends.cuda, "bf16")))
  expect(actual.map((o) => o.dtype)).toEqual(outputs.map(([, dtype]) => dtype))
  actual.forEach((out, i) => {
    const ref = expected[i]!
    const tol = out.dtype === "bf16" ? { atol: 2e-2 * rms(ref.data), rtol: 2e-2 } : { atol: 1e-4 * rms(ref.data), rtol: 1e-4 }
    expectClose(out.data, ref.data, tol, `${label} ${outputs[i]![0]}`)
  })
}

const compareBf16 = async (name: string, c: Bf16Case) => {
  for (const seed of [11, 12, 13]) {
    const inputs = c.inputs(new Gen(seed))
    const run = (k: KernelsService, bf16: boolean) =>
      Effect.scoped(Effect.flatMap(inputsOn(k, inputs, bf16), (xs) => Effect.flatMap(c.run(k, xs), (out) => readAll(k, out))))
    const expected = await Effect.runPromise(run(backends.cpu, false))
    const actual = await Effect.runPromise(run(backends.cuda, true))
    expect(actual.length).toBe(expected.length)
    actual.forEach((out, i) => {
      const ref = expected[i]!
      expect(out.shape).toEqual(ref.shape)
      // Activations come back bf16; saved statistics (lse, mean, rstd) stay f32.
      expect(out.dtype === "bf16" || out.dtype === ref.dtype).toBe(true)
      expectClose(out.data, ref.data, { atol: 2e-2 * Math.max(rms(ref.data), 1e-3), rtol: 2e-2 }, `${name} (seed ${seed}) output ${i}`)
    })
  }
}

describeCuda("bf16 storage on CUDA matches f32 on the CPU for the same bf16-rounded inputs (~1e-2 relative)", () => {
  beforeAll(() => {
    backends = makeCudaAndCpu()
  })
  afterAll(() => backends?.dispose())

  for (const [name, c] of Object.entries(bf16Cases)) it(name, () => compareBf16(name, c))

  it("casts a list of tensors both ways in one call (castAll), over more than one launch's table", async () => {
    // 750 tensors (a table holds 700): empty ones, ones shorter than a chunk and ones over several chunks.
    const g = new Gen(31)
    const sizes = Array.from({ length: 750 }, (_, i) => (i % 97 === 0 ? 0 : i % 50 === 0 ? 5000 + g.int(0, 3000) : g.int(1, 300)))
    const data = sizes.map((n) => g.normals(n, 50))
    const out = await runOn(
      backends.cuda,
      Effect.gen(function* () {
        const k = yield* Kernels
        const xs = yield* Effect.forEach(data, (values) => k.fromArray(values, [values.length]))
        const narrowed = yield* k.castAll(xs, "bf16")
        const widened = yield* k.castAll(narrowed, "f32")
        const read = (ts: ReadonlyArray<Tensor>) => Effect.forEach(ts, (t) => Effect.map(k.read(t), (d) => Array.from(d)))
        return { dtypes: [...new Set(narrowed.map((t) => t.dtype)), ...new Set(widened.map((t) => t.dtype))], narrowed: yield* read(narrowed), widened: yield* read(widened) }
      })
    )
    const rounded = data.map((values) => values.map(roundToBf16))
    expect(out.dtypes).toEqual(["bf16", "f32"])
    expect(out.narrowed).toEqual(rounded)
    expect(out.widened).toEqual(rounded)
  })

  it("joins a bf16 branch to an f32 stream: adaLN writes bf16, the gated residual adds it, their backwards", async () => {
    const g = new Gen(21)
    const [x, shift, scale, gate, dout] = [[4, 272, 384], [4, 384], [4, 384], [4, 384], [4, 272, 384]].map((shape) => floats(g, shape))
    // The branch values (dy of adaLN's output, the branch itself) are bf16-representable on both sides.
    const [dy, branch] = [bf16Floats(g, [4, 272, 384]), bf16Floats(g, [4, 272, 384])]
    // adaLN's y and the branch's gradient are bf16 on CUDA; everything else is f32 from the same values.
    await compareBranchEdges(
      "mixed edges",
      (k, branchDtype) =>
        Effect.gen(function* () {
          const inBranch = (input: Input) => k.fromArray(input.data, input.shape, branchDtype)
          const [xs, shifts, scales, gates, douts] = yield* Effect.forEach([x, shift, scale, gate, dout], (input) => k.fromArray(input!.data, input!.shape))
          const saved = yield* k.layerNormModulate(xs!, shifts!, scales!, 1e-6, branchDtype)
          const back = yield* k.layerNormModulateBackward(yield* inBranch(dy!), xs!, saved, scales!)
          const branches = yield* inBranch(branch!)
          const out = yield* k.gatedResidual(xs!, gates!, branches)
          const residual = yield* k.gatedResidualBackward(douts!, gates!, branches)
          return yield* readAll(k, [saved.y, saved.rstd, back.dx, back.dshift, back.dscale, out, residual.dgate, residual.dbranch])
        }),
      [["y", "bf16"], ["rstd", "f32"], ["dx", "f32"], ["dshift", "f32"], ["dscale", "f32"], ["out", "f32"], ["dgate", "f32"], ["dbranch", "bf16"]]
    )
  })

  it("joins a bf16 branch to an f32 stream: LayerNorm writes bf16, the residual add takes it, LayerNorm's backward", async () => {
    const g = new Gen(22)
    const [x, weight, bias, base] = [[64, 16, 256], [256], [256], [64, 16, 256]].map((shape) => floats(g, shape))
    // The branch values (dy of LayerNorm's output, the branch itself) are bf16-representable on both sides.
    const [dy, branch] = [bf16Floats(g, [64, 16, 256]), bf16Floats(g, [64, 16, 256])]
    // LayerNorm's y is bf16 on CUDA; everything else is f32 from the same values.
    await compareBranchEdges(
      "text edges",
      (k, branchDtype) =>
        Effect.gen(function* () {
          const inBranch = (input: Input) => k.fromArray(input.data, input.shape, branchDtype)
          const [xs, weights, biases, bases] = yield* Effect.forEach([x, weight, bias, base], (input) => k.fromArray(input!.data, input!.shape))
          const saved = yield* k.layerNorm(xs!, { weight: weights, bias: biases, eps: 1e-5, dtype: branchDtype })
          const back = yield* k.layerNormBackward(yield* inBranch(dy!), xs!, saved, { weight: weights, withBias: true, addTo: { dx: bases } })
          const sum = yield* k.add(xs!, yield* inBranch(branch!))
          return yield* readAll(k, [saved.y, saved.rstd, back.dx, back.dweight!, back.dbias!, sum])
        }),
      [["y", "bf16"], ["rstd", "f32"], ["dx", "f32"], ["dweight", "f32"], ["dbias", "f32"], ["sum", "f32"]]
    )
    // The other mixes are refused with a typed error naming the tensor: only add joins a branch.
    const k = backends.cuda
    const refusals = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const x16 = yield* k.fromArray(x!.data, x!.shape, "bf16")
          const x32 = yield* k.fromArray(x!.data, x!.shape)
          const refusal = (effect: Effect.Effect<unknown, KernelError, Scope.Scope>) => Effect.map(Effect.flip(effect), (error) => `${error._tag}: ${error.message}`)
          return yield* Effect.all([refusal(k.layerNorm(x16, { eps: 1e-5, dtype: "f32" })), refusal(k.add(x16, x32)), refusal(k.sub(x32, x16))])
        })
      )
    )
    expect(refusals[0]).toMatch(/DTypeError: .*dtype must be x's \(bf16\), got f32/)
    expect(refusals[1]).toMatch(/DTypeError: .*b must be bf16, got f32/)
    expect(refusals[2]).toMatch(/DTypeError: .*b must be f32, got bf16/)
  })

  it("round-trips values through bf16 storage exactly as rounded on the host, and casts both ways", async () => {
    const data = new Gen(5).normals(10007, 100)
    const out = await runOn(
      backends.cuda,
      Effect.gen(function* () {
        const k = yield* Kernels
        const stored = yield* k.fromArray(data, [10007], "bf16")
        const asF32 = yield* k.cast(stored, "f32")
        const narrowed = yield* k.cast(yield* k.fromArray(data, [10007]), "bf16")
        const filled = yield* k.full([3], 0.1, "bf16")
        return [yield* k.read(stored), yield* k.read(asF32), yield* k.read(narrowed), yield* k.read(filled)].map((x) => Array.from(x))
      })
    )
    const rounded = data.map(roundToBf16)
    expect(out[0]).toEqual(rounded)
    expect(out[1]).toEqual(rounded)
    expect(out[2]).toEqual(rounded)
    expect(out[3]).toEqual([0.1, 0.1, 0.1].map(roundToBf16))
  })
})

/** The bf16 cases that run cuBLASLt, repeated on the devices with other GEMM options below. */
const gemmBf16Cases = [
  "matmul, shared weight and strided batches",
  "linear with bias",
  "linear backward, every gradient, the weight's alone, and added to bases",
  "linear + GELU, with and without bias"
]

// The same GEMMs on a device that times cuBLASLt's candidates per problem (gemmAlgorithms "timed"): whichever
// algorithm wins, the products must not change.
describeCuda('GEMMs on a device with gemmAlgorithms "timed" match the CPU backend, f32 and bf16', () => {
  beforeAll(() => {
    backends = makeCudaAndCpu({ gemmAlgorithms: "timed" })
  })
  afterAll(() => backends?.dispose())

  it("reports its choice", () => expect((backends.cudaBackend.stats() as NativeStats).gemmAlgorithms).toBe("timed"))
  const large = "matmul and linear at DiT widths"
  it(`${large}, f32`, async () => {
    for (const seed of [1, 2]) await compareOutputs(large, largeCases[large]!, seed, largeCases[large]!.tol ?? F32)
  })
  for (const name of gemmBf16Cases)
    it(`${name}, bf16`, () => compareBf16(name, bf16Cases[name]!))
})

// The same GEMMs on devices with less cuBLASLt workspace than the default 32 MiB: none (only algorithms that need
// no workspace may run, the heuristic's first or timed ones) and PyTorch's 1 MiB. The algorithms change with it
// (on the emulator's stand-in: split-K where its partial products fit), the products must not.
const workspaceDevices = [
  { gemmWorkspaceBytes: 0, gemmAlgorithms: "heuristic" },
  { gemmWorkspaceBytes: 0, gemmAlgorithms: "timed" },
  { gemmWorkspaceBytes: 1 << 20, gemmAlgorithms: "heuristic" }
] as const
for (const options of workspaceDevices)
  describeCuda(`GEMMs on a device with gemmWorkspaceBytes ${options.gemmWorkspaceBytes} and gemmAlgorithms "${options.gemmAlgorithms}" match the CPU backend, f32 and bf16`, () => {
    beforeAll(() => {
      backends = makeCudaAndCpu(options)
    })
    afterAll(() => backends?.dispose())

    it("reports its choices", () => {
      const stats = backends.cudaBackend.stats() as NativeStats
      expect([stats.gemmWorkspaceBytes, stats.gemmAlgorithms]).toEqual([options.gemmWorkspaceBytes, options.gemmAlgorithms])
    })
    const large = "matmul and linear at DiT widths"
    it(`${large}, f32`, () => compareOutputs(large, largeCases[large]!, 1, largeCases[large]!.tol ?? F32))
    for (const name of gemmBf16Cases)
      it(`${name}, bf16`, () => compareBf16(name, bf16Cases[name]!))
  })
