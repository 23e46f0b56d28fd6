import { execFileSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

// scripts/gpu-check.sh samples nvidia-smi beside bench:gpu and summarises the samples with this script.
const script = fileURLToPath(new URL("../../scripts/gpu-clocks-summary.sh", import.meta.url))
const summarise = (csv: string) => {
  const file = join(mkdtempSync(join(tmpdir(), "selfe-clocks-")), "gpu-clocks.csv")
  writeFileSync(file, csv)
  return execFileSync("bash", [script, file], { encoding: "utf8" })
}

describe("scripts/gpu-clocks-summary.sh", () => {
  it("gives the SM clock's spread, the peaks and the samples per clock-event reason, skipping lines that are not samples", () => {
    const out = summarise(
      [
        "2026/11/26 10:00:00.000, 1980, 650.12, 55, 0x0000000000000000",
        "2026/11/26 10:00:00.100, 1755, 699.80, 61, 0x0000000000000004",
        "nvidia-smi: a line that is no sample",
        "2026/11/26 10:00:00.200, 1830, 690.00, 63, 0x0000000000000004",
        "2026/11/26 10:00:00.300, 1410, 420.50, 62, 0x0000000000000020",
        ""
      ].join("\n")
    )
    const lines = out.trim().split("\n")
    expect(lines[0]).toBe(
      "gpu clocks over the benchmark (4 samples, 100 ms apart): SM clock min 1410, median 1755, max 1980 MHz; power up to 700 W; up to 63 C"
    )
    expect(lines.slice(1).sort()).toEqual(
      ["  clock-event reasons 0x0000000000000000: 1 samples", "  clock-event reasons 0x0000000000000004: 2 samples", "  clock-event reasons 0x0000000000000020: 1 samples"].sort()
    )
  })

  it("says so where nvidia-smi left no samples", () => {
    expect(summarise("")).toMatch(/^gpu clocks: no samples in /)
  })
})
