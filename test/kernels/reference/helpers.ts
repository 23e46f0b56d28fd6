import { expect } from "vitest"
import type { Shape } from "../../../src/tensor/dtype.ts"
import type { Tensor } from "../../../src/tensor/Tensor.ts"
import { ReferenceBackend } from "../../../src/kernels/reference/ReferenceBackend.ts"

/** Shared helpers of the reference-backend tests (not a test file itself). */

export const f32 = () => new ReferenceBackend({ precision: "f32" })
export const f64 = () => new ReferenceBackend({ precision: "f64" })

export const values = async (backend: ReferenceBackend, t: Tensor): Promise<Array<number>> => Array.from(await backend.read(t))

/** Elementwise |actual - expected| <= tol (1 + |expected|). */
export const expectClose = (actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12): void => {
  expect(actual.length).toBe(expected.length)
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number
    const e = expected[i] as number
    if (Number.isNaN(e) || !Number.isFinite(e)) expect(a, `element ${i}`).toBe(e)
    else expect(Math.abs(a - e), `element ${i}: ${a} vs ${e}`).toBeLessThanOrEqual(tol * (1 + Math.abs(e)))
  }
}

/** A deterministic pseudo-random sequence in [-1, 1) (a small LCG, independent of Philox). */
export const pseudoRandom = (n: number, seed = 1): Array<number> => {
  let state = seed >>> 0
  return Array.from({ length: n }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 31 - 1
  })
}

export const tensorOf = (backend: ReferenceBackend, shape: Shape, seed = 1): Tensor =>
  backend.fromArray(pseudoRandom(shape.reduce((n, d) => n * d, 1), seed), shape)

/**
 * Central-difference gradient of the scalar loss(x) with respect to every element of `x` (host values), for
 * gradchecks on the f64 backend.
 */
export const numericGradient = async (
  x: ReadonlyArray<number>,
  loss: (x: ReadonlyArray<number>) => Promise<number>,
  h = 1e-6
): Promise<Array<number>> => {
  const gradient: Array<number> = []
  for (let i = 0; i < x.length; i++) {
    const plus = [...x]
    const minus = [...x]
    plus[i] = (plus[i] as number) + h
    minus[i] = (minus[i] as number) - h
    gradient.push(((await loss(plus)) - (await loss(minus))) / (2 * h))
  }
  return gradient
}

/** sum(weights * y): a scalar loss whose gradient with respect to y is `weights`. */
export const weightedSum = (y: ArrayLike<number>, weights: ArrayLike<number>): number => {
  let acc = 0
  for (let i = 0; i < y.length; i++) acc += (y[i] as number) * (weights[i] as number)
  return acc
}
