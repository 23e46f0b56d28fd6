import { Context, Effect, FiberRef, Layer } from "effect"
import type { DType, Shape } from "../tensor/dtype.ts"
import { GradEnabled } from "../tensor/gradMode.ts"
import { Tensor } from "../tensor/Tensor.ts"
import { Kernels, type KernelsService } from "./Kernels.ts"
import { tensorOpNames } from "./ops.ts"

export interface TensorInfo {
  readonly shape: Shape
  readonly dtype: DType
  readonly name: string | undefined
}

/** One kernel call as a pipeline test sees it. */
export interface TraceEntry {
  readonly op: string
  readonly inputs: ReadonlyArray<TensorInfo>
  readonly outputs: ReadonlyArray<TensorInfo>
  /** Scalar arguments and options (numbers, booleans, strings), by position or option name. */
  readonly attrs: Readonly<Record<string, number | boolean | string>>
  /** Whether autograd was recording (false inside noGrad). */
  readonly gradEnabled: boolean
}

export interface KernelTraceService {
  /** A snapshot of the calls so far. */
  readonly entries: () => ReadonlyArray<TraceEntry>
  readonly clear: () => void
}

/** The op trace kept by the Recording layer. */
export class KernelTrace extends Context.Tag("selfe/KernelTrace")<KernelTrace, KernelTraceService>() {}

const info = (t: Tensor): TensorInfo => ({ shape: [...t.shape], dtype: t.dtype, name: t.name })

const tensorsIn = (value: unknown, out: Array<TensorInfo>) => {
  if (value instanceof Tensor) out.push(info(value))
  else if (Array.isArray(value)) for (const item of value) tensorsIn(item, out)
  else if (typeof value === "object" && value !== null) for (const item of Object.values(value)) tensorsIn(item, out)
}

const scalarsIn = (args: ReadonlyArray<unknown>) => {
  const attrs: Record<string, number | boolean | string> = {}
  args.forEach((arg, i) => {
    if (typeof arg === "number" || typeof arg === "boolean" || typeof arg === "string") attrs[`arg${i}`] = arg
    else if (typeof arg === "object" && arg !== null && !(arg instanceof Tensor) && !Array.isArray(arg))
      for (const [key, value] of Object.entries(arg))
        if (typeof value === "number" || typeof value === "boolean" || typeof value === "string") attrs[key] = value
  })
  return attrs
}

const record = (inner: KernelsService, entries: Array<TraceEntry>): KernelsService => {
  const wrapped = Object.fromEntries(
    tensorOpNames.map((name) => {
      const op = inner[name] as (...args: Array<unknown>) => Effect.Effect<unknown, unknown, unknown>
      return [
        name,
        (...args: Array<unknown>) =>
          Effect.flatMap(FiberRef.get(GradEnabled), (gradEnabled) =>
            Effect.tap(op(...args), (result) => {
              const inputs: Array<TensorInfo> = []
              const outputs: Array<TensorInfo> = []
              tensorsIn(args, inputs)
              tensorsIn(result, outputs)
              entries.push({ op: name, inputs, outputs, attrs: scalarsIn(args), gradEnabled })
            })
          )
      ]
    })
  )
  return { ...inner, ...wrapped } as KernelsService
}

/**
 * Wraps any Kernels layer and keeps the trace of every op call with its shapes, names and grad mode, for
 * tests of pipeline logic ("the critique's conditional pass reads the EMA weights under no-grad").
 */
export const Recording = {
  layer: <E, R>(inner: Layer.Layer<Kernels, E, R>): Layer.Layer<Kernels | KernelTrace, E, R> => {
    const traced = Layer.effectContext(
      Effect.gen(function* () {
        const kernels = yield* Kernels
        const entries: Array<TraceEntry> = []
        const trace: KernelTraceService = { entries: () => [...entries], clear: () => void entries.splice(0) }
        return Context.make(Kernels, record(kernels, entries)).pipe(Context.add(KernelTrace, trace))
      })
    )
    return Layer.provide(traced, inner)
  }
}
