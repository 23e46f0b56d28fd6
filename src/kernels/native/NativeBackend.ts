import { type DType, type Shape, dtypeCode } from "../../tensor/dtype.ts"
import { Tensor, type TensorOwner } from "../../tensor/Tensor.ts"
import { DisposedTensorError, DTypeError, InvalidArgumentError } from "../errors.ts"
import type * as Ops from "../ops.ts"
import * as S from "../shapes.ts"
import type { NativeAddon, NativeDevice, NativeOps } from "./binding.ts"

export interface NativeOptions {
  /** "cpu" (default) or "cuda": the addon's backend this device runs on; one ops namespace serves both. */
  readonly backend?: "cpu" | "cuda" | undefined
  /** Which CUDA device (cuda only; default 0). */
  readonly deviceIndex?: number | undefined
  /** Threads for elementwise loops (cpu only; default: all cores). */
  readonly threads?: number | undefined
  /** Cap on device memory in bytes; allocations beyond it fail with OutOfMemoryError (0 = none). */
  readonly memoryLimitBytes?: number | undefined
  /**
   * cuda only: "auto" lets bf16 attention at head dims 64 and 128 run on the tensor-core kernels, the forward
   * and the backward's key kernel (at head dim 64 past 256 keys, and at 128) on warpgroup tensor cores where the GPU is
   * sm_90; "mma.sync" keeps the tensor-core kernels to the FlashAttention-2-style ones; "simt" keeps every
   * attention on the CUDA-core kernels (docs/cuda.md). Default: the environment variable SELFE_CUDA_ATTENTION,
   * else "auto".
   */
  readonly attentionKernels?: "auto" | "mma.sync" | "simt" | undefined
  /**
   * cuda only: "heuristic" runs each GEMM problem on cuBLASLt's first algorithm; "timed" times up to 8 of its
   * candidates on the problem's first call (beta 0 only; it waits for the stream once per problem) and keeps
   * the quickest. Default: the environment variable SELFE_CUDA_GEMM, else "heuristic".
   */
  readonly gemmAlgorithms?: "heuristic" | "timed" | undefined
  /**
   * cuda only: "run-to-run" makes every result the same bits on every run on the same GPU: bf16 attention's
   * backward then computes dq in a kernel of its own (recomputing two of its products) instead of adding it
   * with atomics, and gemmAlgorithms "timed" is refused (another run may time another algorithm quickest).
   * "not-guaranteed" leaves the atomics. (The CPU backend is always run-to-run.) Default: the environment
   * variable SELFE_CUDA_DETERMINISM, else "not-guaranteed".
   */
  readonly determinism?: "not-guaranteed" | "run-to-run" | undefined
  /**
   * cuda only: the cuBLASLt workspace in bytes, an integer in [0, 2^30]: allocated once per device, it bounds the
   * algorithms cuBLASLt's heuristic may offer a GEMM (0: only those that need no workspace; PyTorch's cuBLASLt
   * path asks with 1 MiB, by its source). Default: the environment variable SELFE_CUDA_GEMM_WORKSPACE (bytes), else 32 MiB,
   * cuBLASLt's recommendation on Hopper.
   */
  readonly gemmWorkspaceBytes?: number | undefined
}

type H = number

/** Host data as the addon takes it: f32 values for f32 and bf16 tensors (bf16 only where the device is CUDA). */
const asTypedArray = (op: string, data: ArrayLike<number>, dtype: DType, cuda: boolean): Float32Array | Int32Array => {
  if (dtype === "f32" || (dtype === "bf16" && cuda)) return data instanceof Float32Array ? data : Float32Array.from(data)
  if (dtype === "i32") {
    if (data instanceof Int32Array) return data
    const out = Int32Array.from(data)
    for (let i = 0; i < out.length; i++)
      if (out[i] !== data[i]) throw new InvalidArgumentError({ op, reason: `data[${i}] = ${data[i]} is not a 32-bit integer` })
    return out
  }
  throw new DTypeError({ op, reason: "bf16 storage needs the CUDA backend" })
}

/**
 * The native backends, CPU or CUDA (the addon's Device picks; ops.<name> dispatches on it): shape rules
 * checked here (shared with every backend), then the addon validates again at the N-API boundary,
 * allocates, enqueues and returns. On CUDA, the ops the contract marks bf16-capable take bf16 tensors too
 * and return their inputs' dtype.
 */
