import type { DType, Shape } from "../tensor/dtype.ts"
import type { Tensor } from "../tensor/Tensor.ts"

/**
 * The kernel contract: every op a text-to-image DiT and the Self-E critique need, with the backward kernels
 * autograd composes. Written synchronously here (a backend validates, enqueues and returns at once); the
 * `Kernels` service (Kernels.ts) lifts each op into an Effect that owns its outputs through a Scope.
 *
 * Conventions: tensors are row-major and contiguous; "rows" are the leading dimension(s) of a tensor, one
 * per sample; backward kernels return fresh gradients (they write, never accumulate). Element types: f32
 * everywhere; the CUDA backend also stores bf16 (fp32 arithmetic inside) for the ops whose docs in
 * docs/native-bindings.md say so, outputs taking their inputs' dtype.
 */
export interface TensorOps {
  // ---- creation and movement ------------------------------------------------------------------
  /** A tensor from host data (numbers are rounded to the dtype). */
  fromArray(data: ArrayLike<number>, shape: Shape, dtype?: DType): Tensor
  /** Uninitialised storage (for outputs written by in-place ops). */
  empty(shape: Shape, dtype?: DType): Tensor
  full(shape: Shape, value: number, dtype?: DType): Tensor
  zeros(shape: Shape, dtype?: DType): Tensor
  /** Overwrites x with host data, in stream order. */
  write(x: Tensor, data: ArrayLike<number>): void
  /** The same storage seen with another shape of equal size (a reshape, free). */
  view(x: Tensor, shape: Shape): Tensor
  copy(x: Tensor): Tensor
  /** dst <- src in place (same shape and dtype). */
  assign(dst: Tensor, src: Tensor): void
  /**
   * x as another element type: to bf16 rounds to nearest even (CUDA only; a bf16 copy of f32 master weights
   * for mixed precision), to i32 truncates toward zero (saturating, NaN to 0); the same dtype copies.
   */
  cast(x: Tensor, dtype: DType): Tensor
  /**
   * cast of every tensor of a list (all of one dtype) in one call: on CUDA one launch for a model's weights
   * (their bf16 copies, their gradients' way back).
   */
  castAll(xs: ReadonlyArray<Tensor>, dtype: DType): ReadonlyArray<Tensor>

  // ---- elementwise ----------------------------------------------------------------------------
  /**
   * a + b in a's dtype, where b has a's shape or is a trailing suffix of it (a bias). b may be bf16 beside an
   * f32 a: a bf16 branch's output added into an f32 residual stream, without a cast of its own.
   */
  add(a: Tensor, b: Tensor): Tensor
  /** a - b, broadcasting like `add`. */
  sub(a: Tensor, b: Tensor): Tensor
  /** a * b, broadcasting like `add`. */
  mul(a: Tensor, b: Tensor): Tensor
  /** x * s, with s's shape a leading prefix of x's: one factor per row (per sample). */
  mulRows(x: Tensor, s: Tensor): Tensor
  /** alpha * x + beta. */
  affine(x: Tensor, alpha: number, beta: number): Tensor
  /** alpha * x (the issue's `scale`). */
  scale(x: Tensor, alpha: number): Tensor
  /** alpha * x + y. */
  axpy(alpha: number, x: Tensor, y: Tensor): Tensor
  /** Per-row dot product: shape a.shape[:prefixRank], summing a*b over the remaining dimensions. */
  rowDot(a: Tensor, b: Tensor, prefixRank: number): Tensor

  // ---- activations ----------------------------------------------------------------------------
  /** GELU, tanh approximation (DiT's MLP). */
  gelu(x: Tensor): Tensor
  geluBackward(dy: Tensor, x: Tensor): Tensor
  silu(x: Tensor): Tensor
  siluBackward(dy: Tensor, x: Tensor): Tensor

