import type { Floats } from "./storage.ts"

/** Matrix products, row-major, accumulated in double. */
export interface MatmulSizes {
  readonly batch: number
  readonly m: number
  readonly n: number
  readonly k: number
  /** One b [K, N] (or [N, K] transposed) shared by every problem of the batch. */
  readonly sharedB: boolean
}

/** c[p] = alpha op(a[p]) op(b[p]): op(a) is [m, k] (a stored [k, m] when transA), op(b) [k, n] ([n, k]). */
export const matmul = (c: Floats, a: Floats, b: Floats, s: MatmulSizes, transA: boolean, transB: boolean, alpha: number): void => {
  const { batch, m, n, k } = s
  for (let p = 0; p < batch; p++) {
    const aAt = p * m * k
    const bAt = s.sharedB ? 0 : p * k * n
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let acc = 0
        for (let kk = 0; kk < k; kk++) {
          const av = a[aAt + (transA ? kk * m + i : i * k + kk)] as number
          const bv = b[bAt + (transB ? j * k + kk : kk * n + j)] as number
          acc += av * bv
        }
        c[p * m * n + i * n + j] = alpha * acc
      }
  }
}

/** y[r, o] = sum_i x[r, i] weight[o, i] + bias[o], weight stored [out, in] (PyTorch's layout). */
export const linear = (
  y: Floats,
  x: Floats,
  weight: Floats,
  bias: Floats | undefined,
  rows: number,
  inFeatures: number,
  outFeatures: number
): void => {
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outFeatures; o++) {
      let acc = bias === undefined ? 0 : (bias[o] as number)
      for (let i = 0; i < inFeatures; i++) acc += (x[r * inFeatures + i] as number) * (weight[o * inFeatures + i] as number)
      y[r * outFeatures + o] = acc
    }
}
