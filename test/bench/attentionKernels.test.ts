import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { nvccUnavailable as reason, runNvcc } from "../helpers/nvcc.ts"

/**
 * bench/attention_kernels.cu (the warpgroup attention kernels timed alone, run by hand on an H100/H200) is built
 * by no script, so it would stop compiling unnoticed when the kernels' signatures or tilings change: this
 * compiles it for sm_90a wherever nvcc runs (no GPU needed).
 */

describe.skipIf(reason !== undefined)(`bench/attention_kernels.cu${reason === undefined ? "" : ` — skipped: ${reason}`}`, () => {
  const folder = mkdtempSync(join(tmpdir(), "selfe-attention-kernels-"))
  afterAll(() => rmSync(folder, { recursive: true, force: true }))

  it("compiles against the kernels of native/cuda, warning-free", async () => {
    const args = ["-std=c++17", "-arch=sm_90a", "--expt-relaxed-constexpr", "-O3", "-I", "native/cuda", "-I", "native", "-I", "native/include"]
    const output = await runNvcc([...args, "-c", "bench/attention_kernels.cu", "-o", join(folder, "attention_kernels.o")])
    expect(output.failed, output.log).toBe(false)
    expect(output.log).not.toMatch(/warning/i)
  }, 300_000)
})
