import { Schema } from "effect"

const field = <S extends Schema.Schema.Any>(schema: S, value: Schema.Schema.Type<S>, description: string) =>
  Schema.optionalWith(schema, { default: () => value }).annotations({ description })

const Probability = Schema.Number.pipe(Schema.between(0, 1))
const Fraction = Schema.Number.pipe(Schema.between(0, 1))

/**
 * Every coefficient of the Self-E objective (shared/spec/self-e.md). Fields marked [ours] are choices the
 * paper leaves open.
 */
export const ObjectiveConfig = Schema.Struct({
  kind: field(
    Schema.Literal("self-e", "flow-matching"),
    "self-e",
    "self-e: flow matching plus the self-evaluation critique; flow-matching: the baseline, the same code with s = t and no critique"
  ),
  timeLogitMean: field(Schema.Number, 0, "mean of z in t = sigmoid(z) (logit-normal time sampling)"),
  timeLogitStd: field(Schema.Number.pipe(Schema.positive()), 1, "std of z in t = sigmoid(z)"),
  timeShift: field(Schema.Number, 0, "shift mu: t' = e^mu / (e^mu + 1/t - 1); 0 at small resolutions [ours], 0.5 at 512 tokens in the paper"),
  timeClip: field(Schema.Number.pipe(Schema.between(0, 0.1)), 1e-3, "t is clipped to [clip, 1 - clip] [ours]"),
  landingEqualProbability: field(Probability, 0.5, "probability that s = t for a row (those rows are plain flow matching)"),
  tauRampFraction: field(Fraction, 0.4, "tau rises linearly from 0 to 1 over this fraction of training (300k of 710k in the paper); s ~ U((1 - tau) t, t)"),
  promptDropout: field(Probability, 0.1, "probability of replacing the prompt by the null prompt phi [ours]; dropped rows use s = t"),
  renoise: field(
    Schema.Literal("fresh", "same"),
    "fresh",
    "noise that re-noises the landing point to time s: fresh noise eps' [ours], or the same eps as x_t"
  ),
  fakeScore: field(
    Schema.Struct({
      enabled: field(Schema.Boolean, true, "use the fake-score term at all"),
      startFraction: field(Fraction, 0.77, "switched on at this fraction of training (550k of 710k in the paper)"),
      k: field(Probability, 0.9, "d = k (G_u - G_c) + (1 - k) (G_fake - G_c); 0.9 corresponds to guidance 10"),
      lossWeight: field(Schema.NonNegative, 1, "weight of L_fake, the fake branch's own loss on the model's samples [ours]")
    }),
    { enabled: true, startFraction: 0.77, k: 0.9, lossWeight: 1 },
    "the auxiliary fake score, late in training"
  )
})
export type ObjectiveConfig = typeof ObjectiveConfig.Type

export const SamplerConfig = Schema.Struct({
  steps: field(Schema.Int.pipe(Schema.between(1, 1000)), 2, "number of network evaluations per image (without guidance)"),
  landing: field(
    Schema.Literal("self-e", "flow-matching"),
    "self-e",
    "s_k = t_{k+1} (Self-E: jump to the next grid time) or s_k = t_k (plain flow-matching Euler)"
  ),
  eta: field(Schema.Literal(0, 1), 1, "0: Euler/DDIM-deterministic; 1: re-noise the predicted x0 with fresh noise (the paper's sampler)"),
  guidance: field(Schema.Literal("none", "cfg", "ep-cfg"), "ep-cfg", "classifier-free guidance: none, plain, or energy-preserving (rescaled to |V_c|)"),
  omega: field(Schema.Number.pipe(Schema.nonNegative()), 5, "guidance scale omega (5 in the paper)"),
  timeShift: field(Schema.Number, 0, "shift mu warping the linear time grid (as in training)"),
  singleStepLanding: field(Fraction, 0.5, "landing time s for a 1-step sample without guidance (0.5 worked best in the paper)"),
  seed: field(Schema.NonNegativeInt, 0, "seed of the initial noise and the eta = 1 re-noising")
})
export type SamplerConfig = typeof SamplerConfig.Type