  // ---- normalisation and adaLN ----------------------------------------------------------------
  /**
   * LayerNorm over the last dimension; mean and rstd (shape x.shape[:-1]) are saved for the backward. y is in
   * options.dtype: x's by default, or bf16 from an f32 x (a bf16 branch's input, without a cast of its own).
   */
  layerNorm(x: Tensor, options: LayerNormOptions): LayerNormResult
  /** dy in y's dtype (bf16 beside an f32 x after a bf16 y); dx, dweight, dbias in x's. */
  layerNormBackward(dy: Tensor, x: Tensor, saved: LayerNormSaved, options: LayerNormBackwardOptions): LayerNormGrads
  /** adaLN: x [B, L, D] * (1 + scale [B, D]) + shift [B, D]. */
  modulate(x: Tensor, shift: Tensor, scale: Tensor): Tensor
  modulateBackward(dy: Tensor, x: Tensor, scale: Tensor): ModulateGrads
  /**
   * adaLN's LayerNorm (no affine, over D) fused with the modulation: LN(x) (1 + scale) + shift for x [B, L, D]
   * in one pass; mean and rstd [B, L] are saved for the backward. y is in `dtype`: x's by default, or bf16
   * from an f32 x (the input of a bf16 branch in mixed precision, without a cast of its own).
   */
  layerNormModulate(x: Tensor, shift: Tensor, scale: Tensor, eps: number, dtype?: DType): LayerNormResult
  /**
   * dy in y's dtype (bf16 beside an f32 x after a bf16 y); dx, dshift, dscale in x's. With addTo.dx, dx is
   * addTo.dx plus the gradient (out of place; autograd's accumulation, without an add).
   */
  layerNormModulateBackward(dy: Tensor, x: Tensor, saved: LayerNormSaved, scale: Tensor, addTo?: GradientBases<"dx">): ModulateGrads
  /**
   * adaLN-Zero residual: x [B, L, D] + gate [B, D] * branch [B, L, D], in x's dtype. The branch may be bf16
   * beside an f32 x and gate (a bf16 branch's output, without a cast back of its own).
   */
  gatedResidual(x: Tensor, gate: Tensor, branch: Tensor): Tensor
  /** Gradients for gate (dout's dtype) and branch (the branch's dtype); the residual's dx is dout itself. */
  gatedResidualBackward(dout: Tensor, gate: Tensor, branch: Tensor): GatedResidualGrads

