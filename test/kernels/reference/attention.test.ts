import { describe, expect, it } from "vitest"
import { DTypeError, InvalidArgumentError, ShapeError } from "../../../src/kernels/errors.ts"
import { expectClose, f32, f64, numericGradient, pseudoRandom, values, weightedSum } from "./helpers.ts"

/** Attention written directly from its definition, over [B, L, H, D] arrays, for comparison. */
const naiveAttention = (
  q: Array<number>,
  k: Array<number>,
  v: Array<number>,
  mask: Array<number> | undefined,
  [batch, lq, lk, heads, dim]: [number, number, number, number, number],
  scale: number
) => {
  const out: Array<number> = new Array(batch * lq * heads * dim).fill(0)
  const lse: Array<number> = new Array(batch * heads * lq).fill(-Infinity)
  for (let b = 0; b < batch; b++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < lq; i++) {
        const keys = [...Array(lk).keys()].filter((j) => mask === undefined || mask[b * lk + j] !== 0)
        if (keys.length === 0) continue
        const score = (j: number) => {
          let s = 0
          for (let d = 0; d < dim; d++) s += (q[((b * lq + i) * heads + h) * dim + d] as number) * (k[((b * lk + j) * heads + h) * dim + d] as number)
          return scale * s
        }
        const weights = keys.map((j) => Math.exp(score(j)))
        const total = weights.reduce((s, w) => s + w, 0)
        lse[(b * heads + h) * lq + i] = Math.log(total)
        for (let d = 0; d < dim; d++)
          out[((b * lq + i) * heads + h) * dim + d] = keys.reduce((s, j, n) => s + ((weights[n] as number) / total) * (v[((b * lk + j) * heads + h) * dim + d] as number), 0)
      }
  return { out, lse }
}

