import { type DType, type Shape, formatShape, numelOf, sameShape } from "../tensor/dtype.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import { DTypeError, InvalidArgumentError, ShapeError } from "./errors.ts"
import type { ImageGeometry } from "./ops.ts"

/**
 * Shape rules of every op, shared by all backends so they agree on what is valid and what comes out.
 * Each check throws a typed error naming the op and the argument.
 */

const MAX_RANK = 8
const MAX_DIM = 2 ** 40
const MAX_NUMEL = 2 ** 46

export const fail = (op: string, reason: string): never => {
  throw new ShapeError({ op, reason })
}

export const invalid = (op: string, reason: string): never => {
  throw new InvalidArgumentError({ op, reason })
}

export const expectDtype = (op: string, name: string, x: Tensor, dtype: DType = "f32") => {
  if (x.dtype !== dtype) throw new DTypeError({ op, reason: `${name} must be ${dtype}, got ${x.dtype}` })
}

/** f32, or bf16 (which only the CUDA backend stores): the element types of ops with fp32 arithmetic. */
export const expectFloating = (op: string, name: string, x: Tensor) => {
  if (x.dtype !== "f32" && x.dtype !== "bf16") throw new DTypeError({ op, reason: `${name} must be f32 or bf16, got ${x.dtype}` })
}

export const expectShape = (op: string, name: string, x: Tensor, shape: Shape) => {
  if (!sameShape(x.shape, shape)) fail(op, `${name} must have shape ${formatShape(shape)}, got ${formatShape(x.shape)}`)
}

/** A bf16 branch's edge in mixed precision: `actual` is `expected` itself, or bf16 where `expected` is f32. */
const isDtypeOrBf16 = (actual: DType, expected: DType) => actual === expected || (expected === "f32" && actual === "bf16")
const dtypeOrBf16 = (dtype: DType) => `${dtype}${dtype === "f32" ? " or bf16" : ""}`

/** The dtype of a tensor that may be bf16 beside f32 ones: `dtype` itself, or bf16 when `dtype` is f32. */
export const expectDtypeOrBf16 = (op: string, name: string, x: Tensor, dtype: DType) => {
  if (!isDtypeOrBf16(x.dtype, dtype)) throw new DTypeError({ op, reason: `${name} must be ${dtypeOrBf16(dtype)}, got ${x.dtype}` })
}

/** The dtype a normalisation writes its y in: x's, or bf16 from an f32 x (a bf16 branch's input). */
const expectOutputDtype = (op: string, dtype: DType, x: Tensor) => {
  expectDtypeName(op, "dtype", dtype)
  if (!isDtypeOrBf16(dtype, x.dtype)) throw new DTypeError({ op, reason: `dtype must be x's (${dtypeOrBf16(x.dtype)}), got ${dtype}` })
}

/** castAll's list: an array of tensors of one dtype, and a dtype name. */
export const castAll = (xs: ReadonlyArray<Tensor>, dtype: DType) => {
  const op = "castAll"
  if (!Array.isArray(xs)) invalid(op, "xs must be an array of tensors")
  expectDtypeName(op, "dtype", dtype)
  xs.forEach((x, i) => expectDtype(op, `xs[${i}]`, x, (xs[0] as Tensor).dtype))
}

/** A gradient's base (ops.ts GradientBases), when given: the gradient's shape and dtype. */
export const expectBase = (op: string, name: string, base: Tensor | undefined, shape: Shape, dtype: DType) => {
  if (base === undefined) return
  expectShape(op, name, base, shape)
  expectDtype(op, name, base, dtype)
}

export const expectRank = (op: string, name: string, x: Tensor, rank: number) => {
  if (x.shape.length !== rank) fail(op, `${name} must have rank ${rank}, got shape ${formatShape(x.shape)}`)
}

export const expectFinite = (op: string, name: string, value: number) => {
  if (typeof value !== "number" || !Number.isFinite(value)) invalid(op, `${name} must be a finite number, got ${value}`)
}

export const expectInteger = (op: string, name: string, value: number, min: number, max: number) => {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    invalid(op, `${name} must be an integer in [${min}, ${max}], got ${value}`)
}

export const checkShape = (op: string, shape: Shape): Shape => {
  if (!Array.isArray(shape)) return fail(op, "shape must be an array of dimensions")
  if (shape.length > MAX_RANK) fail(op, `shape has rank ${shape.length}, at most ${MAX_RANK} is supported`)
  shape.forEach((d, i) => {
    if (typeof d !== "number" || !Number.isInteger(d) || d < 0 || d > MAX_DIM)
      fail(op, `shape[${i}] must be a non-negative integer, got ${d}`)
  })
  if (shape.reduce((n, d) => n * Math.max(1, d), 1) > MAX_NUMEL) fail(op, `shape ${formatShape(shape)} has too many elements`)
  return [...shape]
}