  // ---- attention and matrix products --------------------------------------------------------------
  /**
   * Softmax attention, q [B, Lq, H, D], k and v [B, Lk, H, D] -> out [B, Lq, H, D] and lse [B, H, Lq]
   * (or [B, L, H·D] with options.heads). keyMask (i32 [B, Lk], nonzero = attend) pads keys; a query with no
   * keys gets 0.
   */
  attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): AttentionResult
  attentionBackward(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, saved: AttentionResult, options: AttentionOptions): AttentionGrads
  /** Batched alpha * op(a) op(b): a [..., M, K], b [..., K, N] or [K, N] shared (transposes per option). */
  matmul(a: Tensor, b: Tensor, options?: MatmulOptions): Tensor
  /** x [..., In] W^T + bias, W stored [Out, In] (PyTorch's layout). */
  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor
  /**
   * gelu(x W^T + bias) (GELU's tanh approximation), with the pre-activation kept for the backward; on CUDA
   * one GEMM writes both (cuBLASLt's GELU_AUX epilogue).
   */
  linearGelu(x: Tensor, weight: Tensor, bias?: Tensor): LinearGeluResult
  /**
   * linear's gradients from dy [..., Out]: dx = dy W [..., In], dweight = dy^T x over every row [Out, In] and
   * dbias = dy summed over the rows [Out], each only where `options` asks; one call for a layer's backward.
   */
  linearBackward(dy: Tensor, x: Tensor, weight: Tensor, options: LinearBackwardOptions): LinearGrads

  // ---- layout -------------------------------------------------------------------------------------
  /** Image [B, C, H, W] to patch tokens [B, (H/p)(W/p), p*p*C], vector order (py, px, c). */
  patchify(x: Tensor, patch: number): Tensor
  unpatchify(tokens: Tensor, image: ImageGeometry): Tensor
  concat(tensors: ReadonlyArray<Tensor>, axis: number): Tensor
  /** x[..., start:start+length, ...] along axis (a copy). */
  narrow(x: Tensor, axis: number, start: number, length: number): Tensor
  /** x cut along axis into `count` equal parts, in order (copies; torch.chunk of a divisible axis). */
  split(x: Tensor, axis: number, count: number): ReadonlyArray<Tensor>
  /** Zeros around x along axis (narrow's backward). */
  pad(x: Tensor, axis: number, before: number, after: number): Tensor

  // ---- embeddings ---------------------------------------------------------------------------------
  /** table [V, D] looked up by i32 ids of any shape -> [...ids.shape, D]. */
  embedding(table: Tensor, ids: Tensor): Tensor
  embeddingBackward(dout: Tensor, ids: Tensor, vocab: number): Tensor
  /** Sinusoidal embedding of t [B] -> [B, dim] (cos half then sin half, DiT's order). */
  timestepEmbedding(t: Tensor, dim: number, maxPeriod?: number): Tensor

  // ---- reductions and losses ----------------------------------------------------------------------
  /** Sum of all elements, shape []. */
  sum(x: Tensor): Tensor
  /** Mean of all elements, shape []. */
  mean(x: Tensor): Tensor
  /** Sum over one axis, which is removed. */
  sumAxis(x: Tensor, axis: number): Tensor
  /** Mean squared error over all elements, shape []. */
  mse(a: Tensor, b: Tensor): Tensor
  /** Mean squared error per row: shape a.shape[:prefixRank]. */
  mseRows(a: Tensor, b: Tensor, prefixRank: number): Tensor

  // ---- score combinations of the critique and the sampler (no gradient) ---------------------------
  /** d = G_uncond - G_cond, the classifier-score direction. */
  classifierScoreDirection(gUncond: Tensor, gCond: Tensor): Tensor
  /** d = k (G_uncond - G_cond) + (1 - k) (G_fake - G_cond). */
  fakeScoreMix(gUncond: Tensor, gCond: Tensor, gFake: Tensor, k: number): Tensor
  /** Per row (dim 0): x |ref| / |x|. */
  energyPreservingRenorm(x: Tensor, ref: Tensor): Tensor
  /** (x_t - x_renorm) / t, t [rows]. */
  velocityTarget(xt: Tensor, xRenorm: Tensor, t: Tensor): Tensor
  /** The whole self-evaluation target in one kernel (direction, mix, renorm, velocity). */
  selfEvaluationTarget(inputs: SelfEvaluationInputs): Tensor
  /** v_u + omega (v_c - v_u). */
  cfgCombine(vUncond: Tensor, vCond: Tensor, omega: number): Tensor
  /** cfgCombine rescaled per row to the norm of v_c. */
  energyPreservingCfg(vUncond: Tensor, vCond: Tensor, omega: number): Tensor

  // ---- random numbers -----------------------------------------------------------------------------
  /** Philox4x32-10 uniforms in (0, 1); the same (seed, offset) gives the same numbers on every backend. */
  randomUniform(shape: Shape, stream: RandomStream): Tensor
  /** Philox4x32-10 standard normals (Box-Muller). */
  randomNormal(shape: Shape, stream: RandomStream): Tensor

  // ---- optimizer (in place) -----------------------------------------------------------------------
  /** Fused AdamW over lists of fp32 tensors (decoupled weight decay, bias-corrected moments). */
  adamw(state: AdamWState, hyper: AdamWHyper): void
  /** ema <- decay ema + (1 - decay) params. */
  emaUpdate(ema: ReadonlyArray<Tensor>, params: ReadonlyArray<Tensor>, decay: number): void
  /**
   * `adamw(state, hyper)` then `emaUpdate(state.ema, state.params, emaDecay)` (the EMA moves toward the
   * updated params) in one pass over memory: per element it reads p, g, m, v, ema and writes p, m, v, ema.
   * The same arithmetic as the two ops in sequence (bit for bit on the CPU backend); ema is validated like m
   * and v, emaDecay like emaUpdate's decay.
   */
  adamwEma(state: AdamWEmaState, hyper: AdamWHyper, emaDecay: number): void
  /** sqrt(sum of squares over all tensors), shape []. */
  globalNorm(xs: ReadonlyArray<Tensor>): Tensor
  /** xs *= min(1, maxNorm / (norm + 1e-6)), norm read on the stream (no host sync). */
  clipByNorm(xs: ReadonlyArray<Tensor>, norm: Tensor, maxNorm: number): void
}

