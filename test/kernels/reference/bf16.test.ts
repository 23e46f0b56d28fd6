import { describe, expect, it } from "vitest"
import { DTypeError } from "../../../src/kernels/errors.ts"
import { roundToBf16 } from "../../../src/kernels/reference/bf16.ts"
import { ReferenceBackend } from "../../../src/kernels/reference/ReferenceBackend.ts"
import type { Tensor } from "../../../src/tensor/Tensor.ts"
import { expectClose, f32, pseudoRandom, values } from "./helpers.ts"

/** bf16 rounding by arithmetic, independent of the bit trick: the nearest multiple of the bf16 ulp, ties to even. */
const roundByArithmetic = (value: number): number => {
  const x = Math.fround(value)
  if (!Number.isFinite(x) || x === 0) return x
  // bf16 keeps f32's exponent range and 8 significant bits; below 2^-126 the spacing stays 2^-133.
  const exponent = Math.max(Math.floor(Math.log2(Math.abs(x))), -126)
  const ulp = 2 ** (exponent - 7)
  const q = x / ulp
  const floor = Math.floor(q)
  const rest = q - floor
  const rounded = rest > 0.5 || (rest === 0.5 && floor % 2 !== 0) ? floor + 1 : floor
  const result = rounded * ulp
  return Math.abs(result) > 3.3895313892515355e38 ? Math.sign(result) * Infinity : result
}

const bitsToFloat = (bits: number) => new Float32Array(Uint32Array.of(bits).buffer)[0] as number

const emulating = () => new ReferenceBackend({ precision: "f32", storesBf16: true })

