import { type DType, type Shape, dtypeBytes, formatShape, numelOf } from "./dtype.ts"

/** What a tensor's storage belongs to: a backend that knows how to release the handle. */
export interface TensorOwner {
  /** e.g. "cpu", "cuda:0", "reference" */
  readonly device: string
  releaseHandle(handle: unknown): void
  /** Frees many handles in one call (a closing Scope's tensors), each listed once. */
  releaseHandles(handles: ReadonlyArray<unknown>): void
}

/**
 * A handle on device memory with a fixed shape and dtype. Tensors are released when the Effect Scope
 * that created them closes (see `src/tensor/lifetime.ts`); `release()` frees one earlier. Autograd
 * metadata (`requiresGrad`) marks parameters; everything else about gradients lives on the tape.
 */
export class Tensor {
  #released = false
  /** True for trainable leaves (parameters); the tape tracks everything derived from them. */
  requiresGrad = false
  /** A label for traces and error messages, e.g. "blocks.0.attn.qkv.weight" or "ema.blocks.0...". */
  name: string | undefined
  /** The set of tensors its Scope will release (see lifetime.ts); an early release leaves it. */
  arena: Set<Tensor> | undefined

  constructor(
    readonly handle: unknown,
    readonly shape: Shape,
    readonly dtype: DType,
    readonly owner: TensorOwner
  ) {}

  get device(): string {
    return this.owner.device
  }

  get numel(): number {
    return numelOf(this.shape)
  }

  get bytes(): number {
    return this.numel * dtypeBytes[this.dtype]
  }

  get released(): boolean {
    return this.#released
  }

  /** Frees the storage (stream-ordered); idempotent. */
  release(): void {
    if (this.#released) return
    this.#released = true
    this.arena?.delete(this)
    this.arena = undefined
    this.owner.releaseHandle(this.handle)
  }

  /**
   * Releases every tensor of `tensors` not yet released, in order, with one call per owner: a closing Scope
   * frees thousands a training step, and each call into the addon is host time.
   */
  static releaseAll(tensors: Iterable<Tensor>): void {
    const byOwner = new Map<TensorOwner, Array<unknown>>()
    for (const tensor of tensors) {
      if (tensor.#released) continue
      tensor.#released = true
      tensor.arena?.delete(tensor)
      tensor.arena = undefined
      const handles = byOwner.get(tensor.owner)
      if (handles === undefined) byOwner.set(tensor.owner, [tensor.handle])
      else handles.push(tensor.handle)
    }
    for (const [owner, handles] of byOwner) owner.releaseHandles(handles)
  }

  toString(): string {
    return `Tensor(${this.name ?? "unnamed"}, ${this.dtype}${formatShape(this.shape)} on ${this.device}${this.#released ? ", released" : ""})`
  }
}
