import { expect } from "vitest"

export interface Tolerance {
  readonly atol: number
  readonly rtol: number
}

/** Largest violation of |actual - expected| <= atol + rtol |expected| (0 when all hold). */
export const worstExcess = (actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance) => {
  let worst = 0
  let where = -1
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number
    const e = expected[i] as number
    if (a === e) continue // also equal infinities
    const excess = Math.abs(a - e) - (tol.atol + tol.rtol * Math.abs(e))
    if (!(excess <= 0) && !(excess < worst)) {
      worst = Number.isNaN(excess) ? Infinity : excess
      where = i
    }
  }
  return { worst, where }
}

export const expectClose = (actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, label = "") => {
  expect(actual.length, `${label} length`).toBe(expected.length)
  const { worst, where } = worstExcess(actual, expected, tol)
  expect(worst, `${label} element ${where}: ${actual[where]} vs ${expected[where]}`).toBe(0)
}
