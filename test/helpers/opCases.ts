import { Effect, type Scope } from "effect"
import type { KernelError } from "../../src/kernels/errors.ts"
import { Kernels } from "../../src/kernels/Kernels.ts"
import type { TensorOps } from "../../src/kernels/ops.ts"
import type { DType, Shape } from "../../src/tensor/dtype.ts"
import { Tensor } from "../../src/tensor/Tensor.ts"
import type { Tolerance } from "./compare.ts"
import { Gen } from "./gen.ts"

/**
 * One case per op of the contract: it builds its inputs from a seed (random shapes and values) and returns
 * what to compare. test/kernels/parity.test.ts runs them on the CPU backend against the Reference,
 * test/gpu/ops.test.ts on the CUDA backend against the CPU one.
 */
export type Case = {
  readonly run: (g: Gen) => Effect.Effect<unknown, KernelError, Kernels | Scope.Scope>
  readonly tol?: Tolerance
}

export const F32: Tolerance = { atol: 1e-5, rtol: 1e-5 }
export const LOOSE: Tolerance = { atol: 1e-4, rtol: 1e-4 }

const tensor = (g: Gen, shape: Shape, scale = 1) => Effect.flatMap(Kernels, (k) => k.fromArray(g.normals(shape.reduce((a, b) => a * b, 1), scale), shape))
const positive = (g: Gen, shape: Shape, lo: number, hi: number) =>
  Effect.flatMap(Kernels, (k) => k.fromArray(g.uniforms(shape.reduce((a, b) => a * b, 1), lo, hi), shape))
const ints = (g: Gen, shape: Shape, lo: number, hi: number, dtype: DType = "i32") =>
  Effect.flatMap(Kernels, (k) => k.fromArray(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => g.int(lo, hi)), shape, dtype))
const op = <A>(f: (k: Kernels["Type"]) => Effect.Effect<A, KernelError, Scope.Scope>) => Effect.flatMap(Kernels, f)

/** Shapes with a trailing-suffix operand for broadcasting binaries. */
const binaryCase = (name: "add" | "sub" | "mul"): Case => ({
  run: (g) =>
    Effect.gen(function* () {
      const a = yield* tensor(g, g.shape(g.int(1, 4)))
      const b = yield* tensor(g, g.int(0, 1) === 0 ? a.shape : a.shape.slice(g.int(0, a.shape.length - 1)))
      return yield* op((k) => k[name](a, b))
    })
})

const layerNormInputs = (g: Gen) =>
  Effect.gen(function* () {
    const x = yield* tensor(g, [...g.shape(g.int(0, 2)), g.int(1, 40)], 3)
    const dim = x.shape[x.shape.length - 1] as number
    const affine = g.int(0, 2)
    const weight = affine >= 1 ? yield* tensor(g, [dim]) : undefined
    const bias = affine === 2 ? yield* tensor(g, [dim]) : undefined
    return { x, weight, bias, eps: g.pick([1e-5, 1e-6, 0.1]) }
  })

/** x [B, L, D] (D >= 1) with adaLN shift and scale [B, D]. */
const layerNormModulateInputs = (g: Gen) =>
  Effect.gen(function* () {
    const x = yield* tensor(g, [g.int(1, 3), g.int(0, 9), g.int(1, 40)], 3)
    const [b, , d] = x.shape as [number, number, number]
    return { x, shift: yield* tensor(g, [b, d]), scale: yield* tensor(g, [b, d]), eps: g.pick([1e-5, 1e-6, 0.1]) }
  })

