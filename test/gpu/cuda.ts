import { spawnSync } from "node:child_process"
import { Effect, type Scope } from "effect"
import { describe, it } from "vitest"
import { Kernels, type KernelsService } from "../../src/kernels/Kernels.ts"
import { liftBackend } from "../../src/kernels/lift.ts"
import { loadAddon } from "../../src/kernels/native/binding.ts"
import { NativeBackend, type NativeOptions } from "../../src/kernels/native/NativeBackend.ts"

/**
 * What the GPU suite needs: whether the CUDA backend can run here (else why not), the CUDA and CPU backends
 * side by side, bf16 rounding as the device does it (shared with the reference backend), and the PyTorch
 * runner of the reference checks.
 */

export type Availability = { readonly available: true } | { readonly available: false; readonly reason: string }

/** Whether this addon has the CUDA backend and a GPU it can use. */
export const cudaAvailability = (): Availability => {
  let addon
  try {
    addon = loadAddon()
  } catch (cause) {
    return { available: false, reason: `the native addon does not load (${String(cause instanceof Error ? cause.message : cause)})` }
  }
  if (!addon.build.backends.split(",").includes("cuda"))
    return { available: false, reason: `the addon was built without CUDA (build.backends is "${addon.build.backends}": no nvcc or no cuBLAS(Lt) at build time)` }
  if (addon.cudaDeviceCount() === 0) return { available: false, reason: "no CUDA device is usable on this machine" }
  return { available: true }
}

/**
 * Whether the CUDA backend is the CPU emulator's (the vitest project "gpu-emulated", test/helpers/emulatedCudaAddon.ts):
 * its kernels run as the launch thread launches them, many times slower than a GPU, so the few cases that time
 * the stream or run long loops scale down or step aside there.
 */
export const cudaEmulated = process.env["SELFE_CUDA_EMULATED"] === "1"

/** Whether python3 can import torch (the reference checks spawn it). */
export const torchAvailability = (): Availability => {
  const probe = spawnSync("python3", ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" })
  if (probe.error !== undefined) return { available: false, reason: `python3 cannot be run (${probe.error.message})` }
  if (probe.status !== 0) return { available: false, reason: "python3 has no torch module" }
  return { available: true }
}

/**
 * A describe block that runs only where `availability` holds. Elsewhere its tests are skipped
 * (describe.skipIf), a skipped test titled with the reason shows in the report, and a console note says it.
 * Bodies create devices in beforeAll, which a skipped block never runs.
 */
export const describeWhen = (availability: Availability, title: string, body: () => void) => {
  describe.skipIf(!availability.available)(title, body)
  if (!availability.available) {
    console.warn(`[test/gpu] "${title}" skipped: ${availability.reason}`)
    describe(title, () => it.skip(`skipped: ${availability.reason}`, () => undefined))
  }
}

export const describeCuda = (title: string, body: () => void) => describeWhen(cudaAvailability(), title, body)

/** The CUDA backend and the CPU backend of the same addon, each lifted into the Kernels service. */
export const makeCudaAndCpu = (options: NativeOptions = {}) => {
  const addon = loadAddon()
  const cudaBackend = new NativeBackend(addon, { ...options, backend: "cuda" })
  const cpuBackend = new NativeBackend(addon)
  return {
    cudaBackend,
    cpuBackend,
    cuda: liftBackend(cudaBackend),
    cpu: liftBackend(cpuBackend),
    dispose: () => {
      cudaBackend.dispose()
      cpuBackend.dispose()
    }
  }
}

/** Runs a scoped effect on one Kernels service. */
export const runOn = <A, E>(kernels: KernelsService, effect: Effect.Effect<A, E, Kernels | Scope.Scope>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.provideService(effect, Kernels, kernels)))

/** x rounded to bf16 (nearest, ties to even), as the CUDA backend stores it. */
export { roundToBf16 } from "../../src/kernels/reference/bf16.ts"

export const rms = (xs: ArrayLike<number>): number => {
  let s = 0
  for (let i = 0; i < xs.length; i++) s += (xs[i] as number) ** 2
  return Math.sqrt(s / Math.max(1, xs.length))
}
