import { Effect, Layer, type Scope } from "effect"
import { Kernels, type KernelsService } from "../../src/kernels/Kernels.ts"
import { liftBackend } from "../../src/kernels/lift.ts"
import { loadAddon } from "../../src/kernels/native/binding.ts"
import { NativeBackend } from "../../src/kernels/native/NativeBackend.ts"
import { ReferenceBackend } from "../../src/kernels/reference/ReferenceBackend.ts"

/** One device per backend for a whole test file (creating devices per case would dominate the run). */
export const makeBackends = () => {
  const nativeBackend = new NativeBackend(loadAddon())
  const referenceBackend = new ReferenceBackend({ precision: "f32" })
  const reference64Backend = new ReferenceBackend({ precision: "f64" })
  return {
    nativeBackend,
    referenceBackend,
    reference64Backend,
    native: liftBackend(nativeBackend),
    reference: liftBackend(referenceBackend),
    reference64: liftBackend(reference64Backend),
    dispose: () => {
      nativeBackend.dispose()
      referenceBackend.dispose()
      reference64Backend.dispose()
    }
  }
}

/** Runs a scoped effect on one Kernels service. */
export const runOn = <A, E>(kernels: KernelsService, effect: Effect.Effect<A, E, Kernels | Scope.Scope>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.provideService(effect, Kernels, kernels)))

export const layerOf = (kernels: KernelsService) => Layer.succeed(Kernels, kernels)