/** Rank-4 q, k, v, or (half the time) the [B, L, H·D] layout with `heads`. */
const attentionInputs = (g: Gen) =>
  Effect.gen(function* () {
    const [b, lq, lk, h, d] = [g.int(1, 3), g.int(1, 9), g.int(1, 9), g.int(1, 3), g.pick([1, 4, 8, 16])]
    const packed = g.int(0, 1) === 1
    const layout = (l: number) => (packed ? [b, l, h * d] : [b, l, h, d])
    const q = yield* tensor(g, layout(lq))
    const kk = yield* tensor(g, layout(lk))
    const v = yield* tensor(g, layout(lk))
    const keyMask = g.int(0, 1) === 0 ? undefined : yield* ints(g, [b, lk], 0, 1)
    const scale = g.int(0, 1) === 0 ? undefined : g.uniform()
    return { q, k: kk, v, options: { keyMask, scale, ...(packed ? { heads: h } : {}) } }
  })

const scoreRows = (g: Gen) => [g.int(1, 4), ...g.shape(g.int(1, 3))] as Shape

const optimizerLists = (g: Gen, count: number) =>
  Effect.forEach(Array.from({ length: count }), () => tensor(g, g.shape(g.int(1, 3), 1, 9)))

const sameShapes = (g: Gen, like: ReadonlyArray<Tensor>, scale = 1) => Effect.forEach(like, (t) => tensor(g, t.shape, scale))

/** Parameters, gradients, Adam moments (v >= 0) and hyper-parameters of one AdamW step. */
const adamwInputs = (g: Gen) =>
  Effect.gen(function* () {
    const params = yield* optimizerLists(g, g.int(1, 3))
    const grads = yield* sameShapes(g, params)
    const m = yield* sameShapes(g, params, 0.1)
    const v = yield* Effect.forEach(params, (p) => positive(g, p.shape, 0, 0.01))
    const hyper = { lr: g.uniform() * 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: g.pick([0, 0.01]), step: g.int(1, 100) }
    return { params, grads, m, v, hyper }
  })

