import { Effect } from "effect"
import type { KernelsService } from "../kernels/Kernels.ts"
import type { Precision } from "../model/precision.ts"
import { ConfigError, type PrecisionChoice } from "./config.ts"

/** The precision a run uses on these kernels; bf16-mixed where bf16 cannot be stored is a ConfigError. */
export const resolvePrecision = (choice: PrecisionChoice, k: KernelsService): Effect.Effect<Precision, ConfigError> => {
  if (choice === "auto") return Effect.succeed(k.backend === "cuda" ? "bf16-mixed" : "f32")
  if (choice === "bf16-mixed" && !k.storesBf16)
    return Effect.fail(new ConfigError({ reason: `precision: bf16-mixed needs bf16 storage, which the ${k.backend} backend lacks (use the cuda backend, or precision f32 or auto)` }))
  return Effect.succeed(choice)
}
