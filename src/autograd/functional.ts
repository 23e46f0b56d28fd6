import { Context, Effect, type Scope } from "effect"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels, type KernelsService } from "../kernels/Kernels.ts"
import type { AttentionOptions, ImageGeometry, LayerNormOptions, MatmulOptions } from "../kernels/ops.ts"
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
 * An op's kernel call and its tape entry: the Kernels service, the tape and grad mode are read from the fiber
 * in one runtime step, and `note` appends the node synchronously. Each differentiable op is host time on a
 * host-bound GPU step (thousands of them in a DiT-S training step), so this path is kept short.
 */
const withKernels = <A>(f: (k: KernelsService, note: Note) => Effect.Effect<A, KernelError, Scope.Scope>): Op<A> =>
  Effect.withFiberRuntime((fiber) =>
    f(Context.unsafeGet(fiber.currentContext, Kernels), noteOn(fiber.getFiberRef(CurrentTape), fiber.getFiberRef(GradEnabled)))
  )

/** a + b in a's dtype; b may be bf16 beside an f32 a (a bf16 branch's output, its gradient bf16). */
export const add = (a: Tensor, b: Tensor): Op =>
  withKernels((k, note) => Effect.map(k.add(a, b), (y) => note("add", { inputs: [a, b], saved: {}, attrs: {} }, y)))

export const sub = (a: Tensor, b: Tensor): Op =>
  withKernels((k, note) => Effect.map(k.sub(a, b), (y) => note("sub", { inputs: [a, b], saved: {}, attrs: {} }, y)))

export const mul = (a: Tensor, b: Tensor): Op =>
  withKernels((k, note) => Effect.map(k.mul(a, b), (y) => note("mul", { inputs: [a, b], saved: {}, attrs: {} }, y)))

/** x * s with one factor per row (s's shape a prefix of x's), e.g. per-sample times or loss weights. */
export const mulRows = (x: Tensor, s: Tensor): Op =>
  withKernels((k, note) => Effect.map(k.mulRows(x, s), (y) => note("mulRows", { inputs: [x, s], saved: {}, attrs: {} }, y)))

export const affine = (x: Tensor, alpha: number, beta: number): Op =>
  withKernels((k, note) => Effect.map(k.affine(x, alpha, beta), (y) => note("affine", { inputs: [x], saved: {}, attrs: { alpha } }, y)))

export const scale = (x: Tensor, alpha: number): Op => affine(x, alpha, 0)

export const axpy = (alpha: number, x: Tensor, y: Tensor): Op =>
  withKernels((k, note) => Effect.map(k.axpy(alpha, x, y), (out) => note("axpy", { inputs: [x, y], saved: {}, attrs: { alpha } }, out)))

export const rowDot = (a: Tensor, b: Tensor, prefixRank: number): Op =>
  withKernels((k, note) => Effect.map(k.rowDot(a, b, prefixRank), (y) => note("rowDot", { inputs: [a, b], saved: {}, attrs: {} }, y)))

export const gelu = (x: Tensor): Op =>
  withKernels((k, note) => Effect.map(k.gelu(x), (y) => note("gelu", { inputs: [x], saved: {}, attrs: {} }, y)))

export const silu = (x: Tensor): Op =>
  withKernels((k, note) => Effect.map(k.silu(x), (y) => note("silu", { inputs: [x], saved: {}, attrs: {} }, y)))

/** LayerNorm with optional affine, y in options.dtype (x's, or bf16 from an f32 x: a bf16 branch's input). */
export const layerNorm = (x: Tensor, options: LayerNormOptions): Op =>
  withKernels((k, note) =>
    Effect.map(k.layerNorm(x, options), ({ y, mean, rstd }) =>
      note("layerNorm", { inputs: [x, options.weight, options.bias], saved: { mean, rstd }, attrs: {} }, y)
    )
  )

export const modulate = (x: Tensor, shift: Tensor, scaleBy: Tensor): Op =>
  withKernels((k, note) =>
    Effect.map(k.modulate(x, shift, scaleBy), (y) => note("modulate", { inputs: [x, shift, scaleBy], saved: {}, attrs: {} }, y))
  )

/**
 * adaLN's LayerNorm (no affine) and modulation in one kernel: LN(x) (1 + scale) + shift, in `dtype` (x's, or
 * bf16 from an f32 x: a bf16 branch's input; the gradient comes back in x's dtype).
 */
export const layerNormModulate = (x: Tensor, shift: Tensor, scaleBy: Tensor, eps: number, dtype: DType = x.dtype): Op =>
  withKernels((k, note) =>
    Effect.map(k.layerNormModulate(x, shift, scaleBy, eps, dtype), ({ y, mean, rstd }) =>
      note("layerNormModulate", { inputs: [x, shift, scaleBy], saved: { mean, rstd }, attrs: {} }, y)
    )
  )

/** x + gate branch in x's dtype; the branch may be bf16 beside an f32 x (a bf16 branch's output, its gradient bf16). */
export const gatedResidual = (x: Tensor, gate: Tensor, branch: Tensor): Op =>
  withKernels((k, note) =>
    Effect.map(k.gatedResidual(x, gate, branch), (y) => note("gatedResidual", { inputs: [x, gate, branch], saved: {}, attrs: {} }, y))
  )

