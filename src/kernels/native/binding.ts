import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import type { Shape } from "../../tensor/dtype.ts"

/** The addon as JS sees it (docs/native-bindings.md): one Device class and ops.<name>(device, ...args). */
export interface NativeDevice {
  readonly __nativeDevice: unique symbol
}
type H = number
type Opt = H | undefined

export interface NativeStats {
  readonly liveTensors: number
  readonly liveBytes: number
  readonly cachedBytes: number
  readonly peakBytes: number
  readonly systemAllocs: number
  readonly limitBytes: number
  /** Worker threads of a CPU device (0 on CUDA). */
  readonly threads: number
  /**
   * Seconds the thread that drains the device's queue (the CPU worker, CUDA's launch thread) has spent running
   * queued work; on CUDA that includes time blocked in CUDA calls on a full GPU queue. Beside a step's time it
   * says whether that thread bounds the step (bench:host-profile).
   */
  readonly streamBusySeconds: number
  /** streamBusySeconds by op: each op's queued work (reads, syncs and uploads included), one entry per op name. */
  readonly streamOps: ReadonlyArray<{ readonly op: string; readonly calls: number; readonly seconds: number }>
  readonly failure: string
  readonly backend: "cpu" | "cuda"
  /** CUDA only: the device ordinal and the pinned host memory held for staging reads and writes. */
  readonly deviceIndex?: number
  readonly pinnedBytes?: number
  /** CUDA only: "auto" (bf16 attention at head dims 64 and 128 on tensor cores: warpgroup MMAs on sm_90, else mma.sync), "mma.sync" (tensor cores through mma.sync only) or "simt" (CUDA cores only). */
  readonly attentionKernels?: "auto" | "mma.sync" | "simt"
  /** CUDA only: "heuristic" (cuBLASLt's first algorithm per GEMM problem) or "timed" (the quickest of its candidates). */
  readonly gemmAlgorithms?: "heuristic" | "timed"
  /** CUDA only: "not-guaranteed" (bf16 attention's backward adds dq with atomics) or "run-to-run" (the same bits every run). */
  readonly determinism?: "not-guaranteed" | "run-to-run"
  /** CUDA only: the cuBLASLt workspace in bytes, the most device memory a GEMM algorithm may use. */
  readonly gemmWorkspaceBytes?: number
}

