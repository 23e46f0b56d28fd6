import { Context, Effect, Scope } from "effect"
import { adopt, adoptNow, ownsTensors } from "../tensor/lifetime.ts"
import { Tensor } from "../tensor/Tensor.ts"
import { InvalidArgumentError, type KernelError, toKernelError } from "./errors.ts"
import type { KernelOps, KernelsService } from "./Kernels.ts"
import { type Backend, type TensorOps, tensorOpNames } from "./ops.ts"

type InPlaceOp = { [K in keyof TensorOps]: [ReturnType<TensorOps[K]>] extends [void] ? K : never }[keyof TensorOps]

/** The ops that make tensors (every other op mutates its arguments). */
export type OutputOp = Exclude<keyof TensorOps, InPlaceOp>

/** Ops that only mutate their arguments: they return nothing and need no Scope. */
const inPlaceOps: ReadonlySet<string> = new Set<InPlaceOp>(["write", "assign", "adamw", "emaUpdate", "adamwEma", "clipByNorm"])

const outputsOf = (result: unknown): Array<Tensor> => {
  if (result instanceof Tensor) return [result]
  if (typeof result === "object" && result !== null)
    return Object.values(result).filter((value): value is Tensor => value instanceof Tensor)
  return []
}

const liftOp = (backend: Backend, name: keyof TensorOps) => {
  const op = backend[name] as (...args: Array<unknown>) => unknown
  if (inPlaceOps.has(name))
    return (...args: Array<unknown>) =>
      Effect.suspend(() => {
        try {
          op.apply(backend, args)
          return Effect.void
        } catch (cause) {
          return Effect.fail(toKernelError(name, cause))
        }
      })
  // The Scope is read from the fiber in the same runtime step as the call: every op is host time on a
  // host-bound GPU step.
  return (...args: Array<unknown>) =>
    Effect.withFiberRuntime<unknown, KernelError, Scope.Scope>((fiber) => {
      let result: unknown
      try {
        result = op.apply(backend, args)
      } catch (cause) {
        return Effect.fail(toKernelError(name, cause))
      }
      return adopt(Context.unsafeGet(fiber.currentContext, Scope.Scope), outputsOf(result), result)
    })
}

/**
 * The backend under each service liftBackend made. Only those exact objects: a wrapper (Recording spreads the
 * service it wraps) is not here, so its ops are always called as its own.
 */
const backends = new WeakMap<KernelsService, Backend>()

/** What callNow answers where the op has to be called as an Effect. */
export const callAsEffect: unique symbol = Symbol("callAsEffect")

/**
 * Op `name` of the service run now, in the caller's runtime step, with no Effect of its own: where `service` is
 * one liftBackend made and `scope` already owns tensors, the op runs on its backend and its outputs become the
 * scope's, exactly as the lifted op does; it throws the op's KernelError. Anywhere else (a mock, a wrapper, a
 * scope's first tensors) it does nothing and answers callAsEffect. Autograd's ops take this path: thousands
 * of them make a DiT-S training step, each one host time on a host-bound GPU step.
 */
export const callNow = <K extends OutputOp>(service: KernelsService, name: K, args: Parameters<TensorOps[K]>, scope: Scope.Scope): ReturnType<TensorOps[K]> | typeof callAsEffect => {
  const backend = backends.get(service)
  // Asked before the call: a scope's first tensors need adopt's Effect, and the op must not run twice.
  if (backend === undefined || !ownsTensors(scope)) return callAsEffect
  let result: ReturnType<TensorOps[K]>
  try {
    result = (backend[name] as (...args: Parameters<TensorOps[K]>) => ReturnType<TensorOps[K]>)(...args)
  } catch (cause) {
    throw toKernelError(name, cause)
  }
  adoptNow(scope, outputsOf(result))
  return result
}

/** The Kernels service over a synchronous backend: Effects, typed errors, Scope-owned outputs. */
export const liftBackend = (backend: Backend): KernelsService => {
  const ops = Object.fromEntries(tensorOpNames.map((name) => [name, liftOp(backend, name)])) as unknown as KernelOps
  const read = (x: Tensor) =>
    Effect.tryPromise({ try: () => backend.read(x), catch: (cause): KernelError => toKernelError("read", cause) })
  const service: KernelsService = {
    ...ops,
    backend: backend.name,
    device: backend.device,
    storesBf16: backend.storesBf16,
    read: (x) => Effect.suspend(() => read(x)),
    startRead: (x) =>
      Effect.suspend(() => {
        let copy: Promise<Float32Array | Float64Array | Int32Array>
        try {
          copy = backend.read(x)
        } catch (cause) {
          return Effect.fail(toKernelError("read", cause))
        }
        // A wait nobody runs (the loop was interrupted) must not leave an unhandled rejection behind.
        copy.catch(() => undefined)
        return Effect.succeed(Effect.tryPromise({ try: () => copy, catch: (cause): KernelError => toKernelError("read", cause) }))
      }),
    readNumber: (x) =>
      x.numel === 1
        ? Effect.map(Effect.suspend(() => read(x)), (data) => data[0] as number)
        : Effect.fail(new InvalidArgumentError({ op: "readNumber", reason: `${x} has ${x.numel} elements, not 1` })),
    sync: () => Effect.tryPromise({ try: () => backend.sync(), catch: (cause) => toKernelError("sync", cause) }),
    stats: () => Effect.sync(() => backend.stats()),
    streamTimes: () => Effect.sync(() => backend.streamTimes())
  }
  backends.set(service, backend)
  return service
}
