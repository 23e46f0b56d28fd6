import { type DType, type Shape, formatShape, numelOf } from "../../tensor/dtype.ts"
import type { Tensor } from "../../tensor/Tensor.ts"
import { DTypeError, InvalidArgumentError } from "../errors.ts"
import type { AdamWHyper } from "../ops.ts"
import * as S from "../shapes.ts"

/**
 * The checks the native addon makes beyond shapes.ts (docs/native-bindings.md, native/napi/ops_*.cpp), with
 * the same error classes and reasons, so the reference refuses exactly what the CPU backend refuses.
 */

const MAX_INT32 = 2147483647
const MAX_F32 = 3.4028234663852886e38
// Ids index a result one rank higher, which must stay within the 8 dimensions a tensor may have.
const MAX_IDS_RANK = 7

/** A dtype the CPU-side backends can store (bf16 is CUDA-only, unless the reference emulates it). */
export const expectStorableDtype = (op: string, dtype: DType, storesBf16 = false): void => {
  if (dtype === "bf16" && !storesBf16) throw new DTypeError({ op, reason: "bf16 storage needs the CUDA backend" })
  if (dtype !== "f32" && dtype !== "i32" && dtype !== "bf16") throw new InvalidArgumentError({ op, reason: `dtype must be f32, i32 or bf16, got ${String(dtype)}` })
}

/** Host data for a tensor of `shape`: array-like, one value per element, 32-bit integers for i32. */
export const expectHostData = (op: string, data: ArrayLike<number>, dtype: DType, shape: Shape, storesBf16 = false): void => {
  if (data === null || typeof data !== "object" || typeof data.length !== "number")
    throw new InvalidArgumentError({ op, reason: "data must be an array of numbers" })
  expectStorableDtype(op, dtype, storesBf16)
  if (dtype === "i32")
    for (let i = 0; i < data.length; i++) {
      const value = data[i] as number
      // `| 0` is the Int32Array conversion: anything it changes is not a 32-bit integer.
      if (value !== (value | 0))
        throw new InvalidArgumentError({ op, reason: `data[${i}] = ${value} is not a 32-bit integer` })
    }
  if (data.length !== numelOf(shape))
    S.fail(op, `data has ${data.length} elements, the tensor ${formatShape(shape)} has ${numelOf(shape)}`)
}

export const expectFillValue = (op: string, value: number, dtype: DType): void => {
  if (dtype === "i32" && (!Number.isInteger(value) || value < -MAX_INT32 - 1 || value > MAX_INT32))
    S.invalid(op, "value must be a 32-bit integer for an i32 tensor")
}

export const expectSameNumel = (op: string, from: Shape, to: Shape): void => {
  if (numelOf(from) !== numelOf(to)) S.fail(op, `cannot view ${formatShape(from)} as ${formatShape(to)} (sizes differ)`)
}

export const expectFlag = (op: string, name: string, value: unknown): void => {
  if (typeof value !== "boolean") S.invalid(op, `${name} must be a boolean`)
}

/** LayerNorm needs a non-empty normalised dimension (a mean over no columns is undefined). */
export const expectNormalisable = (op: string, x: Tensor): void => {
  if (x.shape.length < 1 || (x.shape[x.shape.length - 1] as number) === 0)
    S.fail(op, `x must have rank >= 1 and a last dimension > 0, got ${formatShape(x.shape)}`)
}

/** A mean over no elements is refused rather than returned as NaN. */
export const expectNonEmpty = (op: string, name: string, x: Tensor): void => {
  if (x.numel === 0) S.fail(op, `${name} ${formatShape(x.shape)} is empty; its mean is undefined`)
}

export const expectNonEmptyRows = (op: string, a: Tensor, prefixRank: number): void => {
  if (numelOf(a.shape.slice(0, prefixRank)) > 0 && numelOf(a.shape.slice(prefixRank)) === 0)
    S.fail(op, `rows of a ${formatShape(a.shape)} after dimension ${prefixRank} are empty; their mean is undefined`)
}

export const expectIdsRank = (op: string, ids: Tensor): void => {
  if (ids.shape.length > MAX_IDS_RANK)
    S.fail(op, `ids must have rank < 8 (the result adds a dimension), got ${formatShape(ids.shape)}`)
}

export const expectVocabFits = (op: string, vocab: number): void => S.expectInteger(op, "vocab", vocab, 1, MAX_INT32)

export const expectPeriodFitsF32 = (op: string, maxPeriod: number): void => {
  if (maxPeriod > MAX_F32) S.invalid(op, `maxPeriod must be > 0 and fit in f32, got ${maxPeriod}`)
}

/** Finite hyper-parameters and a 1-based step (bias correction divides by 1 - beta^step). */
export const expectAdamWHyper = (op: string, hyper: AdamWHyper): void => {
  for (const name of ["lr", "beta1", "beta2", "eps", "weightDecay"] as const) S.expectFinite(op, name, hyper[name])
  S.expectInteger(op, "step", hyper.step, 1, Number.MAX_SAFE_INTEGER)
}