export interface NativeOps {
  empty(d: NativeDevice, dtype: number, shape: Shape): H
  full(d: NativeDevice, dtype: number, shape: Shape, value: number): H
  upload(d: NativeDevice, dtype: number, shape: Shape, data: Float32Array | Int32Array): H
  write(d: NativeDevice, x: H, data: Float32Array | Int32Array): void
  read(d: NativeDevice, x: H): Promise<Float32Array | Int32Array>
  view(d: NativeDevice, x: H, shape: Shape): H
  release(d: NativeDevice, x: H): void
  releaseAll(d: NativeDevice, handles: ReadonlyArray<H>): void
  shapeOf(d: NativeDevice, x: H): { shape: Array<number>; dtype: number }
  stats(d: NativeDevice): NativeStats
  sync(d: NativeDevice): Promise<void>
  emptyCache(d: NativeDevice): void
  dispose(d: NativeDevice): void
  add(d: NativeDevice, a: H, b: H): H
  sub(d: NativeDevice, a: H, b: H): H
  mul(d: NativeDevice, a: H, b: H): H
  mulRows(d: NativeDevice, x: H, s: H): H
  affine(d: NativeDevice, x: H, alpha: number, beta: number): H
  axpy(d: NativeDevice, x: H, y: H, alpha: number): H
  rowDot(d: NativeDevice, a: H, b: H, prefixRank: number): H
  copy(d: NativeDevice, x: H): H
  assign(d: NativeDevice, dst: H, src: H): void
  cast(d: NativeDevice, x: H, dtype: number): H
  castAll(d: NativeDevice, xs: ReadonlyArray<H>, dtype: number): Array<H>
  gelu(d: NativeDevice, x: H): H
  geluBackward(d: NativeDevice, dy: H, x: H): H
  silu(d: NativeDevice, x: H): H
  siluBackward(d: NativeDevice, dy: H, x: H): H
  layerNorm(d: NativeDevice, x: H, weight: Opt, bias: Opt, eps: number, dtype: number | undefined): [H, H, H]
  layerNormBackward(d: NativeDevice, dy: H, x: H, mean: H, rstd: H, weight: Opt, withBias: boolean, dxBase: Opt): [H, H | null, H | null]
  modulate(d: NativeDevice, x: H, shift: H, scale: H): H
  modulateBackward(d: NativeDevice, dy: H, x: H, scale: H): [H, H, H]
  /** dtype: y's dtype code (dtypeCode), x's when undefined. */
  layerNormModulate(d: NativeDevice, x: H, shift: H, scale: H, eps: number, dtype: number | undefined): [H, H, H]
  layerNormModulateBackward(d: NativeDevice, dy: H, x: H, mean: H, rstd: H, scale: H, dxBase: Opt): [H, H, H]
  gatedResidual(d: NativeDevice, x: H, gate: H, branch: H): H
  gatedResidualBackward(d: NativeDevice, dout: H, gate: H, branch: H): [H, H]
  /** heads 0: q, k, v are [B, L, H, D]; else [B, L, heads·D]. */
  attention(d: NativeDevice, q: H, k: H, v: H, keyMask: Opt, scale: number, heads: number): [H, H]
  attentionBackward(d: NativeDevice, dout: H, q: H, k: H, v: H, out: H, lse: H, keyMask: Opt, scale: number, heads: number): [H, H, H]
  matmul(d: NativeDevice, a: H, b: H, transA: boolean, transB: boolean, alpha: number): H
  linear(d: NativeDevice, x: H, weight: H, bias: Opt): H
  linearGelu(d: NativeDevice, x: H, weight: H, bias: Opt): [H, H]
  /** A gradient with a base (dxBase, dweightBase, dbiasBase) is the base plus the gradient. */
  linearBackward(d: NativeDevice, dy: H, x: H, weight: H, dx: boolean, dweight: boolean, dbias: boolean, dxBase: Opt, dweightBase: Opt, dbiasBase: Opt): [H | null, H | null, H | null]
  patchify(d: NativeDevice, x: H, patch: number): H
  unpatchify(d: NativeDevice, tokens: H, channels: number, height: number, width: number, patch: number): H
  concat(d: NativeDevice, tensors: Array<H>, axis: number): H
  narrow(d: NativeDevice, x: H, axis: number, start: number, length: number): H
  split(d: NativeDevice, x: H, axis: number, count: number): Array<H>
  pad(d: NativeDevice, x: H, axis: number, before: number, after: number): H
  embedding(d: NativeDevice, table: H, ids: H): H
  embeddingBackward(d: NativeDevice, dout: H, ids: H, vocab: number): H
  timestepEmbedding(d: NativeDevice, t: H, dim: number, maxPeriod: number): H
  sum(d: NativeDevice, x: H): H
  mean(d: NativeDevice, x: H): H
  sumAxis(d: NativeDevice, x: H, axis: number): H
  mse(d: NativeDevice, a: H, b: H): H
  mseRows(d: NativeDevice, a: H, b: H, prefixRank: number): H
  classifierScoreDirection(d: NativeDevice, gUncond: H, gCond: H): H
  fakeScoreMix(d: NativeDevice, gUncond: H, gCond: H, gFake: H, k: number): H
  energyPreservingRenorm(d: NativeDevice, x: H, ref: H): H
  velocityTarget(d: NativeDevice, xt: H, xRenorm: H, t: H): H
  selfEvaluationTarget(d: NativeDevice, x0: H, x0Hat: H, xt: H, t: H, lambda: H, gUncond: H, gCond: H, gFake: Opt, k: number): H
  cfgCombine(d: NativeDevice, vUncond: H, vCond: H, omega: number): H
  energyPreservingCfg(d: NativeDevice, vUncond: H, vCond: H, omega: number): H
  randomUniform(d: NativeDevice, shape: Shape, seed: number, offset: number): H
  randomNormal(d: NativeDevice, shape: Shape, seed: number, offset: number): H
  adamw(d: NativeDevice, params: Array<H>, grads: Array<H>, m: Array<H>, v: Array<H>, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void
  emaUpdate(d: NativeDevice, ema: Array<H>, params: Array<H>, decay: number): void
  adamwEma(d: NativeDevice, params: Array<H>, grads: Array<H>, m: Array<H>, v: Array<H>, ema: Array<H>, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, emaDecay: number): void
  globalNorm(d: NativeDevice, xs: Array<H>): H
  clipByNorm(d: NativeDevice, xs: Array<H>, norm: H, maxNorm: number): void
}

export interface NativeDeviceOptions {
  readonly backend?: "cpu" | "cuda"
  readonly deviceIndex?: number
  readonly threads?: number
  readonly memoryLimitBytes?: number
  readonly attentionKernels?: "auto" | "mma.sync" | "simt"
  readonly gemmAlgorithms?: "heuristic" | "timed"
  readonly determinism?: "not-guaranteed" | "run-to-run"
  readonly gemmWorkspaceBytes?: number
}

export interface NativeAddon {
  /** Throws a SELFE_DEVICE error for backend "cuda" where CUDA was not built or no GPU is usable. */
  readonly Device: new (options?: NativeDeviceOptions) => NativeDevice
  readonly ops: NativeOps
  /** backends: "cpu" or "cpu,cuda"; blas: "openblas" or "openblas,cublaslt". */
  readonly build: { readonly backends: string; readonly blas: string }
  /** Usable CUDA devices: 0 where CUDA was not built or no driver or GPU is present. */
  readonly cudaDeviceCount: () => number
}

/** Where `npm ci` / `npm run build` puts the addon; SELFE_NATIVE_ADDON points elsewhere. */
export const defaultAddonPath = fileURLToPath(new URL("../../../build/Release/selfe_native.node", import.meta.url))

let cached: NativeAddon | undefined

/** Loads the addon once; throws an Error that says how to build it when it is missing. */
export const loadAddon = (): NativeAddon => {
  if (cached !== undefined) return cached
  const path = process.env["SELFE_NATIVE_ADDON"] ?? defaultAddonPath
  try {
    cached = createRequire(import.meta.url)(path) as NativeAddon
  } catch (cause) {
    throw new Error(`cannot load the native addon at ${path} (build it with \`npm run build\`): ${String(cause)}`)
  }
  return cached
}
