import type { AdamWHyper } from "../ops.ts"
import type { Floats } from "./storage.ts"

/** Optimizer kernels, in place over lists of f32 tensors, in double and rounded once per stored value. */

/**
 * m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr (m / bc1 / (sqrt(v / bc2) + eps) + wd p), with
 * bc_i = 1 - b_i^step (decoupled weight decay). The step uses m and v before they are rounded to storage.
 */
export const adamw = (
  params: ReadonlyArray<Floats>,
  grads: ReadonlyArray<Floats>,
  m: ReadonlyArray<Floats>,
  v: ReadonlyArray<Floats>,
  hyper: AdamWHyper
): void => {
  const { lr, beta1, beta2, eps, weightDecay, step } = hyper
  const bc1 = 1 - Math.pow(beta1, step)
  const bc2 = 1 - Math.pow(beta2, step)
  params.forEach((p, t) => {
    const g = grads[t] as Floats
    const mt = m[t] as Floats
    const vt = v[t] as Floats
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] as number
      const mi = beta1 * (mt[i] as number) + (1 - beta1) * gi
      const vi = beta2 * (vt[i] as number) + (1 - beta2) * gi * gi
      mt[i] = mi
      vt[i] = vi
      const pi = p[i] as number
      p[i] = pi - lr * (mi / bc1 / (Math.sqrt(vi / bc2) + eps) + weightDecay * pi)
    }
  })
}

/** ema = decay ema + (1 - decay) params. */
export const emaUpdate = (ema: ReadonlyArray<Floats>, params: ReadonlyArray<Floats>, decay: number): void => {
  ema.forEach((e, t) => {
    const p = params[t] as Floats
    for (let i = 0; i < e.length; i++) e[i] = decay * (e[i] as number) + (1 - decay) * (p[i] as number)
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
