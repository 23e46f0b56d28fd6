import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "vitest"
import { lastProduct, parseTrace } from "../../bench/cublasLtTrace.ts"
import { gemmCases } from "../../bench/gemmCases.ts"
import { cudaEmulated, describeCuda } from "./cuda.ts"

// bench:gemm-kernels reads which kernel each side ran from cuBLASLt's Trace log. Here a selfe side's process
// (bench/gemmKernels.ts --side, at the smoke sizes) runs under that log, and the log must read back as exactly the
// products it ran: on the GPU machine this checks the reader against the real library's lines, on the emulator
// against its stand-in's.
const script = join(import.meta.dirname, "../../bench/gemmKernels.ts")
const problems = gemmCases(256, () => 1).filter((c) => c.gelu !== true)

const runSideLogged = (side: string) => {
  const log = join(mkdtempSync(join(tmpdir(), "selfe-cublaslt-trace-")), "trace.log")
  const { CUBLASLT_LOG_MASK: _mask, ...env } = process.env
  const run = spawnSync(process.execPath, ["--import", "tsx", script, "--side", side, "--smoke"], {
    env: { ...env, CUBLASLT_LOG_LEVEL: "2", CUBLASLT_LOG_FILE: log },
    encoding: "utf8"
  })
  expect(run.status, run.stderr).toBe(0)
  const library = (JSON.parse(run.stdout.trim().split("\n").at(-1)!) as { library: string | null }).library
  return { library, products: parseTrace(readFileSync(log, "utf8")) }
}

describeCuda("cuBLASLt's Trace log of a selfe GEMM side reads back as the products it ran", () => {
  it("the table's device: two products a problem, each of the problem's sizes and dtype, the BIAS epilogue and a 32 MiB workspace", () => {
    const { library, products } = runSideLogged("selfe")
    expect(products).toHaveLength(2 * problems.length)
    for (const c of problems)
      expect(lastProduct(products, { m: c.m, n: c.n, k: c.k, dtype: c.dtype }), c.label).toMatchObject({ epilogue: "BIAS", workspaceBytes: 32 << 20 })
    expect(products.every((p) => p.algorithm.startsWith("algoId="))).toBe(true)
    // The stand-in is linked into the emulated addon; a CUDA build loads the library file.
    if (cudaEmulated) expect(library).toBeNull()
    else expect(library).toMatch(/libcublasLt\.so/)
  })

  it("the 1 MiB device: every product given 1 MiB of workspace", () => {
    const { products } = runSideLogged("selfe gemmWorkspaceBytes 1 MiB")
    expect(products).toHaveLength(2 * problems.length)
    expect(new Set(products.map((p) => p.workspaceBytes))).toEqual(new Set([1 << 20]))
  })
})
