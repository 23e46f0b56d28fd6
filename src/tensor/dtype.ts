/**
 * Element types. `bf16` is storage-only (fp32 arithmetic): the CUDA backend stores it, the native CPU
 * backend rejects it, and the Reference backend emulates it when built with `storesBf16`.
 */
export type DType = "f32" | "i32" | "bf16"

/** The codes the native addon uses for each dtype. */
export const dtypeCode: Record<DType, number> = { f32: 0, i32: 1, bf16: 2 }

export const dtypeBytes: Record<DType, number> = { f32: 4, i32: 4, bf16: 2 }

export type Shape = ReadonlyArray<number>

export const numelOf = (shape: Shape): number => shape.reduce((n, d) => n * d, 1)

export const formatShape = (shape: Shape): string => `[${shape.join(", ")}]`

export const sameShape = (a: Shape, b: Shape): boolean => {
  // A loop, not every(): shape checks run several times for each of a training step's thousands of ops.
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
