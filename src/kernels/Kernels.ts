import { Context, type Effect, type Scope } from "effect"
import type { Tensor } from "../tensor/Tensor.ts"
import type { KernelError } from "./errors.ts"
import type { BackendName, MemoryStats, StreamTimes, TensorOps } from "./ops.ts"

/** An op of TensorOps as an Effect: ops that make tensors need the Scope that will own them. */
type Lifted<F> = F extends (...args: infer A) => infer R
  ? (...args: A) => [R] extends [void] ? Effect.Effect<void, KernelError> : Effect.Effect<R, KernelError, Scope.Scope>
  : never

export type KernelOps = { readonly [K in keyof TensorOps]: Lifted<TensorOps[K]> }

/**
 * The kernel service every pipeline runs on: the same program runs on the CPU, on CUDA, on the pure
 * TypeScript reference or on mocks, chosen by the layer provided (see layers.ts).
 */
export interface KernelsService extends KernelOps {
  readonly backend: BackendName
  readonly device: string
  /** Whether bf16 tensors can be stored here (the CUDA backend does); mixed precision needs it. */
  readonly storesBf16: boolean
  /** Host copy of a tensor; waits for the stream, never blocks the JS thread. */
  read(x: Tensor): Effect.Effect<Float32Array | Float64Array | Int32Array, KernelError>
  /**
   * Queues a host copy of x now, behind everything enqueued so far, and returns the wait for it; x may be
   * released before the wait. Lets a loop enqueue its next step before it waits for this one's numbers.
   */
  startRead(x: Tensor): Effect.Effect<Effect.Effect<Float32Array | Float64Array | Int32Array, KernelError>, KernelError>
  /** The value of a one-element tensor (a loss, a norm). */
  readNumber(x: Tensor): Effect.Effect<number, KernelError>
  /** Waits until everything enqueued so far has run (surfaces a sticky device error). */
  sync(): Effect.Effect<void, KernelError>
  stats(): Effect.Effect<MemoryStats>
  /**
   * Seconds the stream thread has spent on each op so far (the CPU worker's arithmetic, CUDA's launch thread);
   * undefined on the reference backend, whose ops run on the caller's thread. profileSteps diffs two of these.
   */
  streamTimes(): Effect.Effect<StreamTimes | undefined>
}

export class Kernels extends Context.Tag("selfe/Kernels")<Kernels, KernelsService>() {}
