import { Effect, Layer } from "effect"
import { UnstubbedOpError } from "./errors.ts"
import { Kernels, type KernelsService } from "./Kernels.ts"
import { tensorOpNames } from "./ops.ts"

const unstubbed = (op: string) => () =>
  Effect.fail(new UnstubbedOpError({ op, reason: "this mock Kernels layer has no stub for it" }))

/**
 * Kernels for tests that stub exactly what they use: every op left out fails with UnstubbedOpError, so a
 * forgotten stub is an error, never a silent zero.
 */
export const Mock = {
  layer: (stubs: Partial<KernelsService>): Layer.Layer<Kernels> => {
    const fallback = Object.fromEntries(
      [...tensorOpNames, "read", "startRead", "readNumber", "sync", "stats", "streamTimes"].map((name) => [name, unstubbed(name)])
    )
    const service = { backend: "mock", device: "mock", storesBf16: false, ...fallback, ...stubs } as KernelsService
    return Layer.succeed(Kernels, service)
  }
}
