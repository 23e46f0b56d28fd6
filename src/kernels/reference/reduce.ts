import type { Floats } from "./storage.ts"

/** Reductions, accumulated in double and rounded once by the store. */

export const sumAll = (x: Floats): number => {
  let acc = 0
  for (let i = 0; i < x.length; i++) acc += x[i] as number
  return acc
}

/** out[o, i] = sum_j x[o, j, i]. */
export const sumAxis = (out: Floats, x: Floats, outer: number, axis: number, inner: number): void => {
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let acc = 0
      for (let j = 0; j < axis; j++) acc += x[(o * axis + j) * inner + i] as number
      out[o * inner + i] = acc
    }
}

/** sum (a - b)^2 over [from, to). */
const squaredDistance = (a: Floats, b: Floats, from: number, to: number): number => {
  let acc = 0
  for (let i = from; i < to; i++) {
    const d = (a[i] as number) - (b[i] as number)
    acc += d * d
  }
  return acc
}

/** mean (a - b)^2 over every element (a is not empty). */
export const mseAll = (a: Floats, b: Floats): number => squaredDistance(a, b, 0, a.length) / a.length

/** out[r] = mean_c (a[r, c] - b[r, c])^2. */
export const mseRows = (out: Floats, a: Floats, b: Floats): void => {
  const rows = out.length
  const cols = rows === 0 ? 0 : a.length / rows
  for (let r = 0; r < rows; r++) out[r] = squaredDistance(a, b, r * cols, (r + 1) * cols) / cols
}
