import { Context, Effect, Scope } from "effect"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import { callAsEffect, callNow, type OutputOp } from "../kernels/lift.ts"
import type { AttentionOptions, ImageGeometry, LayerNormOptions, MatmulOptions, TensorOps } from "../kernels/ops.ts"
import type { DType, Shape } from "../tensor/dtype.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import { GradEnabled } from "../tensor/gradMode.ts"
import { CurrentTape, type Note, noteOn } from "./tape.ts"

/**
 * Differentiable ops (torch.nn.functional's role): each runs its kernel and, when a tape records, leaves
 * a node for the backward pass. Kernel ops called directly are not recorded: to autograd their outputs
 * are constants, which is how the critique's stop-gradients are written.
 */
export type Op<A = Tensor> = Effect.Effect<A, KernelError, Kernels | Scope.Scope>

/**
 * An op's kernel call and its tape entry, in one runtime step: the Kernels service, the Scope, the tape and
 * grad mode are read from the fiber, the kernel runs at once where the service allows it (callNow: a backend
 * liftBackend made), and `then` appends the node synchronously. Any other service (a mock, a Recording) has
 * its op called as an Effect. Each differentiable op is host time on a host-bound GPU step (thousands of them
 * in a DiT-S training step), so this path is kept short.
 */
const kernelOp = <K extends OutputOp, A>(name: K, args: Parameters<TensorOps[K]>, then: (result: ReturnType<TensorOps[K]>, note: Note) => A): Op<A> =>
  Effect.withFiberRuntime((fiber) => {
    const context = fiber.currentContext
    const k = Context.unsafeGet(context, Kernels)
    const note = noteOn(fiber.getFiberRef(CurrentTape), fiber.getFiberRef(GradEnabled))
    let result: ReturnType<TensorOps[K]> | typeof callAsEffect
    try {
      result = callNow(k, name, args, Context.unsafeGet(context, Scope.Scope))
    } catch (error) {
      return Effect.fail(error as KernelError)
    }
    if (result !== callAsEffect) return Effect.succeed(then(result, note))
    const lifted = k[name] as unknown as (...opArgs: Parameters<TensorOps[K]>) => Effect.Effect<ReturnType<TensorOps[K]>, KernelError, Scope.Scope>
    return Effect.map(lifted(...args), (made) => then(made, note))
  })

/** a + b in a's dtype; b may be bf16 beside an f32 a (a bf16 branch's output, its gradient bf16). */
export const add = (a: Tensor, b: Tensor): Op =>
  kernelOp("add", [a, b], (y, note) => note("add", { inputs: [a, b], saved: {}, attrs: {} }, y))

export const sub = (a: Tensor, b: Tensor): Op =>
  kernelOp("sub", [a, b], (y, note) => note("sub", { inputs: [a, b], saved: {}, attrs: {} }, y))

export const mul = (a: Tensor, b: Tensor): Op =>
  kernelOp("mul", [a, b], (y, note) => note("mul", { inputs: [a, b], saved: {}, attrs: {} }, y))

/** x * s with one factor per row (s's shape a prefix of x's), e.g. per-sample times or loss weights. */
export const mulRows = (x: Tensor, s: Tensor): Op =>
  kernelOp("mulRows", [x, s], (y, note) => note("mulRows", { inputs: [x, s], saved: {}, attrs: {} }, y))

export const affine = (x: Tensor, alpha: number, beta: number): Op =>
  kernelOp("affine", [x, alpha, beta], (y, note) => note("affine", { inputs: [x], saved: {}, attrs: { alpha } }, y))

export const scale = (x: Tensor, alpha: number): Op => affine(x, alpha, 0)

export const axpy = (alpha: number, x: Tensor, y: Tensor): Op =>
  kernelOp("axpy", [alpha, x, y], (out, note) => note("axpy", { inputs: [x, y], saved: {}, attrs: { alpha } }, out))

export const rowDot = (a: Tensor, b: Tensor, prefixRank: number): Op =>
  kernelOp("rowDot", [a, b, prefixRank], (y, note) => note("rowDot", { inputs: [a, b], saved: {}, attrs: {} }, y))

export const gelu = (x: Tensor): Op =>
  kernelOp("gelu", [x], (y, note) => note("gelu", { inputs: [x], saved: {}, attrs: {} }, y))

export const silu = (x: Tensor): Op =>
  kernelOp("silu", [x], (y, note) => note("silu", { inputs: [x], saved: {}, attrs: {} }, y))

/** LayerNorm with optional affine, y in options.dtype (x's, or bf16 from an f32 x: a bf16 branch's input). */
export const layerNorm = (x: Tensor, options: LayerNormOptions): Op =>
  kernelOp("layerNorm", [x, options], ({ y, mean, rstd }, note) =>
    note("layerNorm", { inputs: [x, options.weight, options.bias], saved: { mean, rstd }, attrs: {} }, y)
  )

export const modulate = (x: Tensor, shift: Tensor, scaleBy: Tensor): Op =>
  kernelOp("modulate", [x, shift, scaleBy], (y, note) => note("modulate", { inputs: [x, shift, scaleBy], saved: {}, attrs: {} }, y))

/**
 * adaLN's LayerNorm (no affine) and modulation in one kernel: LN(x) (1 + scale) + shift, in `dtype` (x's, or
 * bf16 from an f32 x: a bf16 branch's input; the gradient comes back in x's dtype).
 */
export const layerNormModulate = (x: Tensor, shift: Tensor, scaleBy: Tensor, eps: number, dtype: DType = x.dtype): Op =>
  kernelOp("layerNormModulate", [x, shift, scaleBy, eps, dtype], ({ y, mean, rstd }, note) =>
    note("layerNormModulate", { inputs: [x, shift, scaleBy], saved: { mean, rstd }, attrs: {} }, y)
  )