export class NativeBackend implements Ops.Backend, TensorOwner {
  readonly name: "cpu" | "cuda"
  readonly device: string
  readonly storesBf16: boolean
  readonly #ops: NativeOps
  readonly #dev: NativeDevice
  #disposed = false

  /** Throws the addon's coded error (SELFE_DEVICE) where CUDA was not built or no GPU is usable. */
  constructor(addon: NativeAddon, options: NativeOptions = {}) {
    this.#ops = addon.ops
    this.name = options.backend ?? "cpu"
    this.device = this.name === "cuda" ? `cuda:${options.deviceIndex ?? 0}` : "cpu"
    this.storesBf16 = this.name === "cuda"
    this.#dev = new addon.Device({
      ...(options.backend !== undefined ? { backend: options.backend } : {}),
      ...(options.deviceIndex !== undefined ? { deviceIndex: options.deviceIndex } : {}),
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      ...(options.memoryLimitBytes !== undefined ? { memoryLimitBytes: options.memoryLimitBytes } : {}),
      ...(options.attentionKernels !== undefined ? { attentionKernels: options.attentionKernels } : {}),
      ...(options.gemmAlgorithms !== undefined ? { gemmAlgorithms: options.gemmAlgorithms } : {}),
      ...(options.determinism !== undefined ? { determinism: options.determinism } : {}),
      ...(options.gemmWorkspaceBytes !== undefined ? { gemmWorkspaceBytes: options.gemmWorkspaceBytes } : {})
    })
  }

  releaseHandle(handle: unknown): void {
    if (!this.#disposed) this.#ops.release(this.#dev, handle as H)
  }

  releaseHandles(handles: ReadonlyArray<unknown>): void {
    if (!this.#disposed && handles.length > 0) this.#ops.releaseAll(this.#dev, handles as ReadonlyArray<H>)
  }

  /** The handle of an argument (element `index` of a list named `name`), after checking it is live and lives here. */
  #h(op: string, name: string, t: Tensor, index?: number): H {
    if (t instanceof Tensor && t.owner === this && !t.released) return t.handle as H
    // A list element's name is built only for the error: an optimizer step passes about a thousand tensors.
    const label = index === undefined ? name : `${name}[${index}]`
    if (!(t instanceof Tensor)) throw new InvalidArgumentError({ op, reason: `${label} must be a Tensor` })
    if (t.owner !== this) throw new InvalidArgumentError({ op, reason: `${label} (${t}) lives on ${t.device}, not on this ${this.device} device` })
    throw new DisposedTensorError({ op, reason: `${label} (${t}) was released` })
  }

  #opt(op: string, name: string, t: Tensor | undefined): H | undefined {
    return t === undefined ? undefined : this.#h(op, name, t)
  }

  #list(op: string, name: string, ts: ReadonlyArray<Tensor>): Array<H> {
    const handles = new Array<H>(ts.length)
    for (let i = 0; i < ts.length; i++) handles[i] = this.#h(op, name, ts[i] as Tensor, i)
    return handles
  }

  get #cuda(): boolean {
    return this.name === "cuda"
  }

  #t(handle: H, shape: Shape, dtype: DType = "f32"): Tensor {
    return new Tensor(handle, shape, dtype, this)
  }

  read(x: Tensor): Promise<Float32Array | Int32Array> {
    return this.#ops.read(this.#dev, this.#h("read", "x", x))
  }

  sync(): Promise<void> {
    return this.#ops.sync(this.#dev)
  }

  stats(): Ops.MemoryStats {
    if (this.#disposed) return { liveTensors: 0, liveBytes: 0, cachedBytes: 0, peakBytes: 0, systemAllocs: 0 }
    return this.#ops.stats(this.#dev)
  }

  streamTimes(): Ops.StreamTimes | undefined {
    if (this.#disposed) return { busySeconds: 0, ops: [] }
    const { streamBusySeconds, streamOps } = this.#ops.stats(this.#dev)
    // Addons that run no stream (bench/noopAddon.ts) report neither.
    return streamOps === undefined ? undefined : { busySeconds: streamBusySeconds, ops: streamOps }
  }

  /** The device's stream failure, if any ("" when healthy). */
  failure(): string {
    return this.#disposed ? "" : this.#ops.stats(this.#dev).failure
  }

  dispose(): void {
    if (this.#disposed) return
    this.#disposed = true
    this.#ops.dispose(this.#dev)
  }

  // ---- creation and movement ----
  fromArray(data: ArrayLike<number>, shape: Shape, dtype: DType = "f32"): Tensor {
    const s = S.checkShape("fromArray", shape)
    return this.#t(this.#ops.upload(this.#dev, dtypeCode[dtype], s, asTypedArray("fromArray", data, dtype, this.#cuda)), s, dtype)
  }
  empty(shape: Shape, dtype: DType = "f32"): Tensor {
    const s = S.checkShape("empty", shape)
    return this.#t(this.#ops.empty(this.#dev, dtypeCode[dtype], s), s, dtype)
  }
  full(shape: Shape, value: number, dtype: DType = "f32"): Tensor {
    const s = S.checkShape("full", shape)
    S.expectFinite("full", "value", value)
    return this.#t(this.#ops.full(this.#dev, dtypeCode[dtype], s, value), s, dtype)
  }
  zeros(shape: Shape, dtype: DType = "f32"): Tensor {
    return this.full(shape, 0, dtype)
  }
  write(x: Tensor, data: ArrayLike<number>): void {
    this.#ops.write(this.#dev, this.#h("write", "x", x), asTypedArray("write", data, x.dtype, this.#cuda))
  }
  view(x: Tensor, shape: Shape): Tensor {
    const s = S.checkShape("view", shape)
    return this.#t(this.#ops.view(this.#dev, this.#h("view", "x", x), s), s, x.dtype)
  }
  copy(x: Tensor): Tensor {
    return this.#t(this.#ops.copy(this.#dev, this.#h("copy", "x", x)), x.shape, x.dtype)
  }
  assign(dst: Tensor, src: Tensor): void {
    this.#ops.assign(this.#dev, this.#h("assign", "dst", dst), this.#h("assign", "src", src))
  }
  cast(x: Tensor, dtype: DType): Tensor {
    S.expectDtypeName("cast", "dtype", dtype)
    return this.#t(this.#ops.cast(this.#dev, this.#h("cast", "x", x), dtypeCode[dtype]), x.shape, dtype)
  }
  castAll(xs: ReadonlyArray<Tensor>, dtype: DType): ReadonlyArray<Tensor> {
    S.castAll(xs, dtype)
    const handles = this.#ops.castAll(this.#dev, this.#list("castAll", "xs", xs), dtypeCode[dtype])
    return handles.map((h, i) => this.#t(h, (xs[i] as Tensor).shape, dtype))
  }

  // ---- elementwise ----
  add(a: Tensor, b: Tensor): Tensor {
    return this.#t(this.#ops.add(this.#dev, this.#h("add", "a", a), this.#h("add", "b", b)), S.binary("add", a, b, true), a.dtype)
  }
  sub(a: Tensor, b: Tensor): Tensor {
    return this.#t(this.#ops.sub(this.#dev, this.#h("sub", "a", a), this.#h("sub", "b", b)), S.binary("sub", a, b), a.dtype)
  }
  mul(a: Tensor, b: Tensor): Tensor {
    return this.#t(this.#ops.mul(this.#dev, this.#h("mul", "a", a), this.#h("mul", "b", b)), S.binary("mul", a, b), a.dtype)
  }
  mulRows(x: Tensor, s: Tensor): Tensor {
    return this.#t(this.#ops.mulRows(this.#dev, this.#h("mulRows", "x", x), this.#h("mulRows", "s", s)), S.mulRows(x, s), x.dtype)
  }
  affine(x: Tensor, alpha: number, beta: number): Tensor {
    S.expectFloating("affine", "x", x)
    return this.#t(this.#ops.affine(this.#dev, this.#h("affine", "x", x), alpha, beta), x.shape, x.dtype)
  }
  scale(x: Tensor, alpha: number): Tensor {
    S.expectFloating("scale", "x", x)
    return this.#t(this.#ops.affine(this.#dev, this.#h("scale", "x", x), alpha, 0), x.shape, x.dtype)
  }
  axpy(alpha: number, x: Tensor, y: Tensor): Tensor {
    const shape = S.sameAs("axpy", ["x", "y"], [x, y], true)
    return this.#t(this.#ops.axpy(this.#dev, this.#h("axpy", "x", x), this.#h("axpy", "y", y), alpha), shape, x.dtype)
  }
  rowDot(a: Tensor, b: Tensor, prefixRank: number): Tensor {
    S.sameAs("rowDot", ["a", "b"], [a, b])
    const shape = S.prefix("rowDot", a, prefixRank)
    return this.#t(this.#ops.rowDot(this.#dev, this.#h("rowDot", "a", a), this.#h("rowDot", "b", b), prefixRank), shape)
  }

  // ---- activations ----
  gelu(x: Tensor): Tensor {
    S.expectFloating("gelu", "x", x)
    return this.#t(this.#ops.gelu(this.#dev, this.#h("gelu", "x", x)), x.shape, x.dtype)
  }
  geluBackward(dy: Tensor, x: Tensor): Tensor {
    const shape = S.sameAs("geluBackward", ["dy", "x"], [dy, x], true)
    return this.#t(this.#ops.geluBackward(this.#dev, this.#h("geluBackward", "dy", dy), this.#h("geluBackward", "x", x)), shape, x.dtype)
  }
  silu(x: Tensor): Tensor {
    S.expectFloating("silu", "x", x)
    return this.#t(this.#ops.silu(this.#dev, this.#h("silu", "x", x)), x.shape, x.dtype)
  }
  siluBackward(dy: Tensor, x: Tensor): Tensor {
    const shape = S.sameAs("siluBackward", ["dy", "x"], [dy, x], true)
    return this.#t(this.#ops.siluBackward(this.#dev, this.#h("siluBackward", "dy", dy), this.#h("siluBackward", "x", x)), shape, x.dtype)
  }

  // ---- normalisation and adaLN ----
  layerNorm(x: Tensor, options: Ops.LayerNormOptions): Ops.LayerNormResult {
    const op = "layerNorm"
    const dtype = options.dtype ?? x.dtype
    const s = S.layerNorm(x, options.weight, options.bias, options.eps, dtype)
    const [y, mean, rstd] = this.#ops.layerNorm(this.#dev, this.#h(op, "x", x), this.#opt(op, "weight", options.weight), this.#opt(op, "bias", options.bias), options.eps, dtypeCode[dtype])
    return { y: this.#t(y, s.y, dtype), mean: this.#t(mean, s.stats), rstd: this.#t(rstd, s.stats) }
  }
  layerNormBackward(dy: Tensor, x: Tensor, saved: Ops.LayerNormSaved, options: Ops.LayerNormBackwardOptions): Ops.LayerNormGrads {
    const op = "layerNormBackward"
    const s = S.layerNorm(x, options.weight, undefined, 1)
    S.expectShape(op, "dy", dy, x.shape)
    S.expectShape(op, "mean", saved.mean, s.stats)
    S.expectShape(op, "rstd", saved.rstd, s.stats)
    const [dx, dw, db] = this.#ops.layerNormBackward(this.#dev, this.#h(op, "dy", dy), this.#h(op, "x", x), this.#h(op, "mean", saved.mean), this.#h(op, "rstd", saved.rstd), this.#opt(op, "weight", options.weight), options.withBias, this.#opt(op, "addTo.dx", options.addTo?.dx))
    return {
      dx: this.#t(dx, x.shape, x.dtype),
      dweight: dw === null ? undefined : this.#t(dw, [s.dim], x.dtype),
      dbias: db === null ? undefined : this.#t(db, [s.dim], x.dtype)
    }
  }
  modulate(x: Tensor, shift: Tensor, scale: Tensor): Tensor {
    S.perSample("modulate", x, ["shift", "scale"], [shift, scale])
    return this.#t(this.#ops.modulate(this.#dev, this.#h("modulate", "x", x), this.#h("modulate", "shift", shift), this.#h("modulate", "scale", scale)), x.shape, x.dtype)
  }
  modulateBackward(dy: Tensor, x: Tensor, scale: Tensor): Ops.ModulateGrads {
    const op = "modulateBackward"
    const { batch, dim } = S.perSample(op, x, ["scale"], [scale])
    S.expectShape(op, "dy", dy, x.shape)
    const [dx, dshift, dscale] = this.#ops.modulateBackward(this.#dev, this.#h(op, "dy", dy), this.#h(op, "x", x), this.#h(op, "scale", scale))
    return { dx: this.#t(dx, x.shape, x.dtype), dshift: this.#t(dshift, [batch, dim], x.dtype), dscale: this.#t(dscale, [batch, dim], x.dtype) }
  }
  layerNormModulate(x: Tensor, shift: Tensor, scale: Tensor, eps: number, dtype: DType = x.dtype): Ops.LayerNormResult {
    const op = "layerNormModulate"
    const s = S.layerNormModulate(x, shift, scale, eps, dtype)
    const [y, mean, rstd] = this.#ops.layerNormModulate(this.#dev, this.#h(op, "x", x), this.#h(op, "shift", shift), this.#h(op, "scale", scale), eps, dtypeCode[dtype])
    return { y: this.#t(y, x.shape, dtype), mean: this.#t(mean, s.stats), rstd: this.#t(rstd, s.stats) }
  }
  layerNormModulateBackward(dy: Tensor, x: Tensor, saved: Ops.LayerNormSaved, scale: Tensor, addTo?: Ops.GradientBases<"dx">): Ops.ModulateGrads {
    const op = "layerNormModulateBackward"
    const { batch, tokens, dim } = S.perSample(op, x, ["scale"], [scale])
    S.expectShape(op, "dy", dy, x.shape)
    S.expectShape(op, "mean", saved.mean, [batch, tokens])
    S.expectShape(op, "rstd", saved.rstd, [batch, tokens])
    const [dx, dshift, dscale] = this.#ops.layerNormModulateBackward(
      this.#dev,
      this.#h(op, "dy", dy),
      this.#h(op, "x", x),
      this.#h(op, "mean", saved.mean),
      this.#h(op, "rstd", saved.rstd),
      this.#h(op, "scale", scale),
      this.#opt(op, "addTo.dx", addTo?.dx)
    )
    return { dx: this.#t(dx, x.shape, x.dtype), dshift: this.#t(dshift, [batch, dim], x.dtype), dscale: this.#t(dscale, [batch, dim], x.dtype) }
  }
  gatedResidual(x: Tensor, gate: Tensor, branch: Tensor): Tensor {
    const op = "gatedResidual"
    S.perSample(op, x, ["gate"], [gate])
    S.expectShape(op, "branch", branch, x.shape)
    return this.#t(this.#ops.gatedResidual(this.#dev, this.#h(op, "x", x), this.#h(op, "gate", gate), this.#h(op, "branch", branch)), x.shape, x.dtype)
  }
  gatedResidualBackward(dout: Tensor, gate: Tensor, branch: Tensor): Ops.GatedResidualGrads {
    const op = "gatedResidualBackward"
    const { batch, dim } = S.perSample(op, dout, ["gate"], [gate])
    S.expectShape(op, "branch", branch, dout.shape)
    const [dgate, dbranch] = this.#ops.gatedResidualBackward(this.#dev, this.#h(op, "dout", dout), this.#h(op, "gate", gate), this.#h(op, "branch", branch))
    return { dgate: this.#t(dgate, [batch, dim], dout.dtype), dbranch: this.#t(dbranch, branch.shape, branch.dtype) }
  }

  // ---- attention and matrix products ----
  attention(q: Tensor, k: Tensor, v: Tensor, options: Ops.AttentionOptions): Ops.AttentionResult {
    const op = "attention"
    const s = S.attention(q, k, v, options.keyMask, options.scale, options.heads)
    const [out, lse] = this.#ops.attention(this.#dev, this.#h(op, "q", q), this.#h(op, "k", k), this.#h(op, "v", v), this.#opt(op, "keyMask", options.keyMask), s.scale, options.heads ?? 0)
    return { out: this.#t(out, s.out, q.dtype), lse: this.#t(lse, s.lse) }
  }
  attentionBackward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, saved: Ops.AttentionResult, options: Ops.AttentionOptions): Ops.AttentionGrads {
    const op = "attentionBackward"
    const s = S.attention(q, k, v, options.keyMask, options.scale, options.heads)
    S.expectShape(op, "dout", dout, s.out)
    S.expectShape(op, "out", saved.out, s.out)
    S.expectShape(op, "lse", saved.lse, s.lse)
    const [dq, dk, dv] = this.#ops.attentionBackward(this.#dev, this.#h(op, "dout", dout), this.#h(op, "q", q), this.#h(op, "k", k), this.#h(op, "v", v), this.#h(op, "out", saved.out), this.#h(op, "lse", saved.lse), this.#opt(op, "keyMask", options.keyMask), s.scale, options.heads ?? 0)
    return { dq: this.#t(dq, q.shape, q.dtype), dk: this.#t(dk, k.shape, q.dtype), dv: this.#t(dv, v.shape, q.dtype) }
  }
  matmul(a: Tensor, b: Tensor, options: Ops.MatmulOptions = {}): Tensor {
    const transA = options.transA ?? false
    const transB = options.transB ?? false
    const alpha = options.alpha ?? 1
    const s = S.matmul(a, b, transA, transB)
    return this.#t(this.#ops.matmul(this.#dev, this.#h("matmul", "a", a), this.#h("matmul", "b", b), transA, transB, alpha), s.out, a.dtype)
  }
  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    const s = S.linear(x, weight, bias)
    return this.#t(this.#ops.linear(this.#dev, this.#h("linear", "x", x), this.#h("linear", "weight", weight), this.#opt("linear", "bias", bias)), s.out, x.dtype)
  }
  linearGelu(x: Tensor, weight: Tensor, bias?: Tensor): Ops.LinearGeluResult {
    const op = "linearGelu"
    const s = S.linear(x, weight, bias, op)
    const [y, pre] = this.#ops.linearGelu(this.#dev, this.#h(op, "x", x), this.#h(op, "weight", weight), this.#opt(op, "bias", bias))
    return { y: this.#t(y, s.out, x.dtype), pre: this.#t(pre, s.out, x.dtype) }
  }
  linearBackward(dy: Tensor, x: Tensor, weight: Tensor, options: Ops.LinearBackwardOptions): Ops.LinearGrads {
    const op = "linearBackward"
    const s = S.linearBackward(dy, x, weight)
    const [dx, dweight, dbias] = this.#ops.linearBackward(this.#dev, this.#h(op, "dy", dy), this.#h(op, "x", x), this.#h(op, "weight", weight), options.dx, options.dweight, options.dbias,
      this.#opt(op, "addTo.dx", options.addTo?.dx), this.#opt(op, "addTo.dweight", options.addTo?.dweight), this.#opt(op, "addTo.dbias", options.addTo?.dbias))
    return {
      dx: dx === null ? undefined : this.#t(dx, x.shape, x.dtype),
      dweight: dweight === null ? undefined : this.#t(dweight, weight.shape, x.dtype),
      dbias: dbias === null ? undefined : this.#t(dbias, [s.outFeatures], x.dtype)
    }
  }

  // ---- layout ----
  patchify(x: Tensor, patch: number): Tensor {
    const s = S.patchify(x, patch)
    return this.#t(this.#ops.patchify(this.#dev, this.#h("patchify", "x", x), patch), s.out)
  }
  unpatchify(tokens: Tensor, image: Ops.ImageGeometry): Tensor {
    const s = S.unpatchify(tokens, image)
    return this.#t(this.#ops.unpatchify(this.#dev, this.#h("unpatchify", "tokens", tokens), image.channels, image.height, image.width, image.patch), s.out)
  }
  concat(tensors: ReadonlyArray<Tensor>, axis: number): Tensor {
    const shape = S.concat(tensors, axis)
    return this.#t(this.#ops.concat(this.#dev, this.#list("concat", "tensors", tensors), axis), shape, (tensors[0] as Tensor).dtype)
  }
  narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
    const shape = S.narrow(x, axis, start, length)
    return this.#t(this.#ops.narrow(this.#dev, this.#h("narrow", "x", x), axis, start, length), shape, x.dtype)
  }
  split(x: Tensor, axis: number, count: number): ReadonlyArray<Tensor> {
    const shape = S.split(x, axis, count)
    return this.#ops.split(this.#dev, this.#h("split", "x", x), axis, count).map((handle) => this.#t(handle, shape, x.dtype))
  }
  pad(x: Tensor, axis: number, before: number, after: number): Tensor {
    const shape = S.pad(x, axis, before, after)
    return this.#t(this.#ops.pad(this.#dev, this.#h("pad", "x", x), axis, before, after), shape, x.dtype)
  }

  // ---- embeddings ----
  embedding(table: Tensor, ids: Tensor): Tensor {
    const s = S.embedding(table, ids)
    return this.#t(this.#ops.embedding(this.#dev, this.#h("embedding", "table", table), this.#h("embedding", "ids", ids)), s.out)
  }
  embeddingBackward(dout: Tensor, ids: Tensor, vocab: number): Tensor {
    const s = S.embeddingBackward(dout, ids, vocab)
    return this.#t(this.#ops.embeddingBackward(this.#dev, this.#h("embeddingBackward", "dout", dout), this.#h("embeddingBackward", "ids", ids), vocab), s.out)
  }
  timestepEmbedding(t: Tensor, dim: number, maxPeriod = 10000): Tensor {
    const shape = S.timestepEmbedding(t, dim, maxPeriod)
    return this.#t(this.#ops.timestepEmbedding(this.#dev, this.#h("timestepEmbedding", "t", t), dim, maxPeriod), shape)
  }

  // ---- reductions ----
  sum(x: Tensor): Tensor {
    S.expectDtype("sum", "x", x)
    return this.#t(this.#ops.sum(this.#dev, this.#h("sum", "x", x)), [])
  }
  mean(x: Tensor): Tensor {
    S.expectDtype("mean", "x", x)
    return this.#t(this.#ops.mean(this.#dev, this.#h("mean", "x", x)), [])
  }
  sumAxis(x: Tensor, axis: number): Tensor {
    const s = S.sumAxis(x, axis)
    return this.#t(this.#ops.sumAxis(this.#dev, this.#h("sumAxis", "x", x), axis), s.out, x.dtype)
  }
  mse(a: Tensor, b: Tensor): Tensor {
    S.sameAs("mse", ["a", "b"], [a, b])
    return this.#t(this.#ops.mse(this.#dev, this.#h("mse", "a", a), this.#h("mse", "b", b)), [])
  }
  mseRows(a: Tensor, b: Tensor, prefixRank: number): Tensor {
    S.sameAs("mseRows", ["a", "b"], [a, b])
    const shape = S.prefix("mseRows", a, prefixRank)
    return this.#t(this.#ops.mseRows(this.#dev, this.#h("mseRows", "a", a), this.#h("mseRows", "b", b), prefixRank), shape)
  }

  // ---- score combinations ----
  classifierScoreDirection(gUncond: Tensor, gCond: Tensor): Tensor {
    const op = "classifierScoreDirection"
    const shape = S.sameAs(op, ["gUncond", "gCond"], [gUncond, gCond])
    return this.#t(this.#ops.classifierScoreDirection(this.#dev, this.#h(op, "gUncond", gUncond), this.#h(op, "gCond", gCond)), shape)
  }
  fakeScoreMix(gUncond: Tensor, gCond: Tensor, gFake: Tensor, k: number): Tensor {
    const op = "fakeScoreMix"
    const shape = S.sameAs(op, ["gUncond", "gCond", "gFake"], [gUncond, gCond, gFake])
    S.expectFinite(op, "k", k)
    return this.#t(this.#ops.fakeScoreMix(this.#dev, this.#h(op, "gUncond", gUncond), this.#h(op, "gCond", gCond), this.#h(op, "gFake", gFake), k), shape)
  }
  energyPreservingRenorm(x: Tensor, ref: Tensor): Tensor {
    const op = "energyPreservingRenorm"
    const shape = S.sameAs(op, ["x", "ref"], [x, ref])
    S.rowsOf(op, x)
    return this.#t(this.#ops.energyPreservingRenorm(this.#dev, this.#h(op, "x", x), this.#h(op, "ref", ref)), shape)
  }
  velocityTarget(xt: Tensor, xRenorm: Tensor, t: Tensor): Tensor {
    const op = "velocityTarget"
    const shape = S.sameAs(op, ["xt", "xRenorm"], [xt, xRenorm])
    S.perRow(op, "t", t, S.rowsOf(op, xt).rows)
    return this.#t(this.#ops.velocityTarget(this.#dev, this.#h(op, "xt", xt), this.#h(op, "xRenorm", xRenorm), this.#h(op, "t", t)), shape)
  }
  selfEvaluationTarget(i: Ops.SelfEvaluationInputs): Tensor {
    const op = "selfEvaluationTarget"
    const names = ["x0", "x0Hat", "xt", "gUncond", "gCond", ...(i.gFake ? ["gFake"] : [])]
    const shape = S.sameAs(op, names, [i.x0, i.x0Hat, i.xt, i.gUncond, i.gCond, ...(i.gFake ? [i.gFake] : [])])
    const { rows } = S.rowsOf(op, i.x0)
    S.perRow(op, "t", i.t, rows)
    S.perRow(op, "lambda", i.lambda, rows)
    S.expectFinite(op, "k", i.k)
    return this.#t(
      this.#ops.selfEvaluationTarget(this.#dev, this.#h(op, "x0", i.x0), this.#h(op, "x0Hat", i.x0Hat), this.#h(op, "xt", i.xt), this.#h(op, "t", i.t), this.#h(op, "lambda", i.lambda), this.#h(op, "gUncond", i.gUncond), this.#h(op, "gCond", i.gCond), this.#opt(op, "gFake", i.gFake), i.k),
      shape
    )
  }
  cfgCombine(vUncond: Tensor, vCond: Tensor, omega: number): Tensor {
    const shape = S.sameAs("cfgCombine", ["vUncond", "vCond"], [vUncond, vCond])
    S.expectFinite("cfgCombine", "omega", omega)
    return this.#t(this.#ops.cfgCombine(this.#dev, this.#h("cfgCombine", "vUncond", vUncond), this.#h("cfgCombine", "vCond", vCond), omega), shape)
  }
  energyPreservingCfg(vUncond: Tensor, vCond: Tensor, omega: number): Tensor {
    const op = "energyPreservingCfg"
    const shape = S.sameAs(op, ["vUncond", "vCond"], [vUncond, vCond])
    S.rowsOf(op, vUncond)
    S.expectFinite(op, "omega", omega)
    return this.#t(this.#ops.energyPreservingCfg(this.#dev, this.#h(op, "vUncond", vUncond), this.#h(op, "vCond", vCond), omega), shape)
  }

  // ---- random ----
  randomUniform(shape: Shape, stream: Ops.RandomStream): Tensor {
    const s = S.checkShape("randomUniform", shape)
    S.randomStream("randomUniform", stream.seed, stream.offset)
    return this.#t(this.#ops.randomUniform(this.#dev, s, stream.seed, stream.offset), s)
  }
  randomNormal(shape: Shape, stream: Ops.RandomStream): Tensor {
    const s = S.checkShape("randomNormal", shape)
    S.randomStream("randomNormal", stream.seed, stream.offset)
    return this.#t(this.#ops.randomNormal(this.#dev, s, stream.seed, stream.offset), s)
  }

  // ---- optimizer ----
  adamw(state: Ops.AdamWState, hyper: Ops.AdamWHyper): void {
    const op = "adamw"
    S.tensorLists(op, [["params", state.params], ["grads", state.grads], ["m", state.m], ["v", state.v]])
    this.#ops.adamw(this.#dev, this.#list(op, "params", state.params), this.#list(op, "grads", state.grads), this.#list(op, "m", state.m), this.#list(op, "v", state.v), hyper.lr, hyper.beta1, hyper.beta2, hyper.eps, hyper.weightDecay, hyper.step)
  }
  emaUpdate(ema: ReadonlyArray<Tensor>, params: ReadonlyArray<Tensor>, decay: number): void {
    S.tensorLists("emaUpdate", [["ema", ema], ["params", params]])
    this.#ops.emaUpdate(this.#dev, this.#list("emaUpdate", "ema", ema), this.#list("emaUpdate", "params", params), decay)
  }
  adamwEma(state: Ops.AdamWEmaState, hyper: Ops.AdamWHyper, emaDecay: number): void {
    const op = "adamwEma"
    S.tensorLists(op, [["params", state.params], ["grads", state.grads], ["m", state.m], ["v", state.v], ["ema", state.ema]])
    this.#ops.adamwEma(this.#dev, this.#list(op, "params", state.params), this.#list(op, "grads", state.grads), this.#list(op, "m", state.m), this.#list(op, "v", state.v), this.#list(op, "ema", state.ema), hyper.lr, hyper.beta1, hyper.beta2, hyper.eps, hyper.weightDecay, hyper.step, emaDecay)
  }
  globalNorm(xs: ReadonlyArray<Tensor>): Tensor {
    S.tensorLists("globalNorm", [["xs", xs]])
    return this.#t(this.#ops.globalNorm(this.#dev, this.#list("globalNorm", "xs", xs)), [])
  }
  clipByNorm(xs: ReadonlyArray<Tensor>, norm: Tensor, maxNorm: number): void {
    S.tensorLists("clipByNorm", [["xs", xs]])
    S.expectDtype("clipByNorm", "norm", norm)
    S.expectShape("clipByNorm", "norm", norm, [])
    this.#ops.clipByNorm(this.#dev, this.#list("clipByNorm", "xs", xs), this.#h("clipByNorm", "norm", norm), maxNorm)
  }
}
