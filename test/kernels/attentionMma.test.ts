import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

/**
 * The CUDA backend's tensor-core attention kernels (native/cuda/attention_mma.cuh) run on the CPU: the C++
 * emulator test/native/attention_mma_emulator.cpp executes the kernels' own code thread by thread, with
 * ldmatrix and mma.sync emulated as the PTX ISA defines their fragments, and checks out, lse, dq, dk and dv
 * against float64 attention on masked, ragged shapes. This is what checks the kernels where no GPU is.
 */

const root = fileURLToPath(new URL("../..", import.meta.url))
const compiler = process.env["CXX"] ?? "c++"
const probe = spawnSync(compiler, ["--version"], { encoding: "utf8" })
const reason = probe.error === undefined && probe.status === 0 ? undefined : `no C++ compiler (${compiler}) can be run`

describe.skipIf(reason !== undefined)("tensor-core attention kernels, emulated on the CPU", () => {
  it("forward and backward match float64 attention at head dims 64 and 128", () => {
    const folder = mkdtempSync(join(tmpdir(), "selfe-mma-"))
    try {
      const program = join(folder, "attention_mma_emulator")
      const build = spawnSync(
        compiler,
        ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unknown-pragmas", "-I", "native/include", "-I", "native", "test/native/attention_mma_emulator.cpp", "-o", program],
        { cwd: root, encoding: "utf8" }
      )
      expect(build.status, `compiling the emulator:\n${build.stderr}`).toBe(0)
      expect(build.stderr, "compiler warnings").toBe("")
      const run = spawnSync(program, { encoding: "utf8", timeout: 240_000 })
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0)
      expect(run.stdout).toContain("all checks passed")
    } finally {
      rmSync(folder, { recursive: true, force: true })
    }
  }, 300_000)
})

if (reason !== undefined) {
  console.warn(`[test/kernels] tensor-core attention emulation skipped: ${reason}`)
  describe("tensor-core attention kernels, emulated on the CPU", () => it.skip(`skipped: ${reason}`, () => undefined))
}
