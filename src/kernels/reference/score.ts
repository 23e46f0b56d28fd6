import type { Floats } from "./storage.ts"

/**
 * Score combinations of the Self-E critique and of guided sampling (shared/spec/self-e.md). Rows are dim 0:
 * every tensor is [rows, cols], t and lambda are [rows]. Every value is formed in double, row norms are
 * summed in double, and each output is rounded once.
 */

/** d = gUncond - gCond. */
export const classifierScoreDirection = (out: Floats, gUncond: Floats, gCond: Floats): void => {
  for (let i = 0; i < out.length; i++) out[i] = (gUncond[i] as number) - (gCond[i] as number)
}

/** d = k (gUncond - gCond) + (1 - k) (gFake - gCond). */
const mixedDirection = (gUncond: Floats, gCond: Floats, gFake: Floats, k: number, i: number): number => {
  const cond = gCond[i] as number
  return k * ((gUncond[i] as number) - cond) + (1 - k) * ((gFake[i] as number) - cond)
}

export const fakeScoreMix = (out: Floats, gUncond: Floats, gCond: Floats, gFake: Floats, k: number): void => {
  for (let i = 0; i < out.length; i++) out[i] = mixedDirection(gUncond, gCond, gFake, k, i)
}

/** |value(i)| over one row's elements [r cols, (r + 1) cols). */
const rowNorm = (r: number, cols: number, value: (i: number) => number): number => {
  let acc = 0
  for (let i = r * cols; i < (r + 1) * cols; i++) {
    const v = value(i)
    acc += v * v
  }
  return Math.sqrt(acc)
}

/** |target| / |x| for one row, or `whenZero` where |x| = 0. */
const renormFactor = (xNorm: number, targetNorm: number, whenZero: number): number =>
  xNorm === 0 ? whenZero : targetNorm / xNorm

/** out = x |ref| / |x| per row, 0 where |x| = 0. */
export const energyPreservingRenorm = (out: Floats, x: Floats, ref: Floats, rows: number): void => {
  const cols = rows === 0 ? 0 : out.length / rows
  for (let r = 0; r < rows; r++) {
    const factor = renormFactor(
      rowNorm(r, cols, (i) => x[i] as number),
      rowNorm(r, cols, (i) => ref[i] as number),
      0
    )
    for (let i = r * cols; i < (r + 1) * cols; i++) out[i] = (x[i] as number) * factor
  }
}

/** out = (xt - xRenorm) / t per row. */
export const velocityTarget = (out: Floats, xt: Floats, xRenorm: Floats, t: Floats): void => {
  const rows = t.length
  const cols = rows === 0 ? 0 : out.length / rows
  for (let r = 0; r < rows; r++)
    for (let i = r * cols; i < (r + 1) * cols; i++) out[i] = ((xt[i] as number) - (xRenorm[i] as number)) / (t[r] as number)
}

export interface SelfEvaluationArrays {
  readonly x0: Floats
  readonly x0Hat: Floats
  readonly xt: Floats
  readonly t: Floats
  readonly lambda: Floats
  readonly gUncond: Floats
  readonly gCond: Floats
  readonly gFake: Floats | undefined
  readonly k: number
}

/**
 * The fused target: d from the scores (k ignored without gFake), x_self = x0Hat - d, x_tar = x0 + lambda
 * x_self, x_renorm = x_tar |x0| / |x_tar| (0 where |x_tar| = 0), out = (xt - x_renorm) / t.
 */
export const selfEvaluationTarget = (out: Floats, a: SelfEvaluationArrays): void => {
  const rows = a.t.length
  const cols = rows === 0 ? 0 : out.length / rows
  const direction = (i: number): number =>
    a.gFake === undefined ? (a.gUncond[i] as number) - (a.gCond[i] as number) : mixedDirection(a.gUncond, a.gCond, a.gFake, a.k, i)
  for (let r = 0; r < rows; r++) {
    const lambda = a.lambda[r] as number
    const target = (i: number): number => (a.x0[i] as number) + lambda * ((a.x0Hat[i] as number) - direction(i))
    const factor = renormFactor(rowNorm(r, cols, target), rowNorm(r, cols, (i) => a.x0[i] as number), 0)
    for (let i = r * cols; i < (r + 1) * cols; i++) out[i] = ((a.xt[i] as number) - target(i) * factor) / (a.t[r] as number)
  }
}

/** v = vUncond + omega (vCond - vUncond). */
const guided = (vUncond: Floats, vCond: Floats, omega: number, i: number): number =>
  (vUncond[i] as number) + omega * ((vCond[i] as number) - (vUncond[i] as number))

export const cfgCombine = (out: Floats, vUncond: Floats, vCond: Floats, omega: number): void => {
  for (let i = 0; i < out.length; i++) out[i] = guided(vUncond, vCond, omega, i)
}

/** cfgCombine rescaled per row to |vCond|; a zero guided row stays zero rather than dividing by 0. */
export const energyPreservingCfg = (out: Floats, vUncond: Floats, vCond: Floats, omega: number, rows: number): void => {
  const cols = rows === 0 ? 0 : out.length / rows
  for (let r = 0; r < rows; r++) {
    const factor = renormFactor(
      rowNorm(r, cols, (i) => guided(vUncond, vCond, omega, i)),
      rowNorm(r, cols, (i) => vCond[i] as number),
      1
    )
    for (let i = r * cols; i < (r + 1) * cols; i++) out[i] = guided(vUncond, vCond, omega, i) * factor
  }
}