describe("attention", () => {
  it("weights values by the softmax of scaled scores (hand case)", async () => {
    const b = f64()
    const { out, lse } = b.attention(b.fromArray([1], [1, 1, 1, 1]), b.fromArray([0, Math.log(3)], [1, 2, 1, 1]), b.fromArray([4, 8], [1, 2, 1, 1]), { scale: 1 })
    expectClose(await values(b, out), [7], 1e-15)
    expectClose(await values(b, lse), [Math.log(4)], 1e-15)
  })

  it("defaults the scale to 1 / sqrt(head dim)", async () => {
    const b = f64()
    const { lse } = b.attention(b.fromArray([1, 1, 1, 1], [1, 1, 1, 4]), b.fromArray([2, 2, 2, 2], [1, 1, 1, 4]), b.zeros([1, 1, 1, 4]), {})
    expect(await values(b, lse)).toEqual([4])
  })

  it("returns v when there is a single key", async () => {
    const b = f64()
    const v = pseudoRandom(8, 3)
    const { out, lse } = b.attention(b.fromArray(pseudoRandom(24, 1), [1, 3, 2, 4]), b.fromArray(pseudoRandom(8, 2), [1, 1, 2, 4]), b.fromArray(v, [1, 1, 2, 4]), {})
    const outs = await values(b, out)
    for (let i = 0; i < 3; i++) expectClose(outs.slice(i * 8, (i + 1) * 8), v, 1e-15)
    expect(lse.shape).toEqual([1, 2, 3])
  })

  it("has softmax rows that sum to 1 (v = ones), with or without a mask", async () => {
    const b = f64()
    const q = b.fromArray(pseudoRandom(2 * 3 * 2 * 4, 4).map((u) => 5 * u), [2, 3, 2, 4])
    const k = b.fromArray(pseudoRandom(2 * 5 * 2 * 4, 5).map((u) => 5 * u), [2, 5, 2, 4])
    const ones = b.full([2, 5, 2, 4], 1)
    expectClose(await values(b, b.attention(q, k, ones, {}).out), new Array(48).fill(1), 1e-14)
    const mask = b.fromArray([1, 0, 1, 0, 0, 0, 0, 0, 0, 1], [2, 5], "i32")
    expectClose(await values(b, b.attention(q, k, ones, { keyMask: mask }).out), new Array(48).fill(1), 1e-14)
  })

  it("matches attention written from its definition, over batches, heads and a key mask", async () => {
    const b = f64()
    const sizes: [number, number, number, number, number] = [2, 3, 4, 2, 3]
    const q = pseudoRandom(2 * 3 * 2 * 3, 6)
    const k = pseudoRandom(2 * 4 * 2 * 3, 7)
    const v = pseudoRandom(2 * 4 * 2 * 3, 8)
    const mask = [1, 1, 0, 1, 0, 1, 1, 0]
    const expected = naiveAttention(q, k, v, mask, sizes, 0.7)
    const got = b.attention(b.fromArray(q, [2, 3, 2, 3]), b.fromArray(k, [2, 4, 2, 3]), b.fromArray(v, [2, 4, 2, 3]), {
      keyMask: b.fromArray(mask, [2, 4], "i32"),
      scale: 0.7
    })
    expectClose(await values(b, got.out), expected.out, 1e-14)
    expectClose(await values(b, got.lse), expected.lse, 1e-14)
  })

  it("gives a query with no keys out = 0, lse = -Infinity and zero gradients", async () => {
    const b = f64()
    const q = b.fromArray(pseudoRandom(8, 1), [2, 2, 1, 2])
    const k = b.fromArray(pseudoRandom(12, 2), [2, 3, 1, 2])
    const v = b.fromArray(pseudoRandom(12, 3), [2, 3, 1, 2])
    const options = { keyMask: b.fromArray([1, 1, 1, 0, 0, 0], [2, 3], "i32") }
    const saved = b.attention(q, k, v, options)
    expect((await values(b, saved.out)).slice(4)).toEqual([0, 0, 0, 0])
    expect((await values(b, saved.lse)).slice(2)).toEqual([-Infinity, -Infinity])
    const grads = b.attentionBackward(b.full([2, 2, 1, 2], 1), q, k, v, saved, options)
    expect((await values(b, grads.dq)).slice(4)).toEqual([0, 0, 0, 0])
    expect((await values(b, grads.dk)).slice(6)).toEqual([0, 0, 0, 0, 0, 0])
    expect((await values(b, grads.dv)).slice(6)).toEqual([0, 0, 0, 0, 0, 0])
  })

  it("has the gradients of its forward, masked keys included (gradcheck in f64)", async () => {
    const b = f64()
    const [qShape, kShape] = [[2, 3, 2, 2], [2, 4, 2, 2]]
    const qs = pseudoRandom(24, 11)
    const ks = pseudoRandom(32, 12)
    const vs = pseudoRandom(32, 13)
    const dout = pseudoRandom(24, 14)
    const mask = b.fromArray([1, 0, 1, 1, 0, 1, 1, 1], [2, 4], "i32")
    const options = { keyMask: mask, scale: 0.9 }
    const forward = async (q: ReadonlyArray<number>, k: ReadonlyArray<number>, v: ReadonlyArray<number>) =>
      weightedSum(await values(b, b.attention(b.fromArray(q, qShape), b.fromArray(k, kShape), b.fromArray(v, kShape), options).out), dout)
    const [q, k, v] = [b.fromArray(qs, qShape), b.fromArray(ks, kShape), b.fromArray(vs, kShape)]
    const grads = b.attentionBackward(b.fromArray(dout, qShape), q, k, v, b.attention(q, k, v, options), options)
    expectClose(await values(b, grads.dq), await numericGradient(qs, (x) => forward(x, ks, vs)), 1e-8)
    expectClose(await values(b, grads.dk), await numericGradient(ks, (x) => forward(qs, x, vs)), 1e-8)
    expectClose(await values(b, grads.dv), await numericGradient(vs, (x) => forward(qs, ks, x)), 1e-8)
  })

  it("refuses mismatched layouts, masks and scales", () => {
    const b = f32()
    const q = b.zeros([1, 2, 2, 4])
    const kv = b.zeros([1, 3, 2, 4])
    expect(() => b.attention(q, b.zeros([1, 3, 1, 4]), kv, {})).toThrow(ShapeError)
    expect(() => b.attention(q, kv, b.zeros([1, 2, 2, 4]), {})).toThrow(ShapeError)
    expect(() => b.attention(b.zeros([2, 2, 4]), kv, kv, {})).toThrow(ShapeError)
    expect(() => b.attention(q, kv, kv, { keyMask: b.zeros([1, 3]) })).toThrow(DTypeError)
    expect(() => b.attention(q, kv, kv, { keyMask: b.zeros([1, 2], "i32") })).toThrow(ShapeError)
    expect(() => b.attention(q, kv, kv, { scale: Number.NaN })).toThrow(InvalidArgumentError)
    const saved = b.attention(q, kv, kv, {})
    expect(() => b.attentionBackward(q, q, kv, kv, { out: saved.out, lse: b.zeros([1, 2, 3]) }, {})).toThrow(ShapeError)
    expect(() => b.attentionBackward(b.zeros([1, 2, 2, 4], "i32"), q, kv, kv, saved, {})).toThrow(DTypeError)
  })
})