export const isSuffix = (small: Shape, big: Shape) =>
  small.length <= big.length && small.every((d, i) => d === big[big.length - small.length + i])

export const isPrefix = (small: Shape, big: Shape) => small.length <= big.length && small.every((d, i) => d === big[i])

/**
 * add / sub / mul: b equal to a or a trailing suffix of a (bias broadcast), of a's dtype; with `bf16Branch`
 * (add's), b may be bf16 beside an f32 a (a bf16 branch's output).
 */
export const binary = (op: string, a: Tensor, b: Tensor, bf16Branch = false): Shape => {
  expectFloating(op, "a", a)
  if (bf16Branch) expectDtypeOrBf16(op, "b", b, a.dtype)
  else expectDtype(op, "b", b, a.dtype)
  if (!sameShape(a.shape, b.shape) && !isSuffix(b.shape, a.shape))
    fail(op, `b ${formatShape(b.shape)} must equal a ${formatShape(a.shape)} or be a trailing suffix of it`)
  return a.shape
}

export const mulRows = (x: Tensor, s: Tensor): Shape => {
  expectFloating("mulRows", "x", x)
  expectDtype("mulRows", "s", s, x.dtype)
  if (!isPrefix(s.shape, x.shape))
    fail("mulRows", `s ${formatShape(s.shape)} must be a leading prefix of x ${formatShape(x.shape)}`)
  return x.shape
}

/** Tensors of one shape, all f32 (or, with `floating`, all of the first one's dtype, f32 or bf16). */
export const sameAs = (op: string, names: ReadonlyArray<string>, tensors: ReadonlyArray<Tensor>, floating = false): Shape => {
  const first = tensors[0] as Tensor
  if (floating) expectFloating(op, names[0] as string, first)
  tensors.forEach((t, i) => {
    expectDtype(op, names[i] as string, t, floating ? first.dtype : "f32")
    expectShape(op, names[i] as string, t, first.shape)
  })
  return first.shape
}

export const prefix = (op: string, x: Tensor, prefixRank: number): Shape => {
  expectInteger(op, "prefixRank", prefixRank, 0, x.shape.length)
  return x.shape.slice(0, prefixRank)
}

/** y in `dtype`: x's, or bf16 from an f32 x (a bf16 branch's input). */
export const layerNorm = (x: Tensor, weight: Tensor | undefined, bias: Tensor | undefined, eps: number, dtype: DType = x.dtype) => {
  const op = "layerNorm"
  expectFloating(op, "x", x)
  if (x.shape.length < 1) fail(op, "x must have rank >= 1")
  const dim = x.shape[x.shape.length - 1] as number
  if (weight !== undefined) {
    expectDtype(op, "weight", weight, x.dtype)
    expectShape(op, "weight", weight, [dim])
  }
  if (bias !== undefined) {
    expectDtype(op, "bias", bias, x.dtype)
    expectShape(op, "bias", bias, [dim])
  }
  expectFinite(op, "eps", eps)
  if (eps <= 0) invalid(op, `eps must be > 0, got ${eps}`)
  expectOutputDtype(op, dtype, x)
  return { y: x.shape, stats: x.shape.slice(0, -1), rows: numelOf(x.shape.slice(0, -1)), dim }
}

/** x [B, L, D] with per-sample vectors [B, D] of x's dtype. */
export const perSample = (op: string, x: Tensor, names: ReadonlyArray<string>, vectors: ReadonlyArray<Tensor>) => {
  expectFloating(op, "x", x)
  expectRank(op, "x", x, 3)
  const [batch, tokens, dim] = x.shape as [number, number, number]
  for (let i = 0; i < vectors.length; i++) {
    const v = vectors[i] as Tensor
    expectDtype(op, names[i] as string, v, x.dtype)
    expectShape(op, names[i] as string, v, [batch, dim])
  }
  return { batch, tokens, dim }
}

/**
 * adaLN's fused LayerNorm + modulation: x [B, L, D], shift and scale [B, D] of x's dtype; stats [B, L]; y in
 * `dtype`, x's or bf16 from an f32 x.
 */