export const attention = (q: Tensor, kk: Tensor, v: Tensor, options: AttentionOptions = {}): Op =>
  withKernels((k, note) =>
    Effect.map(k.attention(q, kk, v, options), ({ out, lse }) => {
      const headDim = options.heads === undefined ? (q.shape[3] ?? 1) : (q.shape[2] ?? 0) / options.heads
      const scaleUsed = options.scale ?? 1 / Math.sqrt(Math.max(1, headDim))
      const attrs = { scale: scaleUsed, heads: options.heads }
      return note("attention", { inputs: [q, kk, v], saved: { out, lse, keyMask: options.keyMask }, attrs }, out)
    })
  )

export const matmul = (a: Tensor, b: Tensor, options: MatmulOptions = {}): Op =>
  withKernels((k, note) =>
    Effect.map(k.matmul(a, b, options), (y) =>
      note("matmul", {
        inputs: [a, b],
        saved: {},
        attrs: { transA: options.transA ?? false, transB: options.transB ?? false, alpha: options.alpha ?? 1 }
      }, y)
    )
  )

export const linear = (x: Tensor, weight: Tensor, bias?: Tensor): Op =>
  withKernels((k, note) => Effect.map(k.linear(x, weight, bias), (y) => note("linear", { inputs: [x, weight, bias], saved: {}, attrs: {} }, y)))

/** gelu(linear(x, weight, bias)) in one kernel (a GEMM epilogue on CUDA); the pre-activation is saved. */
export const linearGelu = (x: Tensor, weight: Tensor, bias?: Tensor): Op =>
  withKernels((k, note) =>
    Effect.map(k.linearGelu(x, weight, bias), ({ y, pre }) =>
      note("linearGelu", { inputs: [x, weight, bias], saved: { pre }, attrs: {} }, y)
    )
  )

/** A reshape that gradients flow through. */
export const view = (x: Tensor, shape: Shape): Op =>
  withKernels((k, note) => Effect.map(k.view(x, shape), (y) => note("view", { inputs: [x], saved: {}, attrs: {} }, y)))

/** x as another dtype, gradients flowing back converted: mixed precision's bf16 copies of f32 weights. */
export const cast = (x: Tensor, dtype: DType): Op =>
  withKernels((k, note) => Effect.map(k.cast(x, dtype), (y) => note("cast", { inputs: [x], saved: {}, attrs: {} }, y)))

export const patchify = (x: Tensor, patch: number): Op =>
  withKernels((k, note) =>
    Effect.map(k.patchify(x, patch), (y) => {
      const [, channels, height, width] = x.shape as [number, number, number, number]
      return note("patchify", { inputs: [x], saved: {}, attrs: { image: { channels, height, width, patch } } }, y)
    })
  )

export const unpatchify = (tokens: Tensor, image: ImageGeometry): Op =>
  withKernels((k, note) =>
    Effect.map(k.unpatchify(tokens, image), (y) => note("unpatchify", { inputs: [tokens], saved: {}, attrs: { patch: image.patch } }, y))
  )

export const concat = (tensors: ReadonlyArray<Tensor>, axis: number): Op =>
  withKernels((k, note) => Effect.map(k.concat(tensors, axis), (y) => note("concat", { inputs: [...tensors], saved: {}, attrs: { axis } }, y)))

export const narrow = (x: Tensor, axis: number, start: number, length: number): Op =>
  withKernels((k, note) =>
    Effect.map(k.narrow(x, axis, start, length), (y) => note("narrow", { inputs: [x], saved: {}, attrs: { axis, start } }, y))
  )

/** x cut along axis into `count` equal parts: one node, whose backward concatenates the parts' gradients. */
export const split = (x: Tensor, axis: number, count: number): Op<ReadonlyArray<Tensor>> =>
  withKernels((k, note) =>
    Effect.map(k.split(x, axis, count), (parts) => {
      note("split", { inputs: [x], saved: {}, attrs: { axis, parts } }, parts[0] as Tensor)
      return parts
    })
  )

export const pad = (x: Tensor, axis: number, before: number, after: number): Op =>
  withKernels((k, note) => Effect.map(k.pad(x, axis, before, after), (y) => note("pad", { inputs: [x], saved: {}, attrs: { axis, before } }, y)))

export const embedding = (table: Tensor, ids: Tensor): Op =>
  withKernels((k, note) => Effect.map(k.embedding(table, ids), (y) => note("embedding", { inputs: [table], saved: { ids }, attrs: {} }, y)))

export const sum = (x: Tensor): Op =>
  withKernels((k, note) => Effect.map(k.sum(x), (y) => note("sum", { inputs: [x], saved: {}, attrs: {} }, y)))

export const mean = (x: Tensor): Op =>
  withKernels((k, note) => Effect.map(k.mean(x), (y) => note("mean", { inputs: [x], saved: {}, attrs: {} }, y)))

export const sumAxis = (x: Tensor, axis: number): Op =>
  withKernels((k, note) => Effect.map(k.sumAxis(x, axis), (y) => note("sumAxis", { inputs: [x], saved: {}, attrs: { axis, shape: x.shape } }, y)))

export const mse = (a: Tensor, b: Tensor): Op =>
  withKernels((k, note) => Effect.map(k.mse(a, b), (y) => note("mse", { inputs: [a, b], saved: {}, attrs: {} }, y)))

export const mseRows = (a: Tensor, b: Tensor, prefixRank: number): Op =>
  withKernels((k, note) => Effect.map(k.mseRows(a, b, prefixRank), (y) => note("mseRows", { inputs: [a, b], saved: {}, attrs: { prefixRank } }, y)))

/** The same values, cut from the tape: gradients stop here (sg[.] in the paper). */
export const stopGradient = (x: Tensor): Op => withKernels((k) => k.view(x, x.shape))
