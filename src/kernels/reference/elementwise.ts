import type { Floats } from "./storage.ts"

/** Elementwise kernels: each output is computed in double and rounded once by the store. */

export type BinaryOp = "add" | "sub" | "mul"

const apply = (op: BinaryOp, a: number, b: number): number => (op === "add" ? a + b : op === "sub" ? a - b : a * b)

/** out[i] = a[i] op b[i % nb]: b equal to a (nb = n) or a trailing suffix of its shape (a bias). */
export const binaryTrailing = (out: Floats, a: Floats, b: Floats, op: BinaryOp): void => {
  const nb = b.length
  for (let i = 0; i < a.length; i++) out[i] = apply(op, a[i] as number, b[i % nb] as number)
}

/** out = x * s with one factor per row: s's shape a leading prefix of x's. */
export const mulRows = (out: Floats, x: Floats, s: Floats): void => {
  const rows = s.length
  const inner = rows === 0 ? 0 : x.length / rows
  for (let r = 0; r < rows; r++) {
    const factor = s[r] as number
    for (let j = r * inner; j < (r + 1) * inner; j++) out[j] = (x[j] as number) * factor
  }
}

export const affine = (out: Floats, x: Floats, alpha: number, beta: number): void => {
  for (let i = 0; i < x.length; i++) out[i] = alpha * (x[i] as number) + beta
}

export const axpy = (out: Floats, alpha: number, x: Floats, y: Floats): void => {
  for (let i = 0; i < x.length; i++) out[i] = alpha * (x[i] as number) + (y[i] as number)
}

/** out[r] = sum_c a[r, c] b[r, c], accumulated in double. */
export const rowDot = (out: Floats, a: Floats, b: Floats): void => {
  const rows = out.length
  const cols = rows === 0 ? 0 : a.length / rows
  for (let r = 0; r < rows; r++) {
    let acc = 0
    for (let j = r * cols; j < (r + 1) * cols; j++) acc += (a[j] as number) * (b[j] as number)
    out[r] = acc
  }
}