export const layerNormModulate = (x: Tensor, shift: Tensor, scale: Tensor, eps: number, dtype: DType = x.dtype) => {
  const op = "layerNormModulate"
  const sizes = perSample(op, x, ["shift", "scale"], [shift, scale])
  if (sizes.dim === 0) fail(op, `x must have a last dimension > 0, got ${formatShape(x.shape)}`)
  expectFinite(op, "eps", eps)
  if (eps <= 0) invalid(op, `eps must be > 0, got ${eps}`)
  expectOutputDtype(op, dtype, x)
  return { ...sizes, stats: [sizes.batch, sizes.tokens] as Shape }
}

/** q [B, Lq, H, D], k and v [B, Lk, H, D]; or, with `heads`, [B, L, H·D] each. */
export const attention = (q: Tensor, k: Tensor, v: Tensor, keyMask: Tensor | undefined, scale: number | undefined, headsOption?: number) => {
  const op = "attention"
  expectFloating(op, "q", q)
  const rank = headsOption === undefined ? 4 : 3
  for (const [name, t] of [["q", q], ["k", k], ["v", v]] as const) {
    expectDtype(op, name, t, q.dtype)
    expectRank(op, name, t, rank)
  }
  if (headsOption !== undefined) {
    const width = q.shape[2] as number
    expectInteger(op, "heads", headsOption, 1, Math.max(1, width))
    if (width % headsOption !== 0) fail(op, `q ${formatShape(q.shape)}'s last dimension is not a multiple of heads ${headsOption}`)
  }
  const [batch, lq] = q.shape as [number, number]
  const lk = k.shape[1] as number
  const heads = headsOption ?? (q.shape[2] as number)
  const headDim = headsOption === undefined ? (q.shape[3] as number) : (q.shape[2] as number) / headsOption
  const kvShape = headsOption === undefined ? [batch, lk, heads, headDim] : [batch, lk, heads * headDim]
  expectShape(op, "k", k, kvShape)
  expectShape(op, "v", v, kvShape)
  if (keyMask !== undefined) {
    expectDtype(op, "keyMask", keyMask, "i32")
    expectShape(op, "keyMask", keyMask, [batch, lk])
  }
  if (scale !== undefined) expectFinite(op, "scale", scale)
  return {
    batch,
    lq,
    lk,
    heads,
    headDim,
    scale: scale ?? 1 / Math.sqrt(Math.max(1, headDim)),
    out: q.shape,
    lse: [batch, heads, lq] as Shape
  }
}

export const matmul = (a: Tensor, b: Tensor, transA: boolean, transB: boolean) => {
  const op = "matmul"
  expectFloating(op, "a", a)
  expectDtype(op, "b", b, a.dtype)
  if (a.shape.length < 2) fail(op, `a must have rank >= 2, got ${formatShape(a.shape)}`)
  if (b.shape.length < 2) fail(op, `b must have rank >= 2, got ${formatShape(b.shape)}`)
  const batchShape = a.shape.slice(0, -2)
  const [a0, a1] = a.shape.slice(-2) as [number, number]
  const [b0, b1] = b.shape.slice(-2) as [number, number]
  const [m, k] = transA ? [a1, a0] : [a0, a1]
  const [kb, n] = transB ? [b1, b0] : [b0, b1]
  if (k !== kb) fail(op, `inner dimensions differ: a ${formatShape(a.shape)} gives ${k}, b ${formatShape(b.shape)} gives ${kb}`)
  const sharedB = b.shape.length === 2
  if (!sharedB && !sameShape(b.shape.slice(0, -2), batchShape))
    fail(op, `b's batch dimensions ${formatShape(b.shape.slice(0, -2))} must equal a's ${formatShape(batchShape)} (or b must be rank 2)`)
  return { batch: numelOf(batchShape), m, n, k, sharedB, out: [...batchShape, m, n] as Shape }
}

/** x [..., In] and weight [Out, In] of linear (or linearGelu, named by `op`). */
export const linear = (x: Tensor, weight: Tensor, bias: Tensor | undefined, op = "linear") => {
  expectFloating(op, "x", x)
  expectDtype(op, "weight", weight, x.dtype)
  expectRank(op, "weight", weight, 2)
  if (x.shape.length < 1) fail(op, "x must have rank >= 1")
  const [outFeatures, inFeatures] = weight.shape as [number, number]
  if (x.shape[x.shape.length - 1] !== inFeatures)
    fail(op, `x ${formatShape(x.shape)} must end in ${inFeatures} (weight ${formatShape(weight.shape)} is [out, in])`)
  if (bias !== undefined) {
    expectDtype(op, "bias", bias, x.dtype)
    expectShape(op, "bias", bias, [outFeatures])
  }
  const out = [...x.shape]
  out[out.length - 1] = outFeatures
  let rows = 1
  for (let i = 0; i < x.shape.length - 1; i++) rows *= x.shape[i] as number
  return { rows, inFeatures, outFeatures, out: out as Shape }
}

