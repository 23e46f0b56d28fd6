import { Effect, Scope } from "effect"
import { noGrad } from "../autograd/tape.ts"
import type { KernelError } from "../kernels/errors.ts"
import { Kernels } from "../kernels/Kernels.ts"
import { type HostPrompts, type TextInputs, nullPrompts, textInputs } from "../model/inputs.ts"
import type { Model } from "../model/model.ts"
import { copyPlanKey, withWeightCopies } from "../model/weightCopies.ts"
import type { ParamSet } from "../nn/params.ts"
import { keepIn } from "../tensor/lifetime.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import type { SamplerConfig } from "./config.ts"
import { streamFor } from "./random.ts"
import { shiftTime } from "./timeSampling.ts"

/** The grid 1 = t_1 > ... > t_{N+1} = 0: linear, warped by the shift mu. */
export const timeGrid = (steps: number, mu: number): ReadonlyArray<number> =>
  Array.from({ length: steps + 1 }, (_, k) => shiftTime(1 - k / steps, mu))

/** The landing time of step k (0-based): s_k = t_{k+1} for Self-E, s_k = t_k for flow matching. */
export const landingTimes = (config: SamplerConfig): ReadonlyArray<number> => {
  const grid = timeGrid(config.steps, config.timeShift)
  if (config.steps === 1 && config.guidance === "none" && config.landing === "self-e") return [config.singleStepLanding]
  return grid.slice(0, -1).map((t, k) => (config.landing === "self-e" ? (grid[k + 1] as number) : t))
}

/** Sampler steps are at most this many (SamplerConfig.steps), so each draw owns its re-noising streams. */
const MAX_STEPS = 1000

const rowsOf = (k: Kernels["Type"], value: number, rows: number) => k.full([rows], value)

/**
 * Any-step sampling (Eq. 22): from pure noise at t = 1, each step asks the network for V(x, t_k, s_k, c)
 * and moves to t_{k+1}: Euler (eta = 0), x <- x - (t_k - t_{k+1}) V, or re-noising the predicted x0 with
 * fresh noise (eta = 1). With guidance, the conditional and unconditional halves run as one batch of 2B.
 * Returns [B, C, H, W] in the data range (about [-1, 1]); each step's activations die with the step.
 */
export const sample = (
  model: Model,
  params: ParamSet,
  prompts: HostPrompts,
  config: SamplerConfig,
  /** Which batch of a larger sampling job this is: each draws its own noise. */
  draw = 0
): Effect.Effect<Tensor, KernelError, Kernels | Scope.Scope> =>
  noGrad(
    Effect.gen(function* () {
      const k = yield* Kernels
      const outer = yield* Scope.Scope
      const spec = model.spec
      const batch = prompts.tokens.length / spec.maxTokens
      const guided = config.guidance !== "none"
      const rows = guided ? 2 * batch : batch
      const text: TextInputs = yield* textInputs(
        spec,
        guided ? stackPrompts(prompts, nullPrompts(spec, batch), batch) : prompts
      )
      const noFake = yield* k.zeros([rows, 1])
      const imageShape = [batch, spec.channels, spec.resolution, spec.resolution]
      const start = yield* k.randomNormal(imageShape, streamFor(config.seed, draw, "sample"))
      const grid = timeGrid(config.steps, config.timeShift)
      const landing = landingTimes(config)
      // The passes share their bf16 weight copies (src/model/weightCopies.ts), released when the loop ends; the
      // weights one call casts are cast in one castAll by the next call on the same parameters.
      return yield* Effect.scoped(
        withWeightCopies(
          Effect.gen(function* () {
            let x = start
            for (let step = 0; step < config.steps; step++) {
              const tNow = grid[step] as number
              const tNext = grid[step + 1] as number
              const sNow = landing[step] as number
              x = yield* Effect.scoped(
                Effect.gen(function* () {
                  const input = guided ? yield* k.concat([x, x], 0) : x
                  const v = yield* model.velocity(params, { x: input, t: yield* rowsOf(k, tNow, rows), gap: yield* rowsOf(k, tNow - sNow, rows), text, fake: noFake })
                  const velocity = guided ? yield* guide(k, v, batch, config) : v
                  const next =
                    config.eta === 0
                      ? yield* k.axpy(-(tNow - tNext), velocity, x)
                      : yield* Effect.gen(function* () {
                          const x0 = yield* k.axpy(-tNow, velocity, x)
                          if (tNext === 0) return x0
                          const noise = yield* k.randomNormal(imageShape, streamFor(config.seed, draw * MAX_STEPS + step, "sampleRenoise"))
                          return yield* k.axpy(tNext, noise, yield* k.scale(x0, 1 - tNext))
                        })
                  return yield* keepIn(outer, next)
                })
              )
            }
            return x
          }),
          copyPlanKey(model, params)
        )
      )
    })
  )

/** Classifier-free guidance from the two halves of a 2B batch: [cond; uncond]. */
const guide = (k: Kernels["Type"], v: Tensor, batch: number, config: SamplerConfig) =>
  Effect.gen(function* () {
    const cond = yield* k.narrow(v, 0, 0, batch)
    const uncond = yield* k.narrow(v, 0, batch, batch)
    return config.guidance === "cfg" ? yield* k.cfgCombine(uncond, cond, config.omega) : yield* k.energyPreservingCfg(uncond, cond, config.omega)
  })

/** Rows of `a` (rowsA of them) followed by the rows of `b`. */
const stackPrompts = (a: HostPrompts, b: HostPrompts, rowsA: number): HostPrompts => {
  const join = (x: Int32Array, y: Int32Array) => {
    const out = new Int32Array(x.length + y.length)
    out.set(x)
    out.set(y, x.length)
    return out
  }
  return {
    tokens: join(a.tokens, b.tokens),
    mask: join(a.mask, b.mask),
    nullRows: [...Array.from({ length: rowsA }, (_, i) => a.nullRows[i] ?? false), ...b.nullRows]
  }
}
