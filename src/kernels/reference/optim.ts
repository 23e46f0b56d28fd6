import type { AdamWHyper } from "../ops.ts"
import type { Floats } from "./storage.ts"

/** Optimizer kernels, in place over lists of f32 tensors, in double and rounded once per stored value. */

/** The per-step constants of AdamW: the hyper-parameters and the bias corrections bc_i = 1 - b_i^step. */
const adamwConstants = (hyper: AdamWHyper) => ({ ...hyper, bc1: 1 - Math.pow(hyper.beta1, hyper.step), bc2: 1 - Math.pow(hyper.beta2, hyper.step) })

/**
 * Element i of one tensor: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr (m / bc1 / (sqrt(v / bc2)
 * + eps) + wd p) (decoupled weight decay). The step uses m and v before they are rounded to storage.
 */
const adamwElement = (p: Floats, g: Floats, m: Floats, v: Floats, i: number, c: ReturnType<typeof adamwConstants>): void => {
  const gi = g[i] as number
  const mi = c.beta1 * (m[i] as number) + (1 - c.beta1) * gi
  const vi = c.beta2 * (v[i] as number) + (1 - c.beta2) * gi * gi
  m[i] = mi
  v[i] = vi
  const pi = p[i] as number
  p[i] = pi - c.lr * (mi / c.bc1 / (Math.sqrt(vi / c.bc2) + c.eps) + c.weightDecay * pi)
}

/** AdamW over every tensor of the lists (adamwElement per element). */
export const adamw = (
  params: ReadonlyArray<Floats>,
  grads: ReadonlyArray<Floats>,
  m: ReadonlyArray<Floats>,
  v: ReadonlyArray<Floats>,
  hyper: AdamWHyper
): void => {
  const c = adamwConstants(hyper)
  params.forEach((p, t) => {
    for (let i = 0; i < p.length; i++) adamwElement(p, grads[t] as Floats, m[t] as Floats, v[t] as Floats, i, c)
  })
}

/** ema = decay ema + (1 - decay) params. */
export const emaUpdate = (ema: ReadonlyArray<Floats>, params: ReadonlyArray<Floats>, decay: number): void => {
  ema.forEach((e, t) => {
    const p = params[t] as Floats
    for (let i = 0; i < e.length; i++) e[i] = decay * (e[i] as number) + (1 - decay) * (p[i] as number)
  })
}

/**
 * adamw, then emaUpdate toward the updated params, in one pass: per element the AdamW step (as `adamw`), then
 * ema = decay ema + (1 - decay) p with p as stored. The same numbers as the two calls in sequence.
 */
export const adamwEma = (
  params: ReadonlyArray<Floats>,
  grads: ReadonlyArray<Floats>,
  m: ReadonlyArray<Floats>,
  v: ReadonlyArray<Floats>,
  ema: ReadonlyArray<Floats>,
  hyper: AdamWHyper,
  decay: number
): void => {
  const c = adamwConstants(hyper)
  params.forEach((p, t) => {
    const e = ema[t] as Floats
    for (let i = 0; i < p.length; i++) {
      adamwElement(p, grads[t] as Floats, m[t] as Floats, v[t] as Floats, i, c)
      e[i] = decay * (e[i] as number) + (1 - decay) * (p[i] as number)
    }
  })
}

/** sqrt(sum of squares over every tensor). */
export const globalNorm = (xs: ReadonlyArray<Floats>): number => {
  let acc = 0
  for (const x of xs) for (let i = 0; i < x.length; i++) acc += (x[i] as number) * (x[i] as number)
  return Math.sqrt(acc)
}

/** xs *= min(1, maxNorm / (norm + 1e-6)); a NaN norm propagates into the tensors (as in PyTorch). */
export const clipByNorm = (xs: ReadonlyArray<Floats>, norm: number, maxNorm: number): void => {
  const coefficient = maxNorm / (norm + 1e-6)
  if (coefficient >= 1) return
  for (const x of xs) for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) * coefficient
}