export const opCases: { readonly [K in keyof TensorOps]: Case } = {
  fromArray: { run: (g) => tensor(g, g.shape(g.int(0, 4))) },
  empty: {
    run: (g) =>
      Effect.gen(function* () {
        const shape = g.shape(g.int(0, 3))
        const t = yield* op((k) => k.empty(shape))
        yield* op((k) => k.write(t, g.normals(t.numel)))
        return t
      })
  },
  full: { run: (g) => op((k) => k.full(g.shape(g.int(0, 3)), g.normal())) },
  zeros: { run: (g) => op((k) => k.zeros(g.shape(g.int(0, 3)), g.pick(["f32", "i32"] as const))) },
  write: {
    run: (g) =>
      Effect.gen(function* () {
        const t = yield* tensor(g, g.shape(2))
        const before = yield* op((k) => k.copy(t))
        yield* op((k) => k.write(t, g.normals(t.numel)))
        return [before, t]
      })
  },
  view: { run: (g) => Effect.flatMap(tensor(g, [g.int(1, 4), g.int(1, 4), 2]), (t) => op((k) => k.view(t, [t.numel / 2, 2]))) },
  copy: { run: (g) => Effect.flatMap(ints(g, g.shape(2), -9, 9), (t) => op((k) => k.copy(t))) },
  assign: {
    run: (g) =>
      Effect.gen(function* () {
        const dst = yield* tensor(g, [3, 5])
        yield* op((k) => k.assign(dst, dst))
        const src = yield* tensor(g, [3, 5])
        yield* op((k) => k.assign(dst, src))
        return dst
      })
  },
  cast: {
    run: (g) =>
      Effect.gen(function* () {
        const shape = g.shape(g.int(0, 3))
        const floats = yield* tensor(g, shape, 3000)
        const ints = yield* op((k) => k.cast(floats, "i32"))
        return [ints, yield* op((k) => k.cast(ints, "f32")), yield* op((k) => k.cast(floats, "f32"))]
      })
  },
  castAll: {
    run: (g) =>
      Effect.gen(function* () {
        // Up to five tensors of any shapes (empty ones and an empty list included), one dtype.
        const xs = yield* Effect.forEach(Array.from({ length: g.int(0, 5) }), () => tensor(g, g.shape(g.int(0, 3)), 3000))
        const ints = yield* op((k) => k.castAll(xs, "i32"))
        return [ints, yield* op((k) => k.castAll(ints, "f32")), yield* op((k) => k.castAll(xs, "f32"))]
      })
  },
  add: binaryCase("add"),
  sub: binaryCase("sub"),
  mul: binaryCase("mul"),
  mulRows: {
    run: (g) =>
      Effect.gen(function* () {
        const x = yield* tensor(g, g.shape(g.int(1, 4)))
        const s = yield* tensor(g, x.shape.slice(0, g.int(0, x.shape.length)))
        return yield* op((k) => k.mulRows(x, s))
      })
  },
  affine: { run: (g) => Effect.flatMap(tensor(g, g.shape(3)), (x) => op((k) => k.affine(x, g.normal(), g.normal()))) },
  scale: { run: (g) => Effect.flatMap(tensor(g, g.shape(3)), (x) => op((k) => k.scale(x, g.normal()))) },
  axpy: {
    run: (g) =>
      Effect.gen(function* () {
        const x = yield* tensor(g, g.shape(3))
        return yield* op((k) => Effect.flatMap(k.fromArray(g.normals(x.numel), x.shape), (y) => k.axpy(g.normal(), x, y)))
      })
  },
  rowDot: {
    run: (g) =>
      Effect.gen(function* () {
        const a = yield* tensor(g, g.shape(g.int(1, 3), 1, 30))
        const b = yield* tensor(g, a.shape)
        return yield* op((k) => k.rowDot(a, b, g.int(0, a.shape.length)))
      })
  },
  gelu: { run: (g) => Effect.flatMap(tensor(g, g.shape(3), 3), (x) => op((k) => k.gelu(x))) },
  geluBackward: {
    run: (g) => Effect.flatMap(tensor(g, g.shape(3), 3), (x) => Effect.flatMap(tensor(g, x.shape), (dy) => op((k) => k.geluBackward(dy, x))))
  },
  silu: { run: (g) => Effect.flatMap(tensor(g, g.shape(3), 3), (x) => op((k) => k.silu(x))) },
  siluBackward: {
    run: (g) => Effect.flatMap(tensor(g, g.shape(3), 3), (x) => Effect.flatMap(tensor(g, x.shape), (dy) => op((k) => k.siluBackward(dy, x))))
  },
  layerNorm: {
    run: (g) => Effect.flatMap(layerNormInputs(g), ({ x, weight, bias, eps }) => op((k) => k.layerNorm(x, { weight, bias, eps }))),
    tol: LOOSE
  },
  layerNormBackward: {
    run: (g) =>
      Effect.gen(function* () {
        const { x, weight, bias, eps } = yield* layerNormInputs(g)
        const saved = yield* op((k) => k.layerNorm(x, { weight, bias, eps }))
        const dy = yield* tensor(g, x.shape)
        // Half the time dx is added to a base (autograd's accumulation).
        const addTo = g.int(0, 1) === 1 ? { dx: yield* tensor(g, x.shape) } : undefined
        return yield* op((k) => k.layerNormBackward(dy, x, saved, { weight, withBias: bias !== undefined, addTo }))
      }),
    tol: LOOSE
  },
  modulate: {
    run: (g) =>
      Effect.gen(function* () {
        const x = yield* tensor(g, g.shape(3))
        const [b, , d] = x.shape as [number, number, number]
        return yield* op((k) => Effect.flatMap(Effect.all([k.fromArray(g.normals(b * d), [b, d]), k.fromArray(g.normals(b * d), [b, d])]), ([shift, sc]) => k.modulate(x, shift, sc)))
      })
  },
  modulateBackward: {
    run: (g) =>
      Effect.gen(function* () {
        const x = yield* tensor(g, g.shape(3, 1, 20))
        const [b, , d] = x.shape as [number, number, number]
        const sc = yield* tensor(g, [b, d])
        const dy = yield* tensor(g, x.shape)
        return yield* op((k) => k.modulateBackward(dy, x, sc))
      }),
    tol: LOOSE
  },
  layerNormModulate: {
    run: (g) => Effect.flatMap(layerNormModulateInputs(g), ({ x, shift, scale, eps }) => op((k) => k.layerNormModulate(x, shift, scale, eps))),
    tol: LOOSE
  },
  layerNormModulateBackward: {
    run: (g) =>
      Effect.gen(function* () {
        const { x, shift, scale, eps } = yield* layerNormModulateInputs(g)
        const saved = yield* op((k) => k.layerNormModulate(x, shift, scale, eps))
        const dy = yield* tensor(g, x.shape)
        const addTo = g.int(0, 1) === 1 ? { dx: yield* tensor(g, x.shape) } : undefined
        return yield* op((k) => k.layerNormModulateBackward(dy, x, saved, scale, addTo))
      }),
    tol: LOOSE
  },
  gatedResidual: {
    run: (g) =>
      Effect.gen(function* () {
        const x = yield* tensor(g, g.shape(3))
        const [b, , d] = x.shape as [number, number, number]
        const gate = yield* tensor(g, [b, d])
        const branch = yield* tensor(g, x.shape)
        return yield* op((k) => k.gatedResidual(x, gate, branch))
      })
  },
  gatedResidualBackward: {
    run: (g) =>
      Effect.gen(function* () {
        const branch = yield* tensor(g, g.shape(3, 1, 20))
        const [b, , d] = branch.shape as [number, number, number]
        const gate = yield* tensor(g, [b, d])
        const dout = yield* tensor(g, branch.shape)
        return yield* op((k) => k.gatedResidualBackward(dout, gate, branch))
      }),
    tol: LOOSE
  },
  attention: {
    run: (g) => Effect.flatMap(attentionInputs(g), ({ q, k: kk, v, options }) => op((k) => k.attention(q, kk, v, options))),
    tol: LOOSE
  },
  attentionBackward: {
    run: (g) =>
      Effect.gen(function* () {
        const { q, k: kk, v, options } = yield* attentionInputs(g)
        const saved = yield* op((k) => k.attention(q, kk, v, options))
        const dout = yield* tensor(g, q.shape)
        return yield* op((k) => k.attentionBackward(dout, q, kk, v, saved, options))
      }),
    tol: LOOSE
  },
  matmul: {
    run: (g) =>
      Effect.gen(function* () {
        const batch = g.shape(g.int(0, 2), 1, 3)
        const [m, n, kk] = [g.int(1, 33), g.int(1, 33), g.int(1, 33)]
        const transA = g.int(0, 1) === 1
        const transB = g.int(0, 1) === 1
        const shared = g.int(0, 1) === 1
        const a = yield* tensor(g, [...batch, ...(transA ? [kk, m] : [m, kk])])
        const b = yield* tensor(g, [...(shared ? [] : batch), ...(transB ? [n, kk] : [kk, n])])
        return yield* op((k) => k.matmul(a, b, { transA, transB, alpha: g.pick([1, 0.5, -2]) }))
      }),
    tol: LOOSE
  },
  linear: {
    run: (g) =>
      Effect.gen(function* () {
        const [inF, outF] = [g.int(1, 40), g.int(1, 40)]
        const x = yield* tensor(g, [...g.shape(g.int(0, 2)), inF])
        const w = yield* tensor(g, [outF, inF])
        const bias = g.int(0, 1) === 1 ? yield* tensor(g, [outF]) : undefined
        return yield* op((k) => k.linear(x, w, bias))
      }),
    tol: LOOSE
  },
  linearGelu: {
    run: (g) =>
      Effect.gen(function* () {
        // Widths crossing 8 (CUDA's epilogue needs out % 8 == 0, else it takes the two-pass path).
        const [inF, outF] = [g.int(1, 40), g.pick([8, 16, 24, g.int(1, 40)])]
        const x = yield* tensor(g, [...g.shape(g.int(0, 2)), inF])
        const w = yield* tensor(g, [outF, inF])
        const bias = g.int(0, 1) === 1 ? yield* tensor(g, [outF]) : undefined
        return yield* op((k) => k.linearGelu(x, w, bias))
      }),
    tol: LOOSE
  },
  linearBackward: {
    run: (g) =>
      Effect.gen(function* () {
        // Leading dimensions of any rank, zero rows included; each gradient asked or not.
        const [inF, outF] = [g.int(1, 40), g.int(1, 40)]
        const leading = g.int(0, 4) === 0 ? [0, g.int(1, 3)] : g.shape(g.int(0, 2))
        const x = yield* tensor(g, [...leading, inF])
        const w = yield* tensor(g, [outF, inF])
        const dy = yield* tensor(g, [...x.shape.slice(0, -1), outF])
        const asked = { dx: g.int(0, 3) > 0, dweight: g.int(0, 3) > 0, dbias: g.int(0, 1) === 1 }
        // Each asked gradient added to a base half the time (autograd's accumulation).
        const base = (wanted: boolean, shape: ReadonlyArray<number>) => (wanted && g.int(0, 1) === 1 ? tensor(g, shape) : Effect.succeed(undefined))
        const addTo = { dx: yield* base(asked.dx, x.shape), dweight: yield* base(asked.dweight, w.shape), dbias: yield* base(asked.dbias, [outF]) }
        return yield* op((k) => k.linearBackward(dy, x, w, { ...asked, addTo }))
      }),
    tol: LOOSE
  },
  patchify: {
    run: (g) =>
      Effect.gen(function* () {
        const p = g.int(1, 3)
        const x = yield* tensor(g, [g.int(1, 2), g.int(1, 3), p * g.int(1, 3), p * g.int(1, 3)])
        return yield* op((k) => k.patchify(x, p))
      })
  },
  unpatchify: {
    run: (g) =>
      Effect.gen(function* () {
        const [p, c, hp, wp, b] = [g.int(1, 3), g.int(1, 3), g.int(1, 3), g.int(1, 3), g.int(1, 2)]
        const tokens = yield* tensor(g, [b, hp * wp, p * p * c])
        return yield* op((k) => k.unpatchify(tokens, { channels: c, height: hp * p, width: wp * p, patch: p }))
      })
  },
  concat: {
    run: (g) =>
      Effect.gen(function* () {
        const base = g.shape(g.int(1, 3))
        const axis = g.int(0, base.length - 1)
        const parts = yield* Effect.forEach(Array.from({ length: g.int(1, 3) }), () =>
          tensor(g, base.map((d, j) => (j === axis ? g.int(0, 3) : d)))
        )
        return yield* op((k) => k.concat(parts, axis))
      })
  },
  narrow: {
    run: (g) =>
      Effect.gen(function* () {
        const x = yield* tensor(g, g.shape(g.int(1, 3)))
        const axis = g.int(0, x.shape.length - 1)
        const start = g.int(0, x.shape[axis] as number)
        return yield* op((k) => k.narrow(x, axis, start, g.int(0, (x.shape[axis] as number) - start)))
      })
  },
  split: {
    run: (g) =>
      Effect.gen(function* () {
        const count = g.int(1, 6)
        const shape = g.shape(g.int(1, 3))
        const axis = g.int(0, shape.length - 1)
        const x = yield* tensor(g, shape.map((d, j) => (j === axis ? d * count : d)))
        return yield* op((k) => k.split(x, axis, count))
      })
  },
  pad: {
    run: (g) =>
      Effect.gen(function* () {
        const x = yield* tensor(g, g.shape(g.int(1, 3)))
        return yield* op((k) => k.pad(x, g.int(0, x.shape.length - 1), g.int(0, 3), g.int(0, 3)))
      })
  },
  embedding: {
    run: (g) =>
      Effect.gen(function* () {
        const table = yield* tensor(g, [g.int(1, 10), g.int(1, 8)])
        const ids = yield* ints(g, g.shape(g.int(0, 2)), 0, (table.shape[0] as number) - 1)
        return yield* op((k) => k.embedding(table, ids))
      })
  },
  embeddingBackward: {
    run: (g) =>
      Effect.gen(function* () {
        const vocab = g.int(1, 10)
        const ids = yield* ints(g, g.shape(g.int(0, 2)), 0, vocab - 1)
        const dout = yield* tensor(g, [...ids.shape, g.int(1, 8)])
        return yield* op((k) => k.embeddingBackward(dout, ids, vocab))
      })
  },
  timestepEmbedding: {
    run: (g) => Effect.flatMap(positive(g, [g.int(1, 5)], 0, 1000), (t) => op((k) => k.timestepEmbedding(t, g.int(1, 33), g.pick([10000, 100])))),
    tol: LOOSE
  },
  sum: { run: (g) => Effect.flatMap(tensor(g, g.shape(g.int(0, 3), 1, 30)), (x) => op((k) => k.sum(x))), tol: LOOSE },
  mean: { run: (g) => Effect.flatMap(tensor(g, g.shape(g.int(0, 3), 1, 30)), (x) => op((k) => k.mean(x))) },
  sumAxis: {
    run: (g) => Effect.flatMap(tensor(g, g.shape(g.int(1, 4))), (x) => op((k) => k.sumAxis(x, g.int(0, x.shape.length - 1)))),
    tol: LOOSE
  },
  mse: { run: (g) => Effect.flatMap(tensor(g, g.shape(g.int(1, 3))), (a) => Effect.flatMap(tensor(g, a.shape), (b) => op((k) => k.mse(a, b)))) },
  mseRows: {
    run: (g) =>
      Effect.flatMap(tensor(g, g.shape(g.int(1, 3))), (a) => Effect.flatMap(tensor(g, a.shape), (b) => op((k) => k.mseRows(a, b, g.int(0, a.shape.length)))))
  },
  classifierScoreDirection: {
    run: (g) => Effect.flatMap(tensor(g, scoreRows(g)), (u) => Effect.flatMap(tensor(g, u.shape), (c) => op((k) => k.classifierScoreDirection(u, c))))
  },
  fakeScoreMix: {
    run: (g) =>
      Effect.gen(function* () {
        const u = yield* tensor(g, scoreRows(g))
        const [c, f] = yield* sameShapes(g, [u, u])
        return yield* op((k) => k.fakeScoreMix(u, c as Tensor, f as Tensor, g.uniform()))
      })
  },
  energyPreservingRenorm: {
    run: (g) => Effect.flatMap(tensor(g, scoreRows(g)), (x) => Effect.flatMap(tensor(g, x.shape), (r) => op((k) => k.energyPreservingRenorm(x, r)))),
    tol: LOOSE
  },
  velocityTarget: {
    run: (g) =>
      Effect.gen(function* () {
        const xt = yield* tensor(g, scoreRows(g))
        const xr = yield* tensor(g, xt.shape)
        const t = yield* positive(g, [xt.shape[0] as number], 0.05, 1)
        return yield* op((k) => k.velocityTarget(xt, xr, t))
      })
  },
  selfEvaluationTarget: {
    run: (g) =>
      Effect.gen(function* () {
        const x0 = yield* tensor(g, scoreRows(g))
        const [x0Hat, xt, gUncond, gCond, gFake] = yield* sameShapes(g, [x0, x0, x0, x0, x0])
        const rows = x0.shape[0] as number
        const t = yield* positive(g, [rows], 0.05, 1)
        const lambda = yield* positive(g, [rows], 0, 4)
        return yield* op((k) =>
          k.selfEvaluationTarget({ x0, x0Hat: x0Hat!, xt: xt!, t, lambda, gUncond: gUncond!, gCond: gCond!, gFake: g.int(0, 1) ? gFake : undefined, k: 0.9 })
        )
      }),
    tol: LOOSE
  },
  cfgCombine: {
    run: (g) => Effect.flatMap(tensor(g, scoreRows(g)), (u) => Effect.flatMap(tensor(g, u.shape), (c) => op((k) => k.cfgCombine(u, c, g.uniform() * 8))))
  },
  energyPreservingCfg: {
    run: (g) =>
      Effect.flatMap(tensor(g, scoreRows(g)), (u) => Effect.flatMap(tensor(g, u.shape), (c) => op((k) => k.energyPreservingCfg(u, c, g.uniform() * 8)))),
    tol: LOOSE
  },
  randomUniform: {
    run: (g) => op((k) => k.randomUniform(g.shape(g.int(0, 3), 1, 9), { seed: g.int(0, 2 ** 40), offset: g.int(0, 2 ** 33) })),
    tol: { atol: 0, rtol: 0 }
  },
  randomNormal: {
    run: (g) => op((k) => k.randomNormal(g.shape(g.int(0, 3), 1, 9), { seed: g.int(0, 2 ** 40), offset: g.int(0, 2 ** 33) })),
    tol: { atol: 1e-6, rtol: 1e-6 }
  },
  adamw: {
    run: (g) =>
      Effect.gen(function* () {
        const { params, grads, m, v, hyper } = yield* adamwInputs(g)
        yield* op((k) => k.adamw({ params, grads, m, v }, hyper))
        return [...params, ...m, ...v]
      }),
    tol: LOOSE
  },
  adamwEma: {
    run: (g) =>
      Effect.gen(function* () {
        const { params, grads, m, v, hyper } = yield* adamwInputs(g)
        const ema = yield* sameShapes(g, params)
        yield* op((k) => k.adamwEma({ params, grads, m, v, ema }, hyper, g.pick([0.9, 0.999, 0, 1])))
        return [...params, ...m, ...v, ...ema]
      }),
    tol: LOOSE
  },
  emaUpdate: {
    run: (g) =>
      Effect.gen(function* () {
        const params = yield* optimizerLists(g, g.int(1, 3))
        const ema = yield* sameShapes(g, params)
        yield* op((k) => k.emaUpdate(ema, params, g.pick([0.9, 0.999, 0])))
        return ema
      })
  },
  globalNorm: { run: (g) => Effect.flatMap(optimizerLists(g, g.int(1, 3)), (xs) => op((k) => k.globalNorm(xs))) },
  clipByNorm: {
    run: (g) =>
      Effect.gen(function* () {
        const xs = yield* optimizerLists(g, g.int(1, 3))
        const norm = yield* op((k) => k.globalNorm(xs))
        yield* op((k) => k.clipByNorm(xs, norm, g.pick([0.1, 1, 100])))
        return xs
      })
  }
}

export const outputsOf = (value: unknown): Array<Tensor> =>
  value instanceof Tensor
    ? [value]
    : Array.isArray(value)
      ? value.flatMap(outputsOf)
      : typeof value === "object" && value !== null
        ? Object.values(value).flatMap(outputsOf)
        : []

/** Runs a case from a seed and reads every tensor it returns. */
export const readOutputs = (c: Case, seed: number) =>
  Effect.flatMap(c.run(new Gen(seed)), (result) =>
    Effect.flatMap(Kernels, (k) =>
      Effect.forEach(outputsOf(result), (t) => Effect.map(k.read(t), (data) => ({ shape: t.shape, dtype: t.dtype, data: Array.from(data) })))
    )
  )