/** x + gate branch in x's dtype; the branch may be bf16 beside an f32 x (a bf16 branch's output, its gradient bf16). */
export const gatedResidual = (x: Tensor, gate: Tensor, branch: Tensor): Op =>
  kernelOp("gatedResidual", [x, gate, branch], (y, note) => note("gatedResidual", { inputs: [x, gate, branch], saved: {}, attrs: {} }, y))

export const attention = (q: Tensor, kk: Tensor, v: Tensor, options: AttentionOptions = {}): Op =>
  kernelOp("attention", [q, kk, v, options], ({ out, lse }, note) => {
    const headDim = options.heads === undefined ? (q.shape[3] ?? 1) : (q.shape[2] ?? 0) / options.heads
    const scaleUsed = options.scale ?? 1 / Math.sqrt(Math.max(1, headDim))
    const attrs = { scale: scaleUsed, heads: options.heads }
    return note("attention", { inputs: [q, kk, v], saved: { out, lse, keyMask: options.keyMask }, attrs }, out)
  })

export const matmul = (a: Tensor, b: Tensor, options: MatmulOptions = {}): Op =>
  kernelOp("matmul", [a, b, options], (y, note) =>
    note("matmul", {
      inputs: [a, b],
      saved: {},
      attrs: { transA: options.transA ?? false, transB: options.transB ?? false, alpha: options.alpha ?? 1 }
    }, y)
  )

export const linear = (x: Tensor, weight: Tensor, bias?: Tensor): Op =>
  kernelOp("linear", [x, weight, bias], (y, note) => note("linear", { inputs: [x, weight, bias], saved: {}, attrs: {} }, y))

/** gelu(linear(x, weight, bias)) in one kernel (a GEMM epilogue on CUDA); the pre-activation is saved. */
export const linearGelu = (x: Tensor, weight: Tensor, bias?: Tensor): Op =>
  kernelOp("linearGelu", [x, weight, bias], ({ y, pre }, note) =>
    note("linearGelu", { inputs: [x, weight, bias], saved: { pre }, attrs: {} }, y)
  )

/** A reshape that gradients flow through. */
export const view = (x: Tensor, shape: Shape): Op =>
  kernelOp("view", [x, shape], (y, note) => note("view", { inputs: [x], saved: {}, attrs: {} }, y))

/** x as another dtype, gradients flowing back converted: mixed precision's bf16 copies of f32 weights. */
export const cast = (x: Tensor, dtype: DType): Op =>
  kernelOp("cast", [x, dtype], (y, note) => note("cast", { inputs: [x], saved: {}, attrs: {} }, y))

export const patchify = (x: Tensor, patch: number): Op =>
  kernelOp("patchify", [x, patch], (y, note) => {
    const [, channels, height, width] = x.shape as [number, number, number, number]
    return note("patchify", { inputs: [x], saved: {}, attrs: { image: { channels, height, width, patch } } }, y)
  })

export const unpatchify = (tokens: Tensor, image: ImageGeometry): Op =>
  kernelOp("unpatchify", [tokens, image], (y, note) => note("unpatchify", { inputs: [tokens], saved: {}, attrs: { patch: image.patch } }, y))

export const concat = (tensors: ReadonlyArray<Tensor>, axis: number): Op =>
  kernelOp("concat", [tensors, axis], (y, note) => note("concat", { inputs: [...tensors], saved: {}, attrs: { axis } }, y))

export const narrow = (x: Tensor, axis: number, start: number, length: number): Op =>
  kernelOp("narrow", [x, axis, start, length], (y, note) => note("narrow", { inputs: [x], saved: {}, attrs: { axis, start } }, y))

/** x cut along axis into `count` equal parts: one node, whose backward concatenates the parts' gradients. */
export const split = (x: Tensor, axis: number, count: number): Op<ReadonlyArray<Tensor>> =>
  kernelOp("split", [x, axis, count], (parts, note) => {
    note("split", { inputs: [x], saved: {}, attrs: { axis, parts } }, parts[0] as Tensor)
    return parts
  })

export const pad = (x: Tensor, axis: number, before: number, after: number): Op =>
  kernelOp("pad", [x, axis, before, after], (y, note) => note("pad", { inputs: [x], saved: {}, attrs: { axis, before } }, y))

export const embedding = (table: Tensor, ids: Tensor): Op =>
  kernelOp("embedding", [table, ids], (y, note) => note("embedding", { inputs: [table], saved: { ids }, attrs: {} }, y))

export const sum = (x: Tensor): Op =>
  kernelOp("sum", [x], (y, note) => note("sum", { inputs: [x], saved: {}, attrs: {} }, y))

export const mean = (x: Tensor): Op =>
  kernelOp("mean", [x], (y, note) => note("mean", { inputs: [x], saved: {}, attrs: {} }, y))

export const sumAxis = (x: Tensor, axis: number): Op =>
  kernelOp("sumAxis", [x, axis], (y, note) => note("sumAxis", { inputs: [x], saved: {}, attrs: { axis, shape: x.shape } }, y))

export const mse = (a: Tensor, b: Tensor): Op =>
  kernelOp("mse", [a, b], (y, note) => note("mse", { inputs: [a, b], saved: {}, attrs: {} }, y))

export const mseRows = (a: Tensor, b: Tensor, prefixRank: number): Op =>
  kernelOp("mseRows", [a, b, prefixRank], (y, note) => note("mseRows", { inputs: [a, b], saved: {}, attrs: { prefixRank } }, y))

/** The same values, cut from the tape: gradients stop here (sg[.] in the paper). */
export const stopGradient = (x: Tensor): Op => kernelOp("view", [x, x.shape], (y) => y)
