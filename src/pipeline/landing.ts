import { Effect } from "effect"
import { Kernels } from "../kernels/Kernels.ts"
import { interpolate } from "../selfe/interpolant.ts"
import { streamFor } from "../selfe/random.ts"
import type { Tensor } from "../tensor/Tensor.ts"
import type { RunContext } from "./context.ts"
import type { PreparedBatch } from "./prepare.ts"
import type { TrainState } from "./state.ts"

/** The model's jump from x_t: V(x_t, t, s, c) (recorded for autograd) and its landing point. */
export interface Landing {
  /** [B, C, H, W] the noise of x_t */
  readonly eps: Tensor
  readonly xt: Tensor
  /** V(x_t, t, s, c), with gradient */
  readonly velocity: Tensor
  /** x0_hat = G(x_t, t, s, c) = x_t - t V: a constant (the critique only reads it under sg) */
  readonly x0Hat: Tensor
}

/**
 * Stage "landing": noise the clean batch to x_t and let the online network jump towards time s.
 * Must run inside the step's tape (withTape) so the velocity can be differentiated.
 */
export const landing = (ctx: RunContext, state: TrainState, batch: PreparedBatch) =>
  Effect.gen(function* () {
    const k = yield* Kernels
    const eps = yield* k.randomNormal(batch.x0.shape, streamFor(ctx.config.seed, batch.step, "noise"))
    const xt = yield* interpolate(batch.x0, eps, batch.t, batch.oneMinusT)
    const velocity = yield* ctx.model.velocity(state.params, { x: xt, t: batch.t, gap: batch.gap, text: batch.cond, fake: batch.fakeOff })
    const x0Hat = yield* k.sub(xt, yield* k.mulRows(velocity, batch.t))
    return { eps, xt, velocity, x0Hat } satisfies Landing
  }).pipe(Effect.withSpan("landing"))