/** dy [..., Out], x [..., In] (the same leading dimensions) and weight [Out, In] of linearBackward. */
export const linearBackward = (dy: Tensor, x: Tensor, weight: Tensor) => {
  const op = "linearBackward"
  const s = linear(x, weight, undefined, op)
  expectDtype(op, "dy", dy, x.dtype)
  expectShape(op, "dy", dy, s.out)
  return s
}

export const patchify = (x: Tensor, patch: number) => {
  const op = "patchify"
  expectDtype(op, "x", x)
  expectRank(op, "x", x, 4)
  expectInteger(op, "patch", patch, 1, 1 << 16)
  const [batch, channels, height, width] = x.shape as [number, number, number, number]
  if (height % patch !== 0 || width % patch !== 0) fail(op, `image ${height}x${width} is not divisible by patch ${patch}`)
  const geometry = { channels, height, width, patch }
  return { batch, ...geometry, out: [batch, (height / patch) * (width / patch), patch * patch * channels] as Shape }
}

export const unpatchify = (tokens: Tensor, image: ImageGeometry) => {
  const op = "unpatchify"
  expectDtype(op, "tokens", tokens)
  expectRank(op, "tokens", tokens, 3)
  const { channels, height, width, patch } = image
  expectInteger(op, "patch", patch, 1, 1 << 16)
  expectInteger(op, "channels", channels, 1, MAX_DIM)
  expectInteger(op, "height", height, 1, MAX_DIM)
  expectInteger(op, "width", width, 1, MAX_DIM)
  if (height % patch !== 0 || width % patch !== 0) fail(op, `image ${height}x${width} is not divisible by patch ${patch}`)
  const batch = tokens.shape[0] as number
  expectShape(op, "tokens", tokens, [batch, (height / patch) * (width / patch), patch * patch * channels])
  return { batch, out: [batch, channels, height, width] as Shape }
}

const expectAxis = (op: string, x: Tensor, axis: number) => expectInteger(op, "axis", axis, 0, Math.max(0, x.shape.length - 1))

/** Views a shape as [outer, axis, inner]. */
export const aroundAxis = (shape: Shape, axis: number) => ({
  outer: numelOf(shape.slice(0, axis)),
  axisLength: shape[axis] as number,
  inner: numelOf(shape.slice(axis + 1))
})

export const concat = (tensors: ReadonlyArray<Tensor>, axis: number) => {
  const op = "concat"
  if (!Array.isArray(tensors) || tensors.length === 0) invalid(op, "tensors must be a non-empty array")
  const first = tensors[0] as Tensor
  if (first.shape.length === 0) fail(op, "cannot concatenate scalars")
  expectAxis(op, first, axis)
  let total = 0
  tensors.forEach((t, i) => {
    if (t.dtype !== first.dtype) throw new DTypeError({ op, reason: `tensors[${i}] is ${t.dtype}, tensors[0] is ${first.dtype}` })
    const same = t.shape.length === first.shape.length && t.shape.every((d, j) => j === axis || d === first.shape[j])
    if (!same) fail(op, `tensors[${i}] ${formatShape(t.shape)} must match tensors[0] ${formatShape(first.shape)} except on axis ${axis}`)
    total += t.shape[axis] as number
  })
  return first.shape.map((d, j) => (j === axis ? total : d)) as Shape
}

export const narrow = (x: Tensor, axis: number, start: number, length: number) => {
  const op = "narrow"
  if (x.shape.length === 0) fail(op, "cannot narrow a scalar")
  expectAxis(op, x, axis)
  const size = x.shape[axis] as number
  expectInteger(op, "start", start, 0, size)
  expectInteger(op, "length", length, 0, size - start)
  return x.shape.map((d, j) => (j === axis ? length : d)) as Shape
}

/** The part shape of split: x's axis divided by count. */
export const split = (x: Tensor, axis: number, count: number) => {
  const op = "split"
  if (x.shape.length === 0) fail(op, "cannot split a scalar")
  expectAxis(op, x, axis)
  const size = x.shape[axis] as number
  expectInteger(op, "count", count, 1, Math.max(1, size))
  if (size % count !== 0) fail(op, `x ${formatShape(x.shape)} has ${size} along axis ${axis}, not a multiple of count ${count}`)
  return x.shape.map((d, j) => (j === axis ? size / count : d)) as Shape
}

