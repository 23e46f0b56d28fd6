import { type DType, type Shape, dtypeBytes, formatShape, numelOf } from "../../tensor/dtype.ts"
import { Tensor, type TensorOwner } from "../../tensor/Tensor.ts"
import { DisposedTensorError, InvalidArgumentError, OutOfMemoryError } from "../errors.ts"
import type * as Ops from "../ops.ts"
import * as S from "../shapes.ts"
import * as Activation from "./activation.ts"
import * as AdaLN from "./adaln.ts"
import * as Attention from "./attention.ts"
import * as Elementwise from "./elementwise.ts"
import * as Embedding from "./embedding.ts"
import * as LayerNorm from "./layernorm.ts"
import * as Layout from "./layout.ts"
import * as Matmul from "./matmul.ts"
import * as Optim from "./optim.ts"
import * as Random from "./random.ts"
import * as Reduce from "./reduce.ts"
import * as Score from "./score.ts"
import { roundArrayToBf16 } from "./bf16.ts"
import { type Floats, MemoryLedger, ReferenceHandle, Storage, type Words } from "./storage.ts"
import * as V from "./validation.ts"

export interface ReferenceOptions {
  /**
   * "f32": f32 tensors live in Float32Array, every output rounded like the native backend's; "f64": in
   * Float64Array, for float64 gradchecks. Either way every sum, dot and norm accumulates in double.
   */
  readonly precision: "f32" | "f64"
  /**
   * Also store bf16 tensors as the CUDA backend does (default false, like the native CPU backend): values
   * rounded to nearest even after every write, so mixed-precision programs run and are tested on the CPU.
   */
  readonly storesBf16?: boolean
}

/** A live tensor's elements (its dtype already checked by the op). */
const words = (t: Tensor): Words => (t.handle as ReferenceHandle).storage.data
const floats = (t: Tensor): Floats => (t.handle as ReferenceHandle).storage.data as Floats
const ints = (t: Tensor): Int32Array => (t.handle as ReferenceHandle).storage.data as Int32Array
const optionalFloats = (t: Tensor | undefined): Floats | undefined => (t === undefined ? undefined : floats(t))

/** f32 to i32 as the native backends convert: toward zero, saturating at the i32 range, NaN to 0. */
/** An op's output in its storage type: bf16 outputs are rounded (the math already ran in f32 or f64). */
const stored = (t: Tensor): Tensor => {
  if (t.dtype === "bf16") roundArrayToBf16(floats(t) as Float32Array)
  return t
}

/** out += base elementwise, where a gradient has a base (ops.ts GradientBases). */
const addBase = (out: Floats, base: Tensor | undefined) => {
  if (base === undefined) return
  const b = floats(base)
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + (b[i] as number)
}

const truncateToInt32 = (value: number): number =>
  Number.isNaN(value) ? 0 : value >= 2147483648 ? 2147483647 : value <= -2147483648 ? -2147483648 : Math.trunc(value)

/**
 * The pure TypeScript backend: the numerical oracle native kernels are tested against, the backend gradchecks
 * run on (precision "f64"), and the kernels pipeline tests run on. Each op validates exactly as NativeBackend
 * does (shapes.ts, then the addon's own checks, in the same order), then computes at once; reads resolve
 * with a copy.
 */
export class ReferenceBackend implements Ops.Backend, TensorOwner {
  readonly name = "reference" as const
  readonly device = "reference"
  readonly precision: "f32" | "f64"
  readonly storesBf16: boolean
  readonly #ledger = new MemoryLedger()
  readonly #live = new Set<ReferenceHandle>()
  #disposed = false

  constructor(options: ReferenceOptions = { precision: "f32" }) {
    if (options.precision !== "f32" && options.precision !== "f64")
      throw new InvalidArgumentError({ op: "ReferenceBackend", reason: `precision must be "f32" or "f64", got ${String(options.precision)}` })
    this.precision = options.precision
    this.storesBf16 = options.storesBf16 ?? false
  }

  releaseHandle(handle: unknown): void {
    const h = handle as ReferenceHandle
    if (this.#disposed || !h.live) return
    h.live = false
    this.#live.delete(h)
    this.#ledger.tensorReleased(h.storage)
  }

  releaseHandles(handles: ReadonlyArray<unknown>): void {
    for (const handle of handles) this.releaseHandle(handle)
  }

  /** Checks an argument is a live tensor of this backend. */
  #check(op: string, name: string, t: Tensor): void {
    if (!(t instanceof Tensor)) throw new InvalidArgumentError({ op, reason: `${name} must be a Tensor` })
    if (t.owner !== this) throw new InvalidArgumentError({ op, reason: `${name} (${t}) lives on ${t.device}, not on this ${this.device} device` })
    if (this.#disposed) throw new DisposedTensorError({ op, reason: "the device was disposed" })
    if (t.released) throw new DisposedTensorError({ op, reason: `${name} (${t}) was released` })
  }

  #checkOptional(op: string, name: string, t: Tensor | undefined): void {
    if (t !== undefined) this.#check(op, name, t)
  }

  #checkList(op: string, name: string, ts: ReadonlyArray<Tensor>): void {
    ts.forEach((t, i) => this.#check(op, `${name}[${i}]`, t))
  }

