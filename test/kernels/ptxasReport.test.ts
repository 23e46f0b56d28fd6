import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { nvcc, nvccUnavailable as reason, runNvcc } from "../helpers/nvcc.ts"

/**
 * What ptxas says of the warpgroup (wgmma) attention kernels when it compiles them for sm_90a, on any machine with
 * nvcc (no GPU needed). wgmma runs asynchronously: where a kernel reads an accumulator, or issues and retires a
 * wgmma under a condition, in a way ptxas cannot prove safe, ptxas makes it safe by serializing every wgmma of the
 * kernel (info C7514) or injecting waits (C7517), and says so only in its verbose report; the kernels still
 * compute the right numbers (the emulator and the GPU suite pass), only slower. A spill is caught the same way.
 */

interface KernelReport {
  name: string
  registers: number
  spillBytes: number
  notes: Array<string>
}

/** ptxas -v's report per entry function: its registers, spill stores and loads, and its C75xx notes. */
export const parsePtxasReport = (log: string): Array<KernelReport> => {
  const kernels = new Map<string, KernelReport>()
  // ptxas prints a kernel's C75xx notes before the lines of its report, so they are matched by name at the end.
  const notes: Array<{ kernel: string; text: string }> = []
  let current: KernelReport | undefined
  for (const line of log.split("\n")) {
    const entry = /Compiling entry function '([^']+)'/.exec(line)
    if (entry !== null) {
      current = { name: entry[1]!, registers: -1, spillBytes: 0, notes: [] }
      kernels.set(current.name, current)
      continue
    }
    const note = /\((C75\d\d)\).*in (?:the )?function '([^']+)'/.exec(line)
    if (note !== null) {
      notes.push({ kernel: note[2]!, text: `${note[1]}: ${line.trim()}` })
      continue
    }
    if (current === undefined) continue
    const spills = /(\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line)
    if (spills !== null) current.spillBytes = Number(spills[1]) + Number(spills[2])
    const registers = /Used (\d+) registers/.exec(line)
    if (registers !== null) current.registers = Number(registers[1])
  }
  for (const note of notes) {
    const kernel = kernels.get(note.kernel)
    if (kernel === undefined) throw new Error(`a ptxas note names a kernel it reports nothing else of: ${note.text}`)
    kernel.notes.push(note.text)
  }
  return [...kernels.values()]
}

describe("ptxas's report on a made-up log", () => {
  it("reads registers, spills and C75xx notes per kernel", () => {
    const log = [
      "ptxas info    : (C7514) Potential Performance Loss: wgmma.mma_async instructions are serialized due to x in the function '_Z1aPf'",
      "ptxas info    : Compiling entry function '_Z1aPf' for 'sm_90a'",
      "    0 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads",
      "ptxas info    : Used 200 registers, used 1 barriers",
      "ptxas info    : Compiling entry function '_Z1bPf' for 'sm_90a'",
      "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads",
      "ptxas info    : Used 64 registers"
    ].join("\n")
    expect(parsePtxasReport(log)).toEqual([
      { name: "_Z1aPf", registers: 200, spillBytes: 12, notes: [expect.stringContaining("C7514")] },
      { name: "_Z1bPf", registers: 64, spillBytes: 0, notes: [] }
    ])
  })
})

describe.skipIf(reason !== undefined)(`ptxas on the wgmma attention kernels (sm_90a)${reason === undefined ? "" : ` — skipped: ${reason}`}`, () => {
  let folder = ""
  let kernels: Array<KernelReport> = []
  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), "selfe-ptxas-"))
    const args = ["-std=c++17", "-arch=sm_90a", "--expt-relaxed-constexpr", "-O3", "-Xptxas", "-v", "-I", "native/include", "-I", "native", "-c", "native/cuda/attention.cu", "-o", join(folder, "attention.o")]
    const { failed, log } = await runNvcc(args)
    if (failed) throw new Error(`${nvcc} ${args.join(" ")} failed: ${log}`)
    kernels = parsePtxasReport(log).filter((kernel) => /Wgmma/.test(kernel.name))
  }, 300_000)
  afterAll(() => rmSync(folder, { recursive: true, force: true }))

  it("finds the forwards and the backward's key kernels at head dims 64 and 128", () => {
    expect(kernels.map((kernel) => kernel.name.replace(/^_ZN5selfe4cuda5flash\d+/, "").slice(0, 18)).sort()).toEqual([
      "backwardWgmmaILi12",
      "backwardWgmmaILi64",
      "forwardWgmmaILi128",
      "forwardWgmmaILi64E"
    ])
  })

  it("leaves their wgmma asynchronous (no serialization or injected waits) and spills nothing", () => {
    for (const kernel of kernels) {
      expect(kernel.notes, kernel.name).toEqual([])
      expect(kernel.spillBytes, kernel.name).toBe(0)
      expect(kernel.registers, kernel.name).toBeGreaterThan(0)
    }
  })
})
