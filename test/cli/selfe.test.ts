/**
 * The CLI as a user runs it: `node bin/selfe.mjs ...` in a child process. Ground truth exported by
 * `shapes export` must score near 1 under `eval`, noise near 0, and bad input must end with one
 * clear line and exit code 1. (Each error kind is tested in-process in test/eval/folder.test.ts.)
 */
import { execFile } from "node:child_process"
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import sharp from "sharp"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { DEFAULT_HELD_OUT_PAIRS } from "../../src/data/config.ts"
import { heldOutPrompts } from "../../src/data/eval-sets.ts"
import { heldOut } from "../../src/data/held-out.ts"
import { Rng } from "../../src/data/rng.ts"
import { writeEvaluationFolder } from "../../src/eval/export-folder.ts"
import { noiseImage } from "../../src/eval/noise-image.ts"
import { tinyModel } from "../helpers/tinyRun.ts"

const bin = fileURLToPath(new URL("../../bin/selfe.mjs", import.meta.url))

const selfe = (...args: Array<string>) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [bin, ...args], (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
    )
  })

let dir = ""
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "selfe-cli-"))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const overallOf = async (jsonPath: string) => (JSON.parse(await readFile(jsonPath, "utf8")) as { overall: number }).overall

describe("selfe CLI", () => {
  it("renders a captioned grid PNG", async () => {
    const out = join(dir, "grid.png")
    const result = await selfe("shapes", "render", "--n", "6", "--out", out, "--tag", "counting", "--seed", "3")
    expect(result).toMatchObject({ code: 0, stderr: "" })
    expect(result.stdout).toContain("6 training pairs at 32x32")
    const meta = await sharp(out).metadata()
    expect(meta.format).toBe("png")
    expect(meta.width).toBe(6 + 3 * (160 + 6))
  })

  it("exports ground truth that eval scores at least 0.98, with a per-tag table and JSON", async () => {
    const folder = join(dir, "truth")
    expect((await selfe("shapes", "export", "--out", folder, "--set", "heldout", "--images-per-prompt", "1")).code).toBe(0)
    const json = join(dir, "truth.json")
    const result = await selfe("eval", "--images", folder, "--json", json)
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^colors\s+1\.0000 {2}\(40 \/ 40\)$/m)
    expect(result.stdout).toMatch(/^overall\s+\d\.\d{4}$/m)
    expect(await overallOf(json)).toBeGreaterThanOrEqual(0.98)
  })

  it("scores noise at most 0.05", async () => {
    const folder = join(dir, "noise")
    await Effect.runPromise(
      writeEvaluationFolder(folder, heldOutPrompts(heldOut(DEFAULT_HELD_OUT_PAIRS)), 1, (promptIndex) =>
        noiseImage(32, Rng.at(promptIndex))
      ).pipe(Effect.provide(NodeContext.layer))
    )
    const json = join(dir, "noise.json")
    expect((await selfe("eval", "--images", folder, "--json", json)).code).toBe(0)
    expect(await overallOf(json)).toBeLessThanOrEqual(0.05)
  })

  it("reports bad input in one line, without a stack trace, and exits 1", async () => {
    const folder = join(dir, "malformed")
    await mkdir(folder)
    await writeFile(join(folder, "prompts.jsonl"), '{"tag":"colors","prompt":"a photo of a red circle"}\n')
    const malformed = await selfe("eval", "--images", folder)
    expect(malformed.code).toBe(1)
    expect(malformed.stderr.trim()).toBe(`selfe: ${join(folder, "prompts.jsonl")}:1: include: is missing`)
  })

  it("profiles training steps of a config: the step, the JS thread and the worker, then the worker's time by op", async () => {
    const config = join(dir, "tiny.json")
    await writeFile(config, JSON.stringify({ name: "tiny-profile", data: { resolution: 16, batchSize: 4, prefetch: 0 }, model: tinyModel }))
    const result = await selfe("profile", "--config", config, "--steps", "2", "--warmup", "1")
    expect(result).toMatchObject({ code: 0, stderr: "" })
    // The config's 1000 steps (the default): the last two are timed.
    expect(result.stdout).toMatch(/^cpu \(cpu\), f32: steps 999–1000 of the run after 1 warm-up steps, one step in flight$/m)
    expect(result.stdout).toMatch(/^stream\s+\d+\.\d\d ms {2}worker \(the ops' arithmetic\)$/m)
    expect(result.stdout).toMatch(/^adamwEma\s+1\.0\s/m)
    const badSteps = await selfe("profile", "--config", config, "--steps", "0")
    expect(badSteps.code).toBe(1)
    expect(badSteps.stderr + badSteps.stdout).toContain("--steps must be an integer >= 1")
    const badModel = await selfe("profile", "--config", config, "--set", "model.patch=5")
    expect(badModel).toMatchObject({ code: 1, stdout: "" })
    expect(badModel.stderr.trim()).toBe("selfe: invalid training config: model.patch: resolution 16 is not divisible by patch 5")
  })
})
