/** `selfe profile`'s measurement: training steps' times, and the stream's time by op between two readings. */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Native, Reference } from "../../src/kernels/layers.ts"
import type { StreamTimes } from "../../src/kernels/ops.ts"
import { formatStepProfile, opRows, profileSteps, streamTimesBetween } from "../../src/pipeline/stepProfile.ts"
import { tinyConfig } from "../helpers/tinyRun.ts"

describe("the stream's time by op", () => {
  const before: StreamTimes = { busySeconds: 1, ops: [{ op: "linear", calls: 4, seconds: 0.5 }, { op: "add", calls: 2, seconds: 0.1 }] }
  const after: StreamTimes = {
    busySeconds: 3,
    ops: [{ op: "add", calls: 2, seconds: 0.1 }, { op: "linear", calls: 10, seconds: 1.7 }, { op: "attention", calls: 3, seconds: 0.3 }]
  }

  it("between two readings: each op called meanwhile, with its calls and seconds meanwhile", () => {
    const between = streamTimesBetween(before, after)
    expect(between.busySeconds).toBe(2)
    expect(between.ops).toHaveLength(2)
    expect(between.ops.find((time) => time.op === "linear")).toEqual({ op: "linear", calls: 6, seconds: expect.closeTo(1.2, 12) })
    expect(between.ops.find((time) => time.op === "attention")).toEqual({ op: "attention", calls: 3, seconds: 0.3 })
  })

  it("a step: calls, milliseconds and microseconds a call, the costliest op first", () => {
    const rows = opRows(streamTimesBetween(before, after), 3)
    expect(rows.map((row) => row.op)).toEqual(["linear", "attention"])
    expect(rows[0]).toEqual({ op: "linear", callsPerStep: 2, msPerStep: expect.closeTo(400, 9), usPerCall: expect.closeTo(200_000, 6) })
  })
})

describe("profiling training steps", () => {
  const config = tinyConfig()

  it("on the CPU: the stream's time by op, within its busy time, which is within the steps' time", async () => {
    const profile = await Effect.runPromise(profileSteps(config, "f32", 3, 1).pipe(Effect.provide(Native())))
    expect(profile).toMatchObject({ backend: "cpu", precision: "f32", steps: 3, warmup: 1 })
    const stream = profile.stream
    expect(stream).toBeDefined()
    if (stream === undefined) return
    const ops = new Map(stream.ops.map((row) => [row.op, row]))
    // One AdamW + EMA update and one global norm a step, whatever the model.
    expect(ops.get("adamwEma")?.callsPerStep).toBe(1)
    expect(ops.get("globalNorm")?.callsPerStep).toBe(1)
    expect(ops.get("linear")?.callsPerStep).toBeGreaterThan(0)
    const opMs = stream.ops.reduce((sum, row) => sum + row.msPerStep, 0)
    expect(opMs).toBeLessThanOrEqual(stream.busyMs)
    expect(stream.busyMs).toBeLessThanOrEqual(profile.stepMs)
    expect(profile.hostMs).toBeLessThanOrEqual(profile.stepMs)
    const table = formatStepProfile(profile)
    expect(table).toMatch(/^cpu \(cpu\), f32: steps 2–4 of the run after 1 warm-up steps/)
    expect(table).toMatch(/^adamwEma\s+1\.0\s+\d+\.\d\d\s+\d+\.\d%\s+\d+\.\d$/m)
  })

  it("from a later step of the run: what the schedules switch on there (the fake score's pass) is timed", async () => {
    const linearCalls = async (afterStep: number) => {
      const profile = await Effect.runPromise(profileSteps(config, "f32", 1, 0, afterStep).pipe(Effect.provide(Native())))
      expect(profile.afterStep).toBe(afterStep)
      return profile.stream?.ops.find((row) => row.op === "linear")?.callsPerStep ?? 0
    }
    // tinyConfig: 8 steps, the fake score from step 7 (0.77 of 8, rounded up).
    const early = await linearCalls(2)
    const late = await linearCalls(config.steps)
    expect(early).toBeGreaterThan(0)
    expect(late).toBeGreaterThan(early)
  })

  it("on the reference backend: the steps' times, and no stream to split", async () => {
    const profile = await Effect.runPromise(profileSteps(config, "f32", 1, 0).pipe(Effect.provide(Reference())))
    expect(profile.stream).toBeUndefined()
    expect(profile.stepMs).toBeGreaterThan(0)
    expect(formatStepProfile(profile)).toMatch(/the reference backend runs each op on the JS thread/)
  })
})