  #handle(storage: Storage, shape: Shape, dtype: DType): Tensor {
    const handle = new ReferenceHandle(storage)
    this.#live.add(handle)
    this.#ledger.tensorCreated()
    return new Tensor(handle, shape, dtype, this)
  }

  /** A new zero-filled tensor. */
  #alloc(op: string, shape: Shape, dtype: DType = "f32"): Tensor {
    V.expectStorableDtype(op, dtype, this.storesBf16)
    if (this.#disposed) throw new DisposedTensorError({ op, reason: "the device was disposed" })
    const n = numelOf(shape)
    const storage = new Storage(this.#array(op, n, dtype, shape), dtype, n * dtypeBytes[dtype])
    this.#ledger.allocated(storage)
    return this.#handle(storage, shape, dtype)
  }

  /** Zeroed elements; a size the engine cannot allocate is the device running out of memory. */
  #array(op: string, n: number, dtype: DType, shape: Shape): Words {
    try {
      if (dtype === "i32") return new Int32Array(n)
      return this.precision === "f64" && dtype === "f32" ? new Float64Array(n) : new Float32Array(n)
    } catch (cause) {
      if (!(cause instanceof RangeError)) throw cause
      throw new OutOfMemoryError({ op, reason: `cannot allocate ${n} ${dtype} elements for ${formatShape(shape)}` })
    }
  }

  /** A new tensor of `shape` (f32, or `dtype` for the ops that keep their inputs' bf16) filled by `kernel`. */
  #compute(op: string, shape: Shape, kernel: (out: Floats) => void, dtype: DType = "f32"): Tensor {
    const out = this.#alloc(op, shape, dtype)
    kernel(floats(out))
    return stored(out)
  }

  /** A gradient's base (ops.ts GradientBases) when given, checked: live, here, the gradient's shape and dtype. */
  #base(op: string, name: string, base: Tensor | undefined, shape: Shape, dtype: DType): Tensor | undefined {
    if (base === undefined) return undefined
    this.#check(op, name, base)
    S.expectBase(op, name, base, shape, dtype)
    return base
  }

  read(x: Tensor): Promise<Float32Array | Float64Array | Int32Array> {
    this.#check("read", "x", x)
    return Promise.resolve(words(x).slice())
  }

  sync(): Promise<void> {
    return Promise.resolve()
  }

  stats(): Ops.MemoryStats {
    if (this.#disposed) return { liveTensors: 0, liveBytes: 0, cachedBytes: 0, peakBytes: 0, systemAllocs: 0 }
    return this.#ledger.stats()
  }

  streamTimes(): undefined {
    return undefined
  }

  dispose(): void {
    if (this.#disposed) return
    this.#disposed = true
    for (const handle of this.#live) handle.live = false
    this.#live.clear()
  }

  // ---- creation and movement ----
  fromArray(data: ArrayLike<number>, shape: Shape, dtype: DType = "f32"): Tensor {
    const s = S.checkShape("fromArray", shape)
    V.expectHostData("fromArray", data, dtype, s, this.storesBf16)
    const out = this.#alloc("fromArray", s, dtype)
    words(out).set(data)
    return stored(out)
  }
  empty(shape: Shape, dtype: DType = "f32"): Tensor {
    const out = this.#alloc("empty", S.checkShape("empty", shape), dtype)
    // Uninitialised floats read as NaN, so an op that forgets to write its output fails loudly.
    if (dtype !== "i32") floats(out).fill(Number.NaN)
    return out
  }
  full(shape: Shape, value: number, dtype: DType = "f32"): Tensor {
    const s = S.checkShape("full", shape)
    S.expectFinite("full", "value", value)
    V.expectFillValue("full", value, dtype)
    const out = this.#alloc("full", s, dtype)
    words(out).fill(value)
    return stored(out)
  }
  zeros(shape: Shape, dtype: DType = "f32"): Tensor {
    return this.full(shape, 0, dtype)
  }
  write(x: Tensor, data: ArrayLike<number>): void {
    this.#check("write", "x", x)
    V.expectHostData("write", data, x.dtype, x.shape, this.storesBf16)
    words(x).set(data)
    stored(x)
  }
  view(x: Tensor, shape: Shape): Tensor {
    const s = S.checkShape("view", shape)
    this.#check("view", "x", x)
    V.expectSameNumel("view", x.shape, s)
    const storage = (x.handle as ReferenceHandle).storage
    storage.refs++
    return this.#handle(storage, s, x.dtype)
  }
  copy(x: Tensor): Tensor {
    this.#check("copy", "x", x)
    const out = this.#alloc("copy", x.shape, x.dtype)
    words(out).set(words(x))
    return out
  }
  assign(dst: Tensor, src: Tensor): void {
    this.#check("assign", "dst", dst)
    this.#check("assign", "src", src)
    S.expectDtype("assign", "src", src, dst.dtype)
    S.expectShape("assign", "src", src, dst.shape)
    words(dst).set(words(src))
  }

  castAll(xs: ReadonlyArray<Tensor>, dtype: DType): ReadonlyArray<Tensor> {
    S.castAll(xs, dtype)
    xs.forEach((x, i) => this.#check("castAll", `xs[${i}]`, x))
    return xs.map((x) => this.cast(x, dtype))
  }
  cast(x: Tensor, dtype: DType): Tensor {
    this.#check("cast", "x", x)
    S.expectDtypeName("cast", "dtype", dtype)
    const out = this.#alloc("cast", x.shape, dtype)
    const from = words(x)
    const to = words(out)
    if (dtype === "i32" && x.dtype !== "i32") for (let i = 0; i < from.length; i++) to[i] = truncateToInt32(from[i] as number)
    else to.set(from)
    return stored(out)
  }

  // ---- elementwise ----
  #binary(op: Elementwise.BinaryOp, a: Tensor, b: Tensor): Tensor {
    this.#check(op, "a", a)
    this.#check(op, "b", b)
    const shape = S.binary(op, a, b, op === "add")
    return this.#compute(op, shape, (out) => Elementwise.binaryTrailing(out, floats(a), floats(b), op), a.dtype)
  }
  add(a: Tensor, b: Tensor): Tensor {
    return this.#binary("add", a, b)
  }
  sub(a: Tensor, b: Tensor): Tensor {
    return this.#binary("sub", a, b)
  }
  mul(a: Tensor, b: Tensor): Tensor {
    return this.#binary("mul", a, b)
  }
  mulRows(x: Tensor, s: Tensor): Tensor {
    this.#check("mulRows", "x", x)
    this.#check("mulRows", "s", s)
    const shape = S.mulRows(x, s)
    return this.#compute("mulRows", shape, (out) => Elementwise.mulRows(out, floats(x), floats(s)), x.dtype)
  }
  affine(x: Tensor, alpha: number, beta: number): Tensor {
    return this.#affine("affine", x, alpha, beta)
  }
  scale(x: Tensor, alpha: number): Tensor {
    return this.#affine("scale", x, alpha, 0)
  }
  #affine(op: string, x: Tensor, alpha: number, beta: number): Tensor {
    S.expectFloating(op, "x", x)
    this.#check(op, "x", x)
    S.expectFinite(op, "alpha", alpha)
    S.expectFinite(op, "beta", beta)
    return this.#compute(op, x.shape, (out) => Elementwise.affine(out, floats(x), alpha, beta), x.dtype)
  }
  axpy(alpha: number, x: Tensor, y: Tensor): Tensor {
    const shape = S.sameAs("axpy", ["x", "y"], [x, y], true)
    this.#check("axpy", "x", x)
    this.#check("axpy", "y", y)
    S.expectFinite("axpy", "alpha", alpha)
    return this.#compute("axpy", shape, (out) => Elementwise.axpy(out, alpha, floats(x), floats(y)), x.dtype)
  }
  rowDot(a: Tensor, b: Tensor, prefixRank: number): Tensor {
    S.sameAs("rowDot", ["a", "b"], [a, b])
    const shape = S.prefix("rowDot", a, prefixRank)
    this.#check("rowDot", "a", a)
    this.#check("rowDot", "b", b)
    return this.#compute("rowDot", shape, (out) => Elementwise.rowDot(out, floats(a), floats(b)))
  }

  // ---- activations ----
  #activation(op: string, x: Tensor, kernel: (out: Floats, x: Floats) => void): Tensor {
    S.expectFloating(op, "x", x)
    this.#check(op, "x", x)
    return this.#compute(op, x.shape, (out) => kernel(out, floats(x)), x.dtype)
  }
  #activationBackward(op: string, dy: Tensor, x: Tensor, kernel: (dx: Floats, dy: Floats, x: Floats) => void): Tensor {
    const shape = S.sameAs(op, ["dy", "x"], [dy, x], true)
    this.#check(op, "dy", dy)
    this.#check(op, "x", x)
    return this.#compute(op, shape, (dx) => kernel(dx, floats(dy), floats(x)), x.dtype)
  }
  gelu(x: Tensor): Tensor {
    return this.#activation("gelu", x, Activation.gelu)
  }
  geluBackward(dy: Tensor, x: Tensor): Tensor {
    return this.#activationBackward("geluBackward", dy, x, Activation.geluBackward)
  }
  silu(x: Tensor): Tensor {
    return this.#activation("silu", x, Activation.silu)
  }
  siluBackward(dy: Tensor, x: Tensor): Tensor {
    return this.#activationBackward("siluBackward", dy, x, Activation.siluBackward)
  }

  // ---- normalisation and adaLN ----
  layerNorm(x: Tensor, options: Ops.LayerNormOptions): Ops.LayerNormResult {
    const op = "layerNorm"
    const dtype = options.dtype ?? x.dtype
    const s = S.layerNorm(x, options.weight, options.bias, options.eps, dtype)
    this.#check(op, "x", x)
    this.#checkOptional(op, "weight", options.weight)
    this.#checkOptional(op, "bias", options.bias)
    V.expectNormalisable(op, x)
    const y = this.#alloc(op, s.y, dtype)
    const mean = this.#alloc(op, s.stats)
    const rstd = this.#alloc(op, s.stats)
    LayerNorm.layerNormForward(floats(y), floats(mean), floats(rstd), floats(x), optionalFloats(options.weight), optionalFloats(options.bias), s.dim, options.eps)
    return { y: stored(y), mean, rstd }
  }
  layerNormBackward(dy: Tensor, x: Tensor, saved: Ops.LayerNormSaved, options: Ops.LayerNormBackwardOptions): Ops.LayerNormGrads {
    const op = "layerNormBackward"
    const s = S.layerNorm(x, options.weight, undefined, 1)
    S.expectShape(op, "dy", dy, x.shape)
    S.expectShape(op, "mean", saved.mean, s.stats)
    S.expectShape(op, "rstd", saved.rstd, s.stats)
    this.#check(op, "dy", dy)
    this.#check(op, "x", x)
    this.#check(op, "mean", saved.mean)
    this.#check(op, "rstd", saved.rstd)
    this.#checkOptional(op, "weight", options.weight)
    V.expectNormalisable(op, x)
    S.expectDtypeOrBf16(op, "dy", dy, x.dtype)
    S.expectDtype(op, "mean", saved.mean)
    S.expectDtype(op, "rstd", saved.rstd)
    V.expectFlag(op, "withBias", options.withBias)
    const base = this.#base(op, "addTo.dx", options.addTo?.dx, x.shape, x.dtype)
    const dx = this.#alloc(op, x.shape, x.dtype)
    const dweight = options.weight === undefined ? undefined : this.#alloc(op, [s.dim], x.dtype)
    const dbias = options.withBias ? this.#alloc(op, [s.dim], x.dtype) : undefined
    LayerNorm.layerNormBackward(floats(dx), optionalFloats(dweight), optionalFloats(dbias), floats(dy), floats(x), floats(saved.mean), floats(saved.rstd), optionalFloats(options.weight), s.dim)
    addBase(floats(dx), base)
    return { dx: stored(dx), dweight: dweight && stored(dweight), dbias: dbias && stored(dbias) }
  }
  modulate(x: Tensor, shift: Tensor, scale: Tensor): Tensor {
    const op = "modulate"
    const sizes = S.perSample(op, x, ["shift", "scale"], [shift, scale])
    this.#check(op, "x", x)
    this.#check(op, "shift", shift)
    this.#check(op, "scale", scale)
    return this.#compute(op, x.shape, (y) => AdaLN.modulate(y, floats(x), floats(shift), floats(scale), sizes), x.dtype)
  }
  modulateBackward(dy: Tensor, x: Tensor, scale: Tensor): Ops.ModulateGrads {
    const op = "modulateBackward"
    const sizes = S.perSample(op, x, ["scale"], [scale])
    S.expectShape(op, "dy", dy, x.shape)
    this.#check(op, "dy", dy)
    this.#check(op, "x", x)
    this.#check(op, "scale", scale)
    S.expectDtype(op, "dy", dy, x.dtype)
    const dx = this.#alloc(op, x.shape, x.dtype)
    const dshift = this.#alloc(op, [sizes.batch, sizes.dim], x.dtype)
    const dscale = this.#alloc(op, [sizes.batch, sizes.dim], x.dtype)
    AdaLN.modulateBackward(floats(dx), floats(dshift), floats(dscale), floats(dy), floats(x), floats(scale), sizes)
    return { dx: stored(dx), dshift: stored(dshift), dscale: stored(dscale) }
  }
  layerNormModulate(x: Tensor, shift: Tensor, scale: Tensor, eps: number, dtype: DType = x.dtype): Ops.LayerNormResult {
    const op = "layerNormModulate"
    const s = S.layerNormModulate(x, shift, scale, eps, dtype)
    this.#check(op, "x", x)
    this.#check(op, "shift", shift)
    this.#check(op, "scale", scale)
    const y = this.#alloc(op, x.shape, dtype)
    const mean = this.#alloc(op, s.stats)
    const rstd = this.#alloc(op, s.stats)
    AdaLN.layerNormModulate(floats(y), floats(mean), floats(rstd), floats(x), floats(shift), floats(scale), eps, s)
    return { y: stored(y), mean, rstd }
  }
  layerNormModulateBackward(dy: Tensor, x: Tensor, saved: Ops.LayerNormSaved, scale: Tensor, addTo?: Ops.GradientBases<"dx">): Ops.ModulateGrads {
    const op = "layerNormModulateBackward"
    const sizes = S.perSample(op, x, ["scale"], [scale])
    S.expectShape(op, "dy", dy, x.shape)
    S.expectShape(op, "mean", saved.mean, [sizes.batch, sizes.tokens])
    S.expectShape(op, "rstd", saved.rstd, [sizes.batch, sizes.tokens])
    this.#check(op, "dy", dy)
    this.#check(op, "x", x)
    this.#check(op, "mean", saved.mean)
    this.#check(op, "rstd", saved.rstd)
    this.#check(op, "scale", scale)
    V.expectNormalisable(op, x)
    S.expectDtypeOrBf16(op, "dy", dy, x.dtype)
    S.expectDtype(op, "mean", saved.mean)
    S.expectDtype(op, "rstd", saved.rstd)
    const base = this.#base(op, "addTo.dx", addTo?.dx, x.shape, x.dtype)
    const dx = this.#alloc(op, x.shape, x.dtype)
    const dshift = this.#alloc(op, [sizes.batch, sizes.dim], x.dtype)
    const dscale = this.#alloc(op, [sizes.batch, sizes.dim], x.dtype)
    AdaLN.layerNormModulateBackward(floats(dx), floats(dshift), floats(dscale), floats(dy), floats(x), floats(saved.mean), floats(saved.rstd), floats(scale), sizes)
    addBase(floats(dx), base)
    return { dx: stored(dx), dshift: stored(dshift), dscale: stored(dscale) }
  }
  gatedResidual(x: Tensor, gate: Tensor, branch: Tensor): Tensor {
    const op = "gatedResidual"
    const sizes = S.perSample(op, x, ["gate"], [gate])
    S.expectShape(op, "branch", branch, x.shape)
    this.#check(op, "x", x)
    this.#check(op, "gate", gate)
    this.#check(op, "branch", branch)
    S.expectDtypeOrBf16(op, "branch", branch, x.dtype)
    return this.#compute(op, x.shape, (out) => AdaLN.gatedResidual(out, floats(x), floats(gate), floats(branch), sizes), x.dtype)
  }
  gatedResidualBackward(dout: Tensor, gate: Tensor, branch: Tensor): Ops.GatedResidualGrads {
    const op = "gatedResidualBackward"
    const sizes = S.perSample(op, dout, ["gate"], [gate])
    S.expectShape(op, "branch", branch, dout.shape)
    this.#check(op, "dout", dout)
    this.#check(op, "gate", gate)
    this.#check(op, "branch", branch)
    S.expectDtypeOrBf16(op, "branch", branch, dout.dtype)
    const dgate = this.#alloc(op, [sizes.batch, sizes.dim], dout.dtype)
    const dbranch = this.#alloc(op, branch.shape, branch.dtype)
    AdaLN.gatedResidualBackward(floats(dgate), floats(dbranch), floats(dout), floats(gate), floats(branch), sizes)
    return { dgate: stored(dgate), dbranch: stored(dbranch) }
  }

  // ---- attention and matrix products ----
  attention(q: Tensor, k: Tensor, v: Tensor, options: Ops.AttentionOptions): Ops.AttentionResult {
    const op = "attention"
    const s = S.attention(q, k, v, options.keyMask, options.scale, options.heads)
    this.#check(op, "q", q)
    this.#check(op, "k", k)
    this.#check(op, "v", v)
    this.#checkOptional(op, "keyMask", options.keyMask)
    const out = this.#alloc(op, s.out, q.dtype)
    const lse = this.#alloc(op, s.lse)
    const mask = options.keyMask === undefined ? undefined : ints(options.keyMask)
    Attention.attentionForward(floats(out), floats(lse), floats(q), floats(k), floats(v), mask, s, s.scale)
    return { out: stored(out), lse }
  }
  attentionBackward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, saved: Ops.AttentionResult, options: Ops.AttentionOptions): Ops.AttentionGrads {
    const op = "attentionBackward"
    const s = S.attention(q, k, v, options.keyMask, options.scale, options.heads)
    S.expectShape(op, "dout", dout, s.out)
    S.expectShape(op, "out", saved.out, s.out)
    S.expectShape(op, "lse", saved.lse, s.lse)
    this.#check(op, "dout", dout)
    this.#check(op, "q", q)
    this.#check(op, "k", k)
    this.#check(op, "v", v)
    this.#check(op, "out", saved.out)
    this.#check(op, "lse", saved.lse)
    this.#checkOptional(op, "keyMask", options.keyMask)
    S.expectDtype(op, "dout", dout, q.dtype)
    S.expectDtype(op, "out", saved.out, q.dtype)
    S.expectDtype(op, "lse", saved.lse)
    const dq = this.#alloc(op, q.shape, q.dtype)
    const dk = this.#alloc(op, k.shape, q.dtype)
    const dv = this.#alloc(op, v.shape, q.dtype)
    const mask = options.keyMask === undefined ? undefined : ints(options.keyMask)
    Attention.attentionBackward(floats(dq), floats(dk), floats(dv), floats(dout), floats(q), floats(k), floats(v), floats(saved.out), floats(saved.lse), mask, s, s.scale)
    return { dq: stored(dq), dk: stored(dk), dv: stored(dv) }
  }
  matmul(a: Tensor, b: Tensor, options: Ops.MatmulOptions = {}): Tensor {
    const transA = options.transA ?? false
    const transB = options.transB ?? false
    const alpha = options.alpha ?? 1
    const s = S.matmul(a, b, transA, transB)
    this.#check("matmul", "a", a)
    this.#check("matmul", "b", b)
    V.expectFlag("matmul", "transA", transA)
    V.expectFlag("matmul", "transB", transB)
    S.expectFinite("matmul", "alpha", alpha)
    return this.#compute("matmul", s.out, (c) => Matmul.matmul(c, floats(a), floats(b), s, transA, transB, alpha), a.dtype)
  }
  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    const s = S.linear(x, weight, bias)
    this.#check("linear", "x", x)
    this.#check("linear", "weight", weight)
    this.#checkOptional("linear", "bias", bias)
    return this.#compute("linear", s.out, (y) => Matmul.linear(y, floats(x), floats(weight), optionalFloats(bias), s.rows, s.inFeatures, s.outFeatures), x.dtype)
  }
  linearGelu(x: Tensor, weight: Tensor, bias?: Tensor): Ops.LinearGeluResult {
    const op = "linearGelu"
    const s = S.linear(x, weight, bias, op)
    this.#check(op, "x", x)
    this.#check(op, "weight", weight)
    this.#checkOptional(op, "bias", bias)
    // GELU reads the stored pre-activation, as the native backends' second pass (or epilogue) does.
    const pre = this.#compute(op, s.out, (h) => Matmul.linear(h, floats(x), floats(weight), optionalFloats(bias), s.rows, s.inFeatures, s.outFeatures), x.dtype)
    return { y: this.#compute(op, s.out, (y) => Activation.gelu(y, floats(pre)), x.dtype), pre }
  }
  linearBackward(dy: Tensor, x: Tensor, weight: Tensor, options: Ops.LinearBackwardOptions): Ops.LinearGrads {
    const op = "linearBackward"
    const s = S.linearBackward(dy, x, weight)
    this.#check(op, "dy", dy)
    this.#check(op, "x", x)
    this.#check(op, "weight", weight)
    V.expectFlag(op, "dx", options.dx)
    V.expectFlag(op, "dweight", options.dweight)
    V.expectFlag(op, "dbias", options.dbias)
    const { rows, inFeatures, outFeatures } = s
    const bases = {
      dx: this.#base(op, "addTo.dx", options.addTo?.dx, x.shape, x.dtype),
      dweight: this.#base(op, "addTo.dweight", options.addTo?.dweight, weight.shape, x.dtype),
      dbias: this.#base(op, "addTo.dbias", options.addTo?.dbias, [outFeatures], x.dtype)
    }
    for (const name of ["dx", "dweight", "dbias"] as const)
      if (bases[name] !== undefined && !options[name]) throw new InvalidArgumentError({ op, reason: `addTo.${name} is given but ${name} is not asked for` })
    // The rows flattened: dx = dy [rows, out] W [out, in]; dweight = dy^T [out, rows] x [rows, in].
    const product = (m: number, n: number, k: number) => ({ batch: 1, m, n, k, sharedB: false })
    const dx = !options.dx
      ? undefined
      : this.#compute(op, x.shape, (out) => (Matmul.matmul(out, floats(dy), floats(weight), product(rows, inFeatures, outFeatures), false, false, 1), addBase(out, bases.dx)), x.dtype)
    const dweight = !options.dweight
      ? undefined
      : this.#compute(op, weight.shape, (out) => (Matmul.matmul(out, floats(dy), floats(x), product(outFeatures, inFeatures, rows), true, false, 1), addBase(out, bases.dweight)), x.dtype)
    const dbias = !options.dbias ? undefined : this.#compute(op, [outFeatures], (out) => (Reduce.sumAxis(out, floats(dy), 1, rows, outFeatures), addBase(out, bases.dbias)), x.dtype)
    return { dx, dweight, dbias }
  }

  // ---- layout ----
  patchify(x: Tensor, patch: number): Tensor {
    const s = S.patchify(x, patch)
    this.#check("patchify", "x", x)
    return this.#compute("patchify", s.out, (tokens) => Layout.patchify(tokens, floats(x), s))
  }
  unpatchify(tokens: Tensor, image: Ops.ImageGeometry): Tensor {
    const s = S.unpatchify(tokens, image)
    this.#check("unpatchify", "tokens", tokens)
    return this.#compute("unpatchify", s.out, (x) => Layout.unpatchify(x, floats(tokens), { ...image, batch: s.batch }))
  }
  concat(tensors: ReadonlyArray<Tensor>, axis: number): Tensor {
    const shape = S.concat(tensors, axis)
    this.#checkList("concat", "tensors", tensors)
    const out = this.#alloc("concat", shape, (tensors[0] as Tensor).dtype)
    const { outer, axisLength: total, inner } = S.aroundAxis(shape, axis)
    let offset = 0
    for (const t of tensors) {
      const length = t.shape[axis] as number
      Layout.insertAxis(words(out), words(t), outer, length, total, offset, inner)
      offset += length
    }
    return out
  }
  narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
    const shape = S.narrow(x, axis, start, length)
    this.#check("narrow", "x", x)
    const out = this.#alloc("narrow", shape, x.dtype)
    const { outer, axisLength, inner } = S.aroundAxis(x.shape, axis)
    Layout.sliceAxis(words(out), words(x), outer, axisLength, length, start, inner)
    return out
  }
  split(x: Tensor, axis: number, count: number): ReadonlyArray<Tensor> {
    const shape = S.split(x, axis, count)
    this.#check("split", "x", x)
    const { outer, axisLength, inner } = S.aroundAxis(x.shape, axis)
    const length = shape[axis] as number
    return Array.from({ length: count }, (_, i) => {
      const out = this.#alloc("split", shape, x.dtype)
      Layout.sliceAxis(words(out), words(x), outer, axisLength, length, i * length, inner)
      return out
    })
  }
  pad(x: Tensor, axis: number, before: number, after: number): Tensor {
    const shape = S.pad(x, axis, before, after)
    this.#check("pad", "x", x)
    const out = this.#alloc("pad", shape, x.dtype)
    const { outer, axisLength, inner } = S.aroundAxis(x.shape, axis)
    Layout.insertAxis(words(out), words(x), outer, axisLength, shape[axis] as number, before, inner)
    return out
  }

  // ---- embeddings ----
  embedding(table: Tensor, ids: Tensor): Tensor {
    const s = S.embedding(table, ids)
    this.#check("embedding", "table", table)
    this.#check("embedding", "ids", ids)
    V.expectIdsRank("embedding", ids)
    Embedding.checkIds("embedding", ints(ids), s.vocab)
    return this.#compute("embedding", s.out, (out) => Embedding.embedding(out, floats(table), ints(ids), s.dim))
  }
  embeddingBackward(dout: Tensor, ids: Tensor, vocab: number): Tensor {
    const s = S.embeddingBackward(dout, ids, vocab)
    this.#check("embeddingBackward", "dout", dout)
    this.#check("embeddingBackward", "ids", ids)
    V.expectVocabFits("embeddingBackward", vocab)
    Embedding.checkIds("embeddingBackward", ints(ids), vocab)
    return this.#compute("embeddingBackward", s.out, (dtable) => Embedding.embeddingBackward(dtable, floats(dout), ints(ids), s.dim))
  }
  timestepEmbedding(t: Tensor, dim: number, maxPeriod = 10000): Tensor {
    const shape = S.timestepEmbedding(t, dim, maxPeriod)
    this.#check("timestepEmbedding", "t", t)
    V.expectPeriodFitsF32("timestepEmbedding", maxPeriod)
    return this.#compute("timestepEmbedding", shape, (out) => Embedding.timestepEmbedding(out, floats(t), dim, maxPeriod))
  }

  // ---- reductions ----
  sum(x: Tensor): Tensor {
    S.expectDtype("sum", "x", x)
    this.#check("sum", "x", x)
    return this.#compute("sum", [], (out) => {
      out[0] = Reduce.sumAll(floats(x))
    })
  }
  mean(x: Tensor): Tensor {
    S.expectDtype("mean", "x", x)
    this.#check("mean", "x", x)
    V.expectNonEmpty("mean", "x", x)
    return this.#compute("mean", [], (out) => {
      out[0] = Reduce.sumAll(floats(x)) / x.numel
    })
  }
  sumAxis(x: Tensor, axis: number): Tensor {
    const s = S.sumAxis(x, axis)
    this.#check("sumAxis", "x", x)
    return this.#compute("sumAxis", s.out, (out) => Reduce.sumAxis(out, floats(x), s.outer, s.axisLength, s.inner), x.dtype)
  }
  mse(a: Tensor, b: Tensor): Tensor {
    S.sameAs("mse", ["a", "b"], [a, b])
    this.#check("mse", "a", a)
    this.#check("mse", "b", b)
    V.expectNonEmpty("mse", "a", a)
    return this.#compute("mse", [], (out) => {
      out[0] = Reduce.mseAll(floats(a), floats(b))
    })
  }
  mseRows(a: Tensor, b: Tensor, prefixRank: number): Tensor {
    S.sameAs("mseRows", ["a", "b"], [a, b])
    const shape = S.prefix("mseRows", a, prefixRank)
    this.#check("mseRows", "a", a)
    this.#check("mseRows", "b", b)
    V.expectNonEmptyRows("mseRows", a, prefixRank)
    return this.#compute("mseRows", shape, (out) => Reduce.mseRows(out, floats(a), floats(b)))
  }

  // ---- score combinations ----
  classifierScoreDirection(gUncond: Tensor, gCond: Tensor): Tensor {
    const op = "classifierScoreDirection"
    const shape = S.sameAs(op, ["gUncond", "gCond"], [gUncond, gCond])
    this.#check(op, "gUncond", gUncond)
    this.#check(op, "gCond", gCond)
    return this.#compute(op, shape, (out) => Score.classifierScoreDirection(out, floats(gUncond), floats(gCond)))
  }
  fakeScoreMix(gUncond: Tensor, gCond: Tensor, gFake: Tensor, k: number): Tensor {
    const op = "fakeScoreMix"
    const shape = S.sameAs(op, ["gUncond", "gCond", "gFake"], [gUncond, gCond, gFake])
    S.expectFinite(op, "k", k)
    this.#check(op, "gUncond", gUncond)
    this.#check(op, "gCond", gCond)
    this.#check(op, "gFake", gFake)
    return this.#compute(op, shape, (out) => Score.fakeScoreMix(out, floats(gUncond), floats(gCond), floats(gFake), k))
  }
  energyPreservingRenorm(x: Tensor, ref: Tensor): Tensor {
    const op = "energyPreservingRenorm"
    const shape = S.sameAs(op, ["x", "ref"], [x, ref])
    const { rows } = S.rowsOf(op, x)
    this.#check(op, "x", x)
    this.#check(op, "ref", ref)
    return this.#compute(op, shape, (out) => Score.energyPreservingRenorm(out, floats(x), floats(ref), rows))
  }
  velocityTarget(xt: Tensor, xRenorm: Tensor, t: Tensor): Tensor {
    const op = "velocityTarget"
    const shape = S.sameAs(op, ["xt", "xRenorm"], [xt, xRenorm])
    S.perRow(op, "t", t, S.rowsOf(op, xt).rows)
    this.#check(op, "xt", xt)
    this.#check(op, "xRenorm", xRenorm)
    this.#check(op, "t", t)
    return this.#compute(op, shape, (out) => Score.velocityTarget(out, floats(xt), floats(xRenorm), floats(t)))
  }
  selfEvaluationTarget(i: Ops.SelfEvaluationInputs): Tensor {
    const op = "selfEvaluationTarget"
    const names = ["x0", "x0Hat", "xt", "gUncond", "gCond", ...(i.gFake ? ["gFake"] : [])]
    const shape = S.sameAs(op, names, [i.x0, i.x0Hat, i.xt, i.gUncond, i.gCond, ...(i.gFake ? [i.gFake] : [])])
    const { rows } = S.rowsOf(op, i.x0)
    S.perRow(op, "t", i.t, rows)
    S.perRow(op, "lambda", i.lambda, rows)
    S.expectFinite(op, "k", i.k)
    this.#check(op, "x0", i.x0)
    this.#check(op, "x0Hat", i.x0Hat)
    this.#check(op, "xt", i.xt)
    this.#check(op, "t", i.t)
    this.#check(op, "lambda", i.lambda)
    this.#check(op, "gUncond", i.gUncond)
    this.#check(op, "gCond", i.gCond)
    this.#checkOptional(op, "gFake", i.gFake)
    return this.#compute(op, shape, (out) =>
      Score.selfEvaluationTarget(out, {
        x0: floats(i.x0),
        x0Hat: floats(i.x0Hat),
        xt: floats(i.xt),
        t: floats(i.t),
        lambda: floats(i.lambda),
        gUncond: floats(i.gUncond),
        gCond: floats(i.gCond),
        gFake: optionalFloats(i.gFake),
        k: i.k
      })
    )
  }
  cfgCombine(vUncond: Tensor, vCond: Tensor, omega: number): Tensor {
    const op = "cfgCombine"
    const shape = S.sameAs(op, ["vUncond", "vCond"], [vUncond, vCond])
    S.expectFinite(op, "omega", omega)
    this.#check(op, "vUncond", vUncond)
    this.#check(op, "vCond", vCond)
    return this.#compute(op, shape, (out) => Score.cfgCombine(out, floats(vUncond), floats(vCond), omega))
  }
  energyPreservingCfg(vUncond: Tensor, vCond: Tensor, omega: number): Tensor {
    const op = "energyPreservingCfg"
    const shape = S.sameAs(op, ["vUncond", "vCond"], [vUncond, vCond])
    const { rows } = S.rowsOf(op, vUncond)
    S.expectFinite(op, "omega", omega)
    this.#check(op, "vUncond", vUncond)
    this.#check(op, "vCond", vCond)
    return this.#compute(op, shape, (out) => Score.energyPreservingCfg(out, floats(vUncond), floats(vCond), omega, rows))
  }

  // ---- random ----
  randomUniform(shape: Shape, stream: Ops.RandomStream): Tensor {
    const s = S.checkShape("randomUniform", shape)
    S.randomStream("randomUniform", stream.seed, stream.offset)
    return this.#compute("randomUniform", s, (out) => Random.randomUniform(out, stream.seed, stream.offset))
  }
  randomNormal(shape: Shape, stream: Ops.RandomStream): Tensor {
    const s = S.checkShape("randomNormal", shape)
    S.randomStream("randomNormal", stream.seed, stream.offset)
    return this.#compute("randomNormal", s, (out) => Random.randomNormal(out, stream.seed, stream.offset))
  }

  // ---- optimizer ----
  adamw(state: Ops.AdamWState, hyper: Ops.AdamWHyper): void {
    const op = "adamw"
    S.tensorLists(op, [["params", state.params], ["grads", state.grads], ["m", state.m], ["v", state.v]])
    this.#checkList(op, "params", state.params)
    this.#checkList(op, "grads", state.grads)
    this.#checkList(op, "m", state.m)
    this.#checkList(op, "v", state.v)
    V.expectAdamWHyper(op, hyper)
    Optim.adamw(state.params.map(floats), state.grads.map(floats), state.m.map(floats), state.v.map(floats), hyper)
  }
  emaUpdate(ema: ReadonlyArray<Tensor>, params: ReadonlyArray<Tensor>, decay: number): void {
    S.tensorLists("emaUpdate", [["ema", ema], ["params", params]])
    this.#checkList("emaUpdate", "ema", ema)
    this.#checkList("emaUpdate", "params", params)
    S.expectFinite("emaUpdate", "decay", decay)
    Optim.emaUpdate(ema.map(floats), params.map(floats), decay)
  }
  adamwEma(state: Ops.AdamWEmaState, hyper: Ops.AdamWHyper, emaDecay: number): void {
    const op = "adamwEma"
    S.tensorLists(op, [["params", state.params], ["grads", state.grads], ["m", state.m], ["v", state.v], ["ema", state.ema]])
    this.#checkList(op, "params", state.params)
    this.#checkList(op, "grads", state.grads)
    this.#checkList(op, "m", state.m)
    this.#checkList(op, "v", state.v)
    this.#checkList(op, "ema", state.ema)
    V.expectAdamWHyper(op, hyper)
    S.expectFinite(op, "emaDecay", emaDecay)
    const f = (list: ReadonlyArray<Tensor>) => list.map(floats)
    Optim.adamwEma(f(state.params), f(state.grads), f(state.m), f(state.v), f(state.ema), hyper, emaDecay)
  }
  globalNorm(xs: ReadonlyArray<Tensor>): Tensor {
    S.tensorLists("globalNorm", [["xs", xs]])
    this.#checkList("globalNorm", "xs", xs)
    return this.#compute("globalNorm", [], (out) => {
      out[0] = Optim.globalNorm(xs.map(floats))
    })
  }
  clipByNorm(xs: ReadonlyArray<Tensor>, norm: Tensor, maxNorm: number): void {
    S.tensorLists("clipByNorm", [["xs", xs]])
    S.expectDtype("clipByNorm", "norm", norm)
    S.expectShape("clipByNorm", "norm", norm, [])
    this.#checkList("clipByNorm", "xs", xs)
    this.#check("clipByNorm", "norm", norm)
    S.expectFinite("clipByNorm", "maxNorm", maxNorm)
    Optim.clipByNorm(xs.map(floats), floats(norm)[0] as number, maxNorm)
  }
}
