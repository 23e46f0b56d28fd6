import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { OptimizerConfig } from "../../src/pipeline/config.ts"
import { emaDecayAt, fakeScoreActive, learningRateAt } from "../../src/pipeline/schedules.ts"
import { ObjectiveConfig } from "../../src/selfe/config.ts"
import { shiftTime, tauAt } from "../../src/selfe/timeSampling.ts"

const optimizer = Schema.decodeUnknownSync(OptimizerConfig)({ lr: 1e-3, minLr: 1e-5, warmupSteps: 10, emaDecay: 0.999 })

describe("schedules at their boundaries", () => {
  it("tau is 0 at the start, reaches 1 exactly at the end of its ramp and stays there", () => {
    expect(tauAt(0, 1000, 0.4)).toBe(0)
    expect(tauAt(200, 1000, 0.4)).toBeCloseTo(0.5, 12)
    expect(tauAt(400, 1000, 0.4)).toBe(1)
    expect(tauAt(999, 1000, 0.4)).toBe(1)
    expect(tauAt(0, 1000, 0)).toBe(1)
  })

  it("the learning rate warms up linearly to lr, then decays linearly to minLr at the last step", () => {
    expect(learningRateAt(optimizer, 1, 110)).toBeCloseTo(1e-4, 15)
    expect(learningRateAt(optimizer, 10, 110)).toBeCloseTo(1e-3, 15)
    expect(learningRateAt(optimizer, 60, 110)).toBeCloseTo((1e-3 + 1e-5) / 2, 15)
    expect(learningRateAt(optimizer, 110, 110)).toBeCloseTo(1e-5, 15)
    expect(learningRateAt(optimizer, 200, 110)).toBeCloseTo(1e-5, 15)
  })

  it("the EMA decay warms up as min(decay, (1 + step) / (10 + step))", () => {
    expect(emaDecayAt(optimizer, 1)).toBeCloseTo(2 / 11, 15)
    expect(emaDecayAt(optimizer, 100_000)).toBe(0.999)
    expect(emaDecayAt({ ...optimizer, emaWarmup: false }, 1)).toBe(0.999)
  })

  it("the fake-score term is off before its switch and on from it, and never for flow matching", () => {
    const objective = Schema.decodeUnknownSync(ObjectiveConfig)({ fakeScore: { startFraction: 0.77 } })
    expect(fakeScoreActive(objective, 769, 1000)).toBe(false)
    expect(fakeScoreActive(objective, 770, 1000)).toBe(true)
    expect(fakeScoreActive({ ...objective, fakeScore: { ...objective.fakeScore, enabled: false } }, 999, 1000)).toBe(false)
    expect(fakeScoreActive({ ...objective, kind: "flow-matching" }, 999, 1000)).toBe(false)
  })

  it("the time shift is the identity at mu = 0 and pushes t towards 1 for mu > 0", () => {
    expect(shiftTime(0.3, 0)).toBe(0.3)
    expect(shiftTime(0.5, Math.log(3))).toBeCloseTo(0.75, 12)
    expect(shiftTime(0.3, 0.5)).toBeGreaterThan(0.3)
  })
})