export interface LayerNormOptions {
  readonly weight?: Tensor | undefined
  readonly bias?: Tensor | undefined
  readonly eps: number
  /** y's dtype: x's (the default), or bf16 from an f32 x. */
  readonly dtype?: DType | undefined
}
export interface LayerNormSaved {
  readonly mean: Tensor
  readonly rstd: Tensor
}
export interface LayerNormResult extends LayerNormSaved {
  readonly y: Tensor
}
export interface LayerNormBackwardOptions {
  readonly weight?: Tensor | undefined
  /** Whether the forward had a bias (dbias is computed only then). */
  readonly withBias: boolean
  readonly addTo?: GradientBases<"dx"> | undefined
}
/**
 * Tensors the named gradients are added to: each returned gradient is its base plus the gradient, a new
 * tensor (the base is unchanged), with the gradient's shape and dtype. The backward pass passes a tensor's
 * gradient so far, so that one used more than once needs no separate add (`src/autograd/backward.ts`).
 */
export type GradientBases<K extends string> = { readonly [G in K]?: Tensor | undefined }
export interface LayerNormGrads {
  readonly dx: Tensor
  readonly dweight: Tensor | undefined
  readonly dbias: Tensor | undefined
}
/** Which of linear's gradients to compute, and what to add them to (a base needs its gradient asked for). */
export interface LinearBackwardOptions {
  readonly dx: boolean
  readonly dweight: boolean
  readonly dbias: boolean
  readonly addTo?: GradientBases<"dx" | "dweight" | "dbias"> | undefined
}
export interface LinearGrads {
  readonly dx: Tensor | undefined
  readonly dweight: Tensor | undefined
  readonly dbias: Tensor | undefined
}
export interface LinearGeluResult {
  readonly y: Tensor
  /** x W^T + bias, GELU's input */
  readonly pre: Tensor
}
export interface ModulateGrads {
  readonly dx: Tensor
  readonly dshift: Tensor
  readonly dscale: Tensor
}
export interface GatedResidualGrads {
  readonly dgate: Tensor
  readonly dbranch: Tensor
}
export interface AttentionOptions {
  readonly keyMask?: Tensor | undefined
  /** Defaults to 1 / sqrt(head dim). */
  readonly scale?: number | undefined
  /**
   * Set, q is [B, Lq, H·D] and k, v [B, Lk, H·D] with H = heads (a linear layer's output as it is: the same
   * memory as [B, L, H, D], no reshape), and out and the gradients take their shapes.
   */
  readonly heads?: number | undefined
}
export interface AttentionResult {
  readonly out: Tensor
  readonly lse: Tensor
}
export interface AttentionGrads {
  readonly dq: Tensor
  readonly dk: Tensor
  readonly dv: Tensor
}
export interface MatmulOptions {
  readonly transA?: boolean | undefined
  readonly transB?: boolean | undefined
  readonly alpha?: number | undefined
}
export interface ImageGeometry {
  readonly channels: number
  readonly height: number
  readonly width: number
  readonly patch: number
}
export interface SelfEvaluationInputs {
  readonly x0: Tensor
  readonly x0Hat: Tensor
  readonly xt: Tensor
  /** [rows] */
  readonly t: Tensor
  /** [rows]: lambda_{s,t} = t/(1-t) - s/(1-s) */
  readonly lambda: Tensor
  readonly gUncond: Tensor
  readonly gCond: Tensor
  /** With the fake score: d = k (G_u - G_c) + (1 - k)(G_fake - G_c); without, d = G_u - G_c. */
  readonly gFake?: Tensor | undefined
  readonly k: number
}
export interface RandomStream {
  /** Integer in [0, 2^53). */
  readonly seed: number
  /** Philox block counter to start at (each block yields 4 numbers); integer in [0, 2^53). */
  readonly offset: number
}
export interface AdamWState {
  readonly params: ReadonlyArray<Tensor>
  readonly grads: ReadonlyArray<Tensor>
  readonly m: ReadonlyArray<Tensor>
  readonly v: ReadonlyArray<Tensor>
}
export interface AdamWEmaState extends AdamWState {
  /** The EMA weights, one per parameter (same shapes). */
  readonly ema: ReadonlyArray<Tensor>
}
export interface AdamWHyper {
  readonly lr: number
  readonly beta1: number
  readonly beta2: number
  readonly eps: number
  readonly weightDecay: number
  /** 1-based step count, for bias correction. */
  readonly step: number
}

