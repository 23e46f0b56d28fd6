import { Effect, type Scope } from "effect"
import { InvalidArgumentError, type KernelError } from "../kernels/errors.ts"
import type { KernelsService } from "../kernels/Kernels.ts"
import { aroundAxis } from "../kernels/shapes.ts"
import { type Shape, numelOf, sameShape } from "../tensor/dtype.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import type { DiffOp, Node } from "./records.ts"

/** Gradients for a node's inputs, in input order (undefined where none is needed). */
export type InputGrads = ReadonlyArray<Tensor | undefined>

export type BackwardRule<K extends DiffOp> = (
  node: Node<K>,
  /** The gradient of node.output (zeros where a split's first part got none). */
  g: Tensor,
  k: KernelsService,
  needs: (input: number) => boolean,
  /** The gradient reached so far for another output of the node (split's parts), if any. */
  gradOf: (output: Tensor) => Tensor | undefined,
  /**
   * The gradient input j has reached so far, handed to a rule whose kernel adds its own gradient to it (ops.ts
   * GradientBases): once a rule asks, the gradient it returns for j is the total, and the backward pass makes no
   * add. Ask only for an input the rule computes a gradient for.
   */
  baseOf: (input: number) => Tensor | undefined
) => Effect.Effect<InputGrads, KernelError, Scope.Scope>

const none = Effect.succeed(undefined)
const when = (need: boolean, grad: () => Effect.Effect<Tensor, KernelError, Scope.Scope>) => (need ? grad() : none)

/** Sums a gradient over the leading dimensions a trailing-broadcast operand was repeated along. */
const reduceToShape = (k: KernelsService, g: Tensor, shape: Shape) =>
  sameShape(g.shape, shape)
    ? Effect.succeed(g)
    : Effect.gen(function* () {
        const n = numelOf(shape)
        const rows = yield* k.view(g, [g.numel / Math.max(1, n), n])
        return yield* k.view(yield* k.sumAxis(rows, 0), shape)
      })

/** Broadcasts a one-element gradient g to `shape`, times `factor`. */
const broadcastScalar = (k: KernelsService, g: Tensor, shape: Shape, factor: number) =>
  Effect.gen(function* () {
    const n = numelOf(shape)
    const filled = yield* k.mulRows(yield* k.full([1, n], factor), yield* k.view(g, [1]))
    return yield* k.view(filled, shape)
  })

const matmulGrads: BackwardRule<"matmul"> = ({ inputs: [a, b], attrs: { transA, transB, alpha } }, g, k, needs) => {
  const sharedB = b.shape.length === 2 && a.shape.length > 2
  const da = when(needs(0), () => {
    if (!transA) return k.matmul(g, b, { transB: !transB, alpha })
    if (sharedB)
      return Effect.fail(new InvalidArgumentError({ op: "matmul backward", reason: "transA with a shared rank-2 b and a batched a has no gradient rule" }))
    return k.matmul(b, g, { transA: transB, transB: true, alpha })
  })
  const db = when(needs(1), () =>
    Effect.gen(function* () {
      if (sharedB && !transA) {
        // Fold the batch into rows: one GEMM instead of a batched one and a reduction.
        const [m, kDim] = a.shape.slice(-2) as [number, number]
        const rows = a.numel / (m * kDim) * m
        const a2 = yield* k.view(a, [rows, kDim])
        const g2 = yield* k.view(g, [rows, g.shape[g.shape.length - 1] as number])
        return transB ? yield* k.matmul(g2, a2, { transA: true, alpha }) : yield* k.matmul(a2, g2, { transA: true, alpha })
      }
      const perBatch = transB
        ? yield* k.matmul(g, a, { transA: true, transB: transA, alpha })
        : yield* k.matmul(a, g, { transA: !transA, alpha })
      if (!sharedB) return perBatch
      const [r, c] = perBatch.shape.slice(-2) as [number, number]
      return yield* k.sumAxis(yield* k.view(perBatch, [perBatch.numel / (r * c), r, c]), 0)
    })
  )
  return Effect.all([da, db])
}

/**
 * Gradients of x W^T + bias for the inputs [x, weight, bias] that need one, in one kernel call, each added to
 * the input's gradient so far.
 */
