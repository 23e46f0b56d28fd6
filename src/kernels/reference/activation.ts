import type { Floats } from "./storage.ts"

/** GELU (tanh approximation, DiT's MLP) and SiLU, in double with the exact constants. */

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)
const CUBIC = 0.044715
// tanh is exactly +-1 in double beyond |x| = 10, so clamping there keeps x^3 finite without changing dx.
const GELU_SATURATION = 10

export const gelu = (out: Floats, x: Floats): void => {
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number
    out[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + CUBIC * v * v * v)))
  }
}

/** Writes dx = dy gelu'(x). */
export const geluBackward = (dx: Floats, dy: Floats, x: Floats): void => {
  for (let i = 0; i < x.length; i++) {
    const v = Math.min(GELU_SATURATION, Math.max(-GELU_SATURATION, x[i] as number))
    const t = Math.tanh(SQRT_2_OVER_PI * (v + CUBIC * v * v * v))
    const slope = SQRT_2_OVER_PI * (1 + 3 * CUBIC * v * v)
    dx[i] = (dy[i] as number) * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * slope)
  }
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x))

export const silu = (out: Floats, x: Floats): void => {
  for (let i = 0; i < x.length; i++) out[i] = (x[i] as number) * sigmoid(x[i] as number)
}

/** Writes dx = dy s (1 + x (1 - s)), s = sigmoid(x). */
export const siluBackward = (dx: Floats, dy: Floats, x: Floats): void => {
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number
    const s = sigmoid(v)
    dx[i] = (dy[i] as number) * s * (1 + v * (1 - s))
  }
}
