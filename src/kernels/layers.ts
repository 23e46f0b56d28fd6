import { Config, Effect, Layer } from "effect"
import { match } from "ts-pattern"
import { DeviceError } from "./errors.ts"
import { Kernels } from "./Kernels.ts"
import { liftBackend } from "./lift.ts"
import { loadAddon } from "./native/binding.ts"
import { NativeBackend, type NativeOptions } from "./native/NativeBackend.ts"
import type { Backend } from "./ops.ts"
import { ReferenceBackend, type ReferenceOptions } from "./reference/ReferenceBackend.ts"

/** A backend acquired for the layer's lifetime and disposed when it closes. */
const scopedBackend = (make: () => Backend) =>
  Layer.scoped(
    Kernels,
    Effect.map(
      Effect.acquireRelease(
        Effect.try({ try: make, catch: (cause) => new DeviceError({ op: "device", reason: String(cause instanceof Error ? cause.message : cause) }) }),
        (backend) => Effect.sync(() => backend.dispose())
      ),
      liftBackend
    )
  )

/** The native addon's CPU backend (OpenBLAS GEMM, a worker-thread stream), or its CUDA one with backend "cuda". */
export const Native = (options: NativeOptions = {}) => scopedBackend(() => new NativeBackend(loadAddon(), options))

/**
 * The native addon's CUDA backend (cuBLASLt GEMM, fused kernels, one CUDA stream; bf16 storage on the ops
 * that take it). Fails with a DeviceError saying why where the addon was built without CUDA or no GPU is
 * usable.
 */
export const Cuda = (options: Omit<NativeOptions, "backend" | "threads"> = {}) => Native({ ...options, backend: "cuda" })

/** Pure TypeScript kernels with float64 accumulation: the numerical oracle and the default mock. */
export const Reference = (options: ReferenceOptions = { precision: "f32" }) => scopedBackend(() => new ReferenceBackend(options))

export type BackendChoice = "cpu" | "cuda" | "reference"

/** Config key SELFE_BACKEND picks the backend (default cpu). */
export const backendConfig = Config.literal("cpu", "cuda", "reference")("SELFE_BACKEND").pipe(Config.withDefault("cpu" as const))

export const forBackend = (choice: BackendChoice) =>
  match(choice)
    .with("cpu", () => Native())
    .with("reference", () => Reference())
    .with("cuda", () => Cuda())
    .exhaustive()

/** Kernels chosen by configuration (SELFE_BACKEND), as programs in pipelines/ use. */
export const fromConfig = Layer.unwrapEffect(Effect.map(backendConfig, forBackend))
