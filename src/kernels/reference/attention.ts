import type { Floats } from "./storage.ts"

/**
 * Multi-head softmax attention in FlashAttention's layout: q [B, Lq, H, D], k and v [B, Lk, H, D], out
 * [B, Lq, H, D], lse [B, H, Lq] (natural log-sum-exp of the scaled, masked scores). keyMask is i32 [B, Lk],
 * nonzero = attend. A query with no attended key gets out = 0, lse = -Infinity, and no gradient.
 * Scores, softmax and sums are in double.
 */
export interface AttentionSizes {
  readonly batch: number
  readonly heads: number
  readonly lq: number
  readonly lk: number
  readonly headDim: number
}

/** Element offset of row i of head h of sample b in a [B, L, H, D] tensor. */
const rowOffset = (b: number, i: number, h: number, length: number, s: AttentionSizes): number =>
  ((b * length + i) * s.heads + h) * s.headDim

const dot = (a: Floats, aAt: number, b: Floats, bAt: number, n: number): number => {
  let acc = 0
  for (let d = 0; d < n; d++) acc += (a[aAt + d] as number) * (b[bAt + d] as number)
  return acc
}

const attends = (keyMask: Int32Array | undefined, b: number, lk: number, j: number): boolean =>
  keyMask === undefined || keyMask[b * lk + j] !== 0

export const attentionForward = (
  out: Floats,
  lse: Floats,
  q: Floats,
  k: Floats,
  v: Floats,
  keyMask: Int32Array | undefined,
  s: AttentionSizes,
  scale: number
): void => {
  const { batch, heads, lq, lk, headDim } = s
  const scores = new Float64Array(lk)
  const acc = new Float64Array(headDim)
  for (let b = 0; b < batch; b++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < lq; i++) {
        const qi = rowOffset(b, i, h, lq, s)
        let maxScore = -Infinity
        let attended = 0
        for (let j = 0; j < lk; j++) {
          if (!attends(keyMask, b, lk, j)) continue
          scores[j] = scale * dot(q, qi, k, rowOffset(b, j, h, lk, s), headDim)
          maxScore = Math.max(maxScore, scores[j] as number)
          attended++
        }
        const lseAt = (b * heads + h) * lq + i
        if (attended === 0) {
          out.fill(0, qi, qi + headDim)
          lse[lseAt] = -Infinity
          continue
        }
        acc.fill(0)
        let sum = 0
        for (let j = 0; j < lk; j++) {
          if (!attends(keyMask, b, lk, j)) continue
          const p = Math.exp((scores[j] as number) - maxScore)
          sum += p
          const vj = rowOffset(b, j, h, lk, s)
          for (let d = 0; d < headDim; d++) acc[d] += p * (v[vj + d] as number)
        }
        for (let d = 0; d < headDim; d++) out[qi + d] = (acc[d] as number) / sum
        lse[lseAt] = maxScore + Math.log(sum)
      }
}

/**
 * Writes dq, dk, dv. Probabilities are recomputed from the saved lse, with delta_i = dout_i . out_i from the
 * saved out: ds_ij = p_ij (dout_i . v_j - delta_i), dq_i = scale sum_j ds_ij k_j, dk_j = scale sum_i ds_ij q_i,
 * dv_j = sum_i p_ij dout_i.
 */
export const attentionBackward = (
  dq: Floats,
  dk: Floats,
  dv: Floats,
  dout: Floats,
  q: Floats,
  k: Floats,
  v: Floats,
  out: Floats,
  lse: Floats,
  keyMask: Int32Array | undefined,
  s: AttentionSizes,
  scale: number
): void => {
  const { batch, heads, lq, lk, headDim } = s
  const dqAcc = new Float64Array(dq.length)
  const dkAcc = new Float64Array(dk.length)
  const dvAcc = new Float64Array(dv.length)
  for (let b = 0; b < batch; b++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < lq; i++) {
        const l = lse[(b * heads + h) * lq + i] as number
        if (l === -Infinity) continue
        const qi = rowOffset(b, i, h, lq, s)
        const delta = dot(dout, qi, out, qi, headDim)
        for (let j = 0; j < lk; j++) {
          if (!attends(keyMask, b, lk, j)) continue
          const kj = rowOffset(b, j, h, lk, s)
          const p = Math.exp(scale * dot(q, qi, k, kj, headDim) - l)
          const ds = p * (dot(dout, qi, v, kj, headDim) - delta)
          for (let d = 0; d < headDim; d++) {
            dqAcc[qi + d] += ds * (k[kj + d] as number)
            dkAcc[kj + d] += ds * (q[qi + d] as number)
            dvAcc[kj + d] += p * (dout[qi + d] as number)
          }
        }
      }
  for (let i = 0; i < dq.length; i++) dq[i] = scale * (dqAcc[i] as number)
  for (let i = 0; i < dk.length; i++) dk[i] = scale * (dkAcc[i] as number)
  dv.set(dvAcc)
}