const linearGrads = (
  [x, weight, bias]: readonly [Tensor, Tensor, Tensor | undefined],
  g: Tensor,
  k: KernelsService,
  needs: (i: number) => boolean,
  baseOf: (i: number) => Tensor | undefined
) => {
  const [dx, dweight, dbias] = [needs(0), needs(1), bias !== undefined && needs(2)]
  const addTo = { dx: dx ? baseOf(0) : undefined, dweight: dweight ? baseOf(1) : undefined, dbias: dbias ? baseOf(2) : undefined }
  return Effect.map(k.linearBackward(g, x, weight, { dx, dweight, dbias, addTo }), (r) => [r.dx, r.dweight, r.dbias])
}

const concatGrads: BackwardRule<"concat"> = ({ inputs, attrs: { axis } }, g, k, needs) => {
  let offset = 0
  return Effect.all(
    inputs.map((x, i) => {
      const start = offset
      offset += x.shape[axis] as number
      return when(needs(i), () => k.narrow(g, axis, start, x.shape[axis] as number))
    })
  )
}

const sumAxisGrads: BackwardRule<"sumAxis"> = ({ attrs: { axis, shape } }, g, k) =>
  Effect.gen(function* () {
    const { outer, axisLength, inner } = aroundAxis(shape, axis)
    if (axisLength === 0) return [yield* k.zeros(shape)]
    const slab = yield* k.view(g, [outer, 1, inner])
    const repeated = yield* k.concat(Array.from({ length: axisLength }, () => slab), 1)
    return [yield* k.view(repeated, shape)]
  })