describe("bf16 rounding", () => {
  it("rounds to nearest, ties to even, as the CUDA backend stores bf16", () => {
    expect(roundToBf16(1 + 2 ** -8)).toBe(1) // a tie, towards the even mantissa 0
    expect(roundToBf16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6) // a tie, towards the even mantissa 2
    expect(roundToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(1 + 2 ** -7)
    expect(roundToBf16(-0)).toBe(-0)
    expect(roundToBf16(3.4028234663852886e38)).toBe(Infinity)
    expect(roundToBf16(-Infinity)).toBe(-Infinity)
    expect(roundToBf16(Number.NaN)).toBeNaN()
  })

  it("agrees with arithmetic rounding on random f32 bit patterns, subnormals included", () => {
    let state = 12345
    for (let i = 0; i < 20000; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0
      const x = bitsToFloat(state)
      if (Number.isNaN(x)) continue
      expect(roundToBf16(x), `bits 0x${state.toString(16)}`).toBe(roundByArithmetic(x))
    }
  })
})

describe("the reference backend emulating bf16 storage", () => {
  it("refuses bf16 by default, as the native CPU backend does", () => {
    expect(() => f32().zeros([2], "bf16")).toThrow(DTypeError)
    expect(() => f32().fromArray([1], [1], "bf16")).toThrow(/bf16 storage needs the CUDA backend/)
    expect(f32().storesBf16).toBe(false)
    expect(emulating().storesBf16).toBe(true)
  })

  it("rounds on upload, fill, write and cast; casting back to f32 is exact", async () => {
    const b = emulating()
    const data = pseudoRandom(64, 3).map((v) => v * 10)
    const x = b.fromArray(data, [64], "bf16")
    expect(x.dtype).toBe("bf16")
    expect(await values(b, x)).toEqual(data.map(roundToBf16))
    expect(await values(b, b.full([2], 1 + 2 ** -8 + 2 ** -20, "bf16"))).toEqual([1 + 2 ** -7, 1 + 2 ** -7])
    b.write(x, data.map((v) => -v))
    expect(await values(b, x)).toEqual(data.map((v) => roundToBf16(-v)))
    const master = b.fromArray(data, [64])
    const copy = b.cast(master, "bf16")
    expect(await values(b, copy)).toEqual(data.map((v) => roundToBf16(Math.fround(v))))
    const back = b.cast(copy, "f32")
    expect(back.dtype).toBe("f32")
    expect(await values(b, back)).toEqual(await values(b, copy))
  })

  it("keeps bf16 through the ops that take it, rounding their fp32 results once", async () => {
    const b = emulating()
    const xs = pseudoRandom(2 * 3 * 8, 5)
    const ws = pseudoRandom(4 * 8, 6)
    const x32 = b.fromArray(xs.map(roundToBf16), [2, 3, 8])
    const w32 = b.fromArray(ws.map(roundToBf16), [4, 8])
    const x16 = b.cast(x32, "bf16")
    const w16 = b.cast(w32, "bf16")
    const cases: ReadonlyArray<[string, Tensor, Tensor]> = [
      ["linear", b.linear(x16, w16), b.linear(x32, w32)],
      ["gelu", b.gelu(x16), b.gelu(x32)],
      ["add", b.add(x16, x16), b.add(x32, x32)],
      ["sumAxis", b.sumAxis(x16, 1), b.sumAxis(x32, 1)],
      ["layerNorm", b.layerNorm(x16, { eps: 1e-5 }).y, b.layerNorm(x32, { eps: 1e-5 }).y]
    ]
    for (const [name, low, high] of cases) {
      expect(low.dtype, name).toBe("bf16")
      const expected = (await values(b, high)).map(roundToBf16)
      expect(await values(b, low), name).toEqual(expected)
    }
    // LayerNorm's statistics and attention's log-sum-exp stay f32.
    const norm = b.layerNorm(x16, { eps: 1e-5 })
    expect([norm.mean.dtype, norm.rstd.dtype]).toEqual(["f32", "f32"])
    const q = b.view(x16, [2, 3, 2, 4])
    const attended = b.attention(q, q, q, {})
    expect([attended.out.dtype, attended.lse.dtype]).toEqual(["bf16", "f32"])
    const grads = b.attentionBackward(attended.out, q, q, q, attended, {})
    expect([grads.dq.dtype, grads.dk.dtype, grads.dv.dtype]).toEqual(["bf16", "bf16", "bf16"])
    expectClose(await values(b, attended.out), await values(b, b.attention(b.view(x32, [2, 3, 2, 4]), b.view(x32, [2, 3, 2, 4]), b.view(x32, [2, 3, 2, 4]), {}).out), 1e-2)
  })

  it("joins a bf16 branch to an f32 stream at adaLN and the gated residual, without casts", async () => {
    const b = emulating()
    const x = b.fromArray(pseudoRandom(24, 1), [2, 3, 4])
    const [shift, scale, gate] = [2, 3, 4].map((seed) => b.fromArray(pseudoRandom(8, seed), [2, 4]))
    // LayerNorm + modulate writes bf16 from f32: the f32 result rounded once; the statistics stay f32.
    const mixed = b.layerNormModulate(x, shift!, scale!, 1e-6, "bf16")
    const full = b.layerNormModulate(x, shift!, scale!, 1e-6)
    expect([mixed.y.dtype, mixed.mean.dtype, mixed.rstd.dtype]).toEqual(["bf16", "f32", "f32"])
    expect(await values(b, mixed.y)).toEqual((await values(b, full.y)).map(roundToBf16))
    // Its backward takes the bf16 dy and gives x's f32 gradients, as from the same values in f32.
    const dy16 = b.cast(b.fromArray(pseudoRandom(24, 5), [2, 3, 4]), "bf16")
    const dy32 = b.cast(dy16, "f32")
    const fromBf16 = b.layerNormModulateBackward(dy16, x, mixed, scale!)
    const fromF32 = b.layerNormModulateBackward(dy32, x, full, scale!)
    for (const name of ["dx", "dshift", "dscale"] as const) {
      expect(fromBf16[name].dtype, name).toBe("f32")
      expect(await values(b, fromBf16[name]), name).toEqual(await values(b, fromF32[name]))
    }
    // The gated residual adds the bf16 branch into the f32 stream; the branch's gradient comes back bf16.
    const branch16 = b.cast(b.fromArray(pseudoRandom(24, 6), [2, 3, 4]), "bf16")
    const branch32 = b.cast(branch16, "f32")
    const out = b.gatedResidual(x, gate!, branch16)
    expect(out.dtype).toBe("f32")
    expect(await values(b, out)).toEqual(await values(b, b.gatedResidual(x, gate!, branch32)))
    const dout = b.fromArray(pseudoRandom(24, 7), [2, 3, 4])
    const grads = b.gatedResidualBackward(dout, gate!, branch16)
    const reference = b.gatedResidualBackward(dout, gate!, branch32)
    expect([grads.dgate.dtype, grads.dbranch.dtype]).toEqual(["f32", "bf16"])
    expect(await values(b, grads.dgate)).toEqual(await values(b, reference.dgate))
    expect(await values(b, grads.dbranch)).toEqual((await values(b, reference.dbranch)).map(roundToBf16))
  })

  it("joins a bf16 branch to an f32 stream at a plain LayerNorm and the residual add, without casts", async () => {
    const b = emulating()
    const x = b.fromArray(pseudoRandom(24, 11), [2, 3, 4])
    const [weight, bias] = [12, 13].map((seed) => b.fromArray(pseudoRandom(4, seed), [4]))
    // LayerNorm writes bf16 from f32 (affine parameters f32): the f32 result rounded once; statistics f32.
    const mixed = b.layerNorm(x, { weight, bias, eps: 1e-5, dtype: "bf16" })
    const full = b.layerNorm(x, { weight, bias, eps: 1e-5 })
    expect([mixed.y.dtype, mixed.mean.dtype, mixed.rstd.dtype]).toEqual(["bf16", "f32", "f32"])
    expect(await values(b, mixed.y)).toEqual((await values(b, full.y)).map(roundToBf16))
    // Its backward takes the bf16 dy and gives f32 gradients for x and the affine parameters, as from the same
    // values in f32, with a base too.
    const dy16 = b.cast(b.fromArray(pseudoRandom(24, 14), [2, 3, 4]), "bf16")
    const dy32 = b.cast(dy16, "f32")
    const base = b.fromArray(pseudoRandom(24, 15), [2, 3, 4])
    const fromBf16 = b.layerNormBackward(dy16, x, mixed, { weight, withBias: true, addTo: { dx: base } })
    const fromF32 = b.layerNormBackward(dy32, x, full, { weight, withBias: true, addTo: { dx: base } })
    for (const name of ["dx", "dweight", "dbias"] as const) {
      expect(fromBf16[name]?.dtype, name).toBe("f32")
      expect(await values(b, fromBf16[name] as Tensor), name).toEqual(await values(b, fromF32[name] as Tensor))
    }
    // The residual add takes the bf16 branch into the f32 stream: as the same values in f32, in f32.
    const branch16 = b.cast(b.fromArray(pseudoRandom(24, 16), [2, 3, 4]), "bf16")
    const sum = b.add(x, branch16)
    expect(sum.dtype).toBe("f32")
    expect(await values(b, sum)).toEqual(await values(b, b.add(x, b.cast(branch16, "f32"))))
  })

  it("refuses the other mixes at those edges, naming the tensor", () => {
    const b = emulating()
    const x16 = b.zeros([2, 3, 4], "bf16")
    const per16 = b.zeros([2, 4], "bf16")
    // An f32 output from bf16, or f32 beside a bf16 stream, is not a branch edge.
    expect(() => b.layerNormModulate(x16, per16, per16, 1e-6, "f32")).toThrow(/dtype must be x's \(bf16\), got f32/)
    expect(() => b.layerNormModulate(b.zeros([2, 3, 4]), b.zeros([2, 4]), b.zeros([2, 4]), 1e-6, "i32")).toThrow(DTypeError)
    expect(() => b.gatedResidual(x16, per16, b.zeros([2, 3, 4]))).toThrow(/branch must be bf16, got f32/)
    expect(() => b.layerNorm(x16, { eps: 1e-5, dtype: "f32" })).toThrow(/dtype must be x's \(bf16\), got f32/)
    expect(() => b.layerNormBackward(b.zeros([2, 3, 4]), x16, b.layerNorm(x16, { eps: 1e-5 }), { withBias: false })).toThrow(/dy must be bf16, got f32/)
    expect(() => b.add(x16, b.zeros([2, 3, 4]))).toThrow(/b must be bf16, got f32/)
    // Only add joins a branch: sub and mul keep one dtype.
    expect(() => b.sub(b.zeros([2, 3, 4]), x16)).toThrow(/b must be f32, got bf16/)
    expect(() => b.mul(b.zeros([2, 3, 4]), x16)).toThrow(/b must be f32, got bf16/)
    expect(() => b.gatedResidualBackward(b.zeros([2, 3, 4]), b.zeros([2, 4]), b.zeros([2, 3, 4], "i32"))).toThrow(/branch must be f32 or bf16, got i32/)
  })

  it("refuses bf16 where the CUDA backend does: mixed dtypes, and ops that are f32 only", () => {
    const b = emulating()
    const x16 = b.zeros([2, 4], "bf16")
    expect(() => b.add(x16, b.zeros([2, 4]))).toThrow(/b must be bf16, got f32/)
    expect(() => b.rowDot(x16, x16, 1)).toThrow(DTypeError)
    expect(() => b.mse(x16, x16)).toThrow(DTypeError)
    expect(() => b.patchify(b.zeros([1, 1, 2, 2], "bf16"), 1)).toThrow(DTypeError)
  })
})