/** Memory the backend holds, for leak tests and progress displays. */
export interface MemoryStats {
  readonly liveTensors: number
  readonly liveBytes: number
  readonly cachedBytes: number
  readonly peakBytes: number
  /** Allocations served by the system rather than the cache (flat in a steady-state step). */
  readonly systemAllocs: number
}

/**
 * The time a backend's stream thread spent on one op's work: on the CPU its arithmetic on the worker; on CUDA its
 * launch thread's CUDA and cuBLASLt calls (not the GPU's time); `read`, `sync` and `upload` are the stream's
 * part of those calls.
 */
export interface OpTime {
  readonly op: string
  readonly calls: number
  readonly seconds: number
}

/** Since the backend was made: the seconds its stream thread was busy, and their split by op. */
export interface StreamTimes {
  readonly busySeconds: number
  readonly ops: ReadonlyArray<OpTime>
}

/** A backend: the ops plus the host side of its stream. */
export interface Backend extends TensorOps {
  readonly name: BackendName
  readonly device: string
  /** Whether bf16 tensors can be stored (CUDA; the reference when emulating it); mixed precision needs it. */
  readonly storesBf16: boolean
  /** Host copy of a tensor, once the stream reaches the read. */
  read(x: Tensor): Promise<Float32Array | Float64Array | Int32Array>
  /** Resolves once everything enqueued so far has run. */
  sync(): Promise<void>
  stats(): MemoryStats
  /** The stream thread's time so far, by op; undefined where ops run on the caller's thread (the reference). */
  streamTimes(): StreamTimes | undefined
  dispose(): void
}

export type BackendName = "cpu" | "cuda" | "reference" | "mock"

/** Every op name, checked complete against TensorOps by the compiler (used by Recording, mocks, tests). */
export const tensorOpNames = Object.keys({
  fromArray: 0, empty: 0, full: 0, zeros: 0, write: 0, view: 0, copy: 0, assign: 0, cast: 0, castAll: 0,
  add: 0, sub: 0, mul: 0, mulRows: 0, affine: 0, scale: 0, axpy: 0, rowDot: 0,
  gelu: 0, geluBackward: 0, silu: 0, siluBackward: 0,
  layerNorm: 0, layerNormBackward: 0, modulate: 0, modulateBackward: 0, layerNormModulate: 0, layerNormModulateBackward: 0,
  gatedResidual: 0, gatedResidualBackward: 0,
  attention: 0, attentionBackward: 0, matmul: 0, linear: 0, linearGelu: 0, linearBackward: 0,
  patchify: 0, unpatchify: 0, concat: 0, narrow: 0, split: 0, pad: 0,
  embedding: 0, embeddingBackward: 0, timestepEmbedding: 0,
  sum: 0, mean: 0, sumAxis: 0, mse: 0, mseRows: 0,
  classifierScoreDirection: 0, fakeScoreMix: 0, energyPreservingRenorm: 0, velocityTarget: 0,
  selfEvaluationTarget: 0, cfgCombine: 0, energyPreservingCfg: 0,
  randomUniform: 0, randomNormal: 0,
  adamw: 0, emaUpdate: 0, adamwEma: 0, globalNorm: 0, clipByNorm: 0
} satisfies Record<keyof TensorOps, 0>) as ReadonlyArray<keyof TensorOps>
