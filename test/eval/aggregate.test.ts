import { describe, expect, it } from "vitest"
import { formatSummary, summarise } from "../../src/eval/aggregate.ts"

describe("GenEval aggregation", () => {
  it("averages tags without weighting by their image counts", () => {
    const verdicts = [
      ...Array.from({ length: 100 }, () => ({ tag: "counting" as const, correct: true })),
      { tag: "single_object" as const, correct: false },
      { tag: "single_object" as const, correct: true }
    ]
    const summary = summarise(verdicts)
    expect(summary.tags).toEqual([
      { tag: "single_object", correct: 1, total: 2, accuracy: 0.5 },
      { tag: "counting", correct: 100, total: 100, accuracy: 1 }
    ])
    expect(summary.overall).toBeCloseTo(0.75, 12)
    expect(formatSummary(summary)).toBe(
      ["single_object  0.5000  (1 / 2)", "counting       1.0000  (100 / 100)", "overall        0.7500"].join("\n")
    )
  })

  it("reports zero overall for no images", () => {
    expect(summarise([])).toEqual({ overall: 0, tags: [] })
  })
})