/** One backward rule per differentiable op: the table the tape's backward pass dispatches on. */
export const backwardRules: { readonly [K in DiffOp]: BackwardRule<K> } = {
  // A bf16 b beside an f32 a (a bf16 branch's output) gets its gradient in bf16.
  add: ({ inputs: [, b] }, g, k, needs) =>
    Effect.all([
      Effect.succeed(g),
      when(needs(1), () => Effect.flatMap(reduceToShape(k, g, b.shape), (gb) => (gb.dtype === b.dtype ? Effect.succeed(gb) : k.cast(gb, b.dtype))))
    ]),
  sub: ({ inputs: [, b] }, g, k, needs) =>
    Effect.all([Effect.succeed(g), when(needs(1), () => Effect.flatMap(reduceToShape(k, g, b.shape), (r) => k.affine(r, -1, 0)))]),
  mul: ({ inputs: [a, b] }, g, k, needs) =>
    Effect.all([
      when(needs(0), () => k.mul(g, b)),
      when(needs(1), () => Effect.flatMap(k.mul(g, a), (gb) => reduceToShape(k, gb, b.shape)))
    ]),
  mulRows: ({ inputs: [x, s] }, g, k, needs) =>
    Effect.all([when(needs(0), () => k.mulRows(g, s)), when(needs(1), () => k.rowDot(g, x, s.shape.length))]),
  affine: ({ attrs: { alpha } }, g, k) => Effect.all([k.affine(g, alpha, 0)]),
  axpy: ({ attrs: { alpha } }, g, k, needs) => Effect.all([when(needs(0), () => k.affine(g, alpha, 0)), Effect.succeed(g)]),
  rowDot: ({ inputs: [a, b] }, g, k, needs) =>
    Effect.all([when(needs(0), () => k.mulRows(b, g)), when(needs(1), () => k.mulRows(a, g))]),
  gelu: ({ inputs: [x] }, g, k) => Effect.all([k.geluBackward(g, x)]),
  silu: ({ inputs: [x] }, g, k) => Effect.all([k.siluBackward(g, x)]),
  layerNorm: ({ inputs: [x, weight, bias], saved }, g, k, _needs, _gradOf, baseOf) =>
    Effect.map(k.layerNormBackward(g, x, saved, { weight, withBias: bias !== undefined, addTo: { dx: baseOf(0) } }), (r) => [
      r.dx,
      r.dweight,
      r.dbias
    ]),
  modulate: ({ inputs: [x, , scale] }, g, k) =>
    Effect.map(k.modulateBackward(g, x, scale), (r) => [r.dx, r.dshift, r.dscale]),
  layerNormModulate: ({ inputs: [x, , scale], saved }, g, k, _needs, _gradOf, baseOf) =>
    Effect.map(k.layerNormModulateBackward(g, x, saved, scale, { dx: baseOf(0) }), (r) => [r.dx, r.dshift, r.dscale]),
  gatedResidual: ({ inputs: [, gate, branch] }, g, k) =>
    Effect.map(k.gatedResidualBackward(g, gate, branch), (r) => [g, r.dgate, r.dbranch]),
  attention: ({ inputs: [q, kk, v], saved: { out, lse, keyMask }, attrs: { scale, heads } }, g, k) =>
    Effect.map(k.attentionBackward(g, q, kk, v, { out, lse }, { keyMask, scale, heads }), (r) => [r.dq, r.dk, r.dv]),
  matmul: matmulGrads,
  linear: ({ inputs }, g, k, needs, _gradOf, baseOf) => linearGrads(inputs, g, k, needs, baseOf),
  // GELU's backward on the saved pre-activation, then linear's.
  linearGelu: ({ inputs, saved: { pre } }, g, k, needs, _gradOf, baseOf) =>
    Effect.flatMap(k.geluBackward(g, pre), (dpre) => linearGrads(inputs, dpre, k, needs, baseOf)),
  view: ({ inputs: [x] }, g, k) => Effect.all([k.view(g, x.shape)]),
  // The gradient goes back in the input's dtype. A parameter's casts (its bf16 copies) the backward pass
  // takes itself, all in one castAll at its end.
  cast: ({ inputs: [x] }, g, k) => Effect.all([k.cast(g, x.dtype)]),
  patchify: ({ attrs: { image } }, g, k) => Effect.all([k.unpatchify(g, image)]),
  unpatchify: ({ attrs: { patch } }, g, k) => Effect.all([k.patchify(g, patch)]),
  concat: concatGrads,
  narrow: ({ inputs: [x], output, attrs: { axis, start } }, g, k) =>
    Effect.all([k.pad(g, axis, start, (x.shape[axis] as number) - start - (output.shape[axis] as number))]),
  // g is parts[0]'s gradient; a part no op used has none, and counts as zeros.
  split: ({ attrs: { axis, parts } }, g, k, _needs, gradOf) =>
    Effect.all([
      Effect.flatMap(
        Effect.forEach(parts, (part, i) => {
          const pg = i === 0 ? g : gradOf(part)
          return pg === undefined ? k.zeros(part.shape, part.dtype) : Effect.succeed(pg)
        }),
        (grads) => k.concat(grads, axis)
      )
    ]),
  pad: ({ inputs: [x], attrs: { axis, before } }, g, k) => Effect.all([k.narrow(g, axis, before, x.shape[axis] as number)]),
  embedding: ({ inputs: [table], saved: { ids } }, g, k) => Effect.all([k.embeddingBackward(g, ids, table.shape[0] as number)]),
  sum: ({ inputs: [x] }, g, k) => Effect.all([broadcastScalar(k, g, x.shape, 1)]),
  mean: ({ inputs: [x] }, g, k) => Effect.all([broadcastScalar(k, g, x.shape, 1 / Math.max(1, x.numel))]),
  sumAxis: sumAxisGrads,
  mse: ({ inputs: [a, b] }, g, k, needs) =>
    Effect.gen(function* () {
      const n = a.numel
      const diff = yield* k.view(yield* k.sub(a, b), [1, n])
      const da = yield* k.view(yield* k.affine(yield* k.mulRows(diff, yield* k.view(g, [1])), 2 / Math.max(1, n), 0), a.shape)
      return [da, needs(1) ? yield* k.affine(da, -1, 0) : undefined]
    }),
  mseRows: ({ inputs: [a, b] }, g, k, needs) =>
    Effect.gen(function* () {
      const cols = a.numel / Math.max(1, g.numel)
      const da = yield* k.affine(yield* k.mulRows(yield* k.sub(a, b), g), 2 / Math.max(1, cols), 0)
      return [da, needs(1) ? yield* k.affine(da, -1, 0) : undefined]
    })
}