export const pad = (x: Tensor, axis: number, before: number, after: number) => {
  const op = "pad"
  if (x.shape.length === 0) fail(op, "cannot pad a scalar")
  expectAxis(op, x, axis)
  expectInteger(op, "before", before, 0, MAX_DIM)
  expectInteger(op, "after", after, 0, MAX_DIM)
  return x.shape.map((d, j) => (j === axis ? d + before + after : d)) as Shape
}

export const embedding = (table: Tensor, ids: Tensor) => {
  const op = "embedding"
  expectDtype(op, "table", table)
  expectRank(op, "table", table, 2)
  expectDtype(op, "ids", ids, "i32")
  const [vocab, dim] = table.shape as [number, number]
  return { vocab, dim, count: ids.numel, out: [...ids.shape, dim] as Shape }
}

export const embeddingBackward = (dout: Tensor, ids: Tensor, vocab: number) => {
  const op = "embeddingBackward"
  expectDtype(op, "dout", dout)
  expectDtype(op, "ids", ids, "i32")
  expectInteger(op, "vocab", vocab, 1, MAX_DIM)
  if (dout.shape.length !== ids.shape.length + 1 || !isPrefix(ids.shape, dout.shape))
    fail(op, `dout ${formatShape(dout.shape)} must be ids' shape ${formatShape(ids.shape)} plus the embedding dim`)
  const dim = dout.shape[dout.shape.length - 1] as number
  return { count: ids.numel, dim, out: [vocab, dim] as Shape }
}

export const timestepEmbedding = (t: Tensor, dim: number, maxPeriod: number) => {
  const op = "timestepEmbedding"
  expectDtype(op, "t", t)
  expectRank(op, "t", t, 1)
  expectInteger(op, "dim", dim, 1, 1 << 20)
  expectFinite(op, "maxPeriod", maxPeriod)
  if (maxPeriod <= 0) invalid(op, `maxPeriod must be > 0, got ${maxPeriod}`)
  return [t.shape[0] as number, dim] as Shape
}

export const sumAxis = (x: Tensor, axis: number) => {
  expectFloating("sumAxis", "x", x)
  if (x.shape.length === 0) fail("sumAxis", "x must have rank >= 1")
  expectAxis("sumAxis", x, axis)
  return { ...aroundAxis(x.shape, axis), out: x.shape.filter((_, j) => j !== axis) as Shape }
}

/** Score ops: all [rows, ...] of one shape; per-row vectors [rows]. */
export const rowsOf = (op: string, x: Tensor) => {
  if (x.shape.length < 1) fail(op, "tensors must have a leading rows dimension")
  const rows = x.shape[0] as number
  return { rows, cols: rows === 0 ? 0 : x.numel / rows }
}

export const perRow = (op: string, name: string, v: Tensor, rows: number) => {
  expectDtype(op, name, v)
  expectShape(op, name, v, [rows])
}

const dtypes: ReadonlyArray<DType> = ["f32", "i32", "bf16"]

/** A dtype name (whether the backend can store it is the backend's check). */
export const expectDtypeName = (op: string, name: string, dtype: DType) => {
  if (!dtypes.includes(dtype)) invalid(op, `${name} must be "f32", "i32" or "bf16", got ${String(dtype)}`)
}

export const randomStream = (op: string, seed: number, offset: number) => {
  expectInteger(op, "seed", seed, 0, Number.MAX_SAFE_INTEGER)
  expectInteger(op, "offset", offset, 0, Number.MAX_SAFE_INTEGER)
}

/** Lists of tensors for the optimizer: equal lengths, matching f32 shapes, no parameter listed twice. */
export const tensorLists = (op: string, lists: ReadonlyArray<readonly [string, ReadonlyArray<Tensor>]>) => {
  const [firstName, first] = lists[0] as readonly [string, ReadonlyArray<Tensor>]
  for (const [name, list] of lists) {
    if (!Array.isArray(list)) invalid(op, `${name} must be an array of tensors`)
    if (list.length !== first.length) invalid(op, `${name} has ${list.length} tensors, ${firstName} has ${first.length}`)
  }
  const seen = new Set<Tensor>()
  for (let i = 0; i < first.length; i++) {
    const p = first[i] as Tensor
    if (seen.has(p)) invalid(op, `${firstName}[${i}] appears twice`)
    seen.add(p)
    for (const [name, list] of lists) {
      const t = list[i] as Tensor
      // The element's name is built only for the error: an optimizer step checks about a thousand tensors.
      if (t.dtype !== "f32" || !sameShape(t.shape, p.shape)) {
        expectDtype(op, `${name}[${i}]`, t)
        expectShape(op, `${name}[${i}]`, t, p.shape)
      }
    }
  }
}
