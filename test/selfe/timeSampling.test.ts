import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { ObjectiveConfig } from "../../src/selfe/config.ts"
import { sampleBatchTimes, selfEvaluationWeight } from "../../src/selfe/timeSampling.ts"

const objective = Schema.decodeUnknownSync(ObjectiveConfig)({})

describe("time sampling", () => {
  it("draws t in the clip range, s <= t, s = t for dropped rows, and the same times for the same (seed, step)", () => {
    const a = sampleBatchTimes(objective, 7, 3, 4096, 1)
    const again = sampleBatchTimes(objective, 7, 3, 4096, 1)
    expect(Array.from(again.t)).toEqual(Array.from(a.t))
    for (let i = 0; i < 4096; i++) {
      expect(a.t[i]).toBeGreaterThanOrEqual(1e-3)
      expect(a.t[i]).toBeLessThanOrEqual(1 - 1e-3)
      expect(a.s[i]).toBeLessThanOrEqual(a.t[i] as number)
      expect(a.s[i]).toBeGreaterThanOrEqual(0)
      if (a.dropped[i]) expect(a.s[i]).toBe(a.t[i])
    }
    const jumped = Array.from(a.s).filter((s, i) => s < (a.t[i] as number)).length / 4096
    const dropped = a.dropped.filter(Boolean).length / 4096
    expect(dropped).toBeGreaterThan(0.08)
    expect(dropped).toBeLessThan(0.12)
    // s < t for about half of the rows that kept their prompt.
    expect(jumped).toBeGreaterThan(0.4)
    expect(jumped).toBeLessThan(0.5)
  })

  it("with tau = 0 every row is flow matching (s = t), and the baseline never jumps", () => {
    const early = sampleBatchTimes(objective, 1, 0, 512, 0)
    expect(Array.from(early.s)).toEqual(Array.from(early.t))
    const baseline = sampleBatchTimes({ ...objective, kind: "flow-matching" }, 1, 5, 512, 1)
    expect(Array.from(baseline.s)).toEqual(Array.from(baseline.t))
  })

  it("is logit-normal: the median of t is near 1/2 and s lies in ((1 - tau) t, t)", () => {
    const { t, s } = sampleBatchTimes(objective, 11, 0, 8192, 0.5)
    const sorted = Array.from(t).sort((x, y) => x - y)
    expect(sorted[4096]).toBeGreaterThan(0.47)
    expect(sorted[4096]).toBeLessThan(0.53)
    for (let i = 0; i < 8192; i++) if (s[i]! < t[i]!) expect(s[i]).toBeGreaterThanOrEqual(0.5 * t[i]! - 1e-12)
  })

  it("weights the critique by lambda = t/(1-t) - s/(1-s), zero when s = t", () => {
    expect(selfEvaluationWeight(0.5, 0.5)).toBe(0)
    expect(selfEvaluationWeight(0.75, 0.5)).toBeCloseTo(2, 12)
  })
})
