import { execFileSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

// scripts/gpu-check.sh samples nvidia-smi beside bench:gpu and summarises the samples with this script.
const script = fileURLToPath(new URL("../../scripts/gpu-clocks-summary.sh", import.meta.url))
const summarise = (csv: string, benchLog?: string) => {
  const folder = mkdtempSync(join(tmpdir(), "selfe-clocks-"))
  writeFileSync(join(folder, "gpu-clocks.csv"), csv)
  if (benchLog !== undefined) writeFileSync(join(folder, "bench-gpu.log"), benchLog)
  const args = [script, join(folder, "gpu-clocks.csv"), ...(benchLog === undefined ? [] : [join(folder, "bench-gpu.log")])]
  return execFileSync("bash", args, { encoding: "utf8" })
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

  it("given bench:gpu's log, gives each stamped row its samples' lowest and mean SM clock, mean power and mean utilization", () => {
    const bench = [
      "bench:gpu: a line without a stamp",
      "23:59:59.900 linear mlp down D=384 bf16 [65536x1536]x[1536x384]",
      "torch  linear mlp down ...: median 0.118 ms",
      "00:00:00.150 Self-E training step, bf16-mixed",
      "00:00:00.450 a row that got no sample"
    ].join("\n")
    const samples = [
      "2026/11/26 23:59:59.800, 1980, 300.00, 50, 0x0, 0", // before the first row: left out
      "2026/11/26 23:59:59.900, 1800, 690.00, 60, 0x4, 100",
      "2026/11/27 00:00:00.000, 1600, 700.00, 62, 0x4, 98",
      "2026/11/27 00:00:00.200, 1980, 400.00, 58, 0x0, 40",
      "2026/11/27 00:00:00.300, 1960, 420.00, 58, 0x0, 50"
    ].join("\n")
    const lines = summarise(samples, bench).trim().split("\n")
    const perRow = lines.slice(lines.findIndex((l) => l.startsWith("gpu clocks per row")) + 1)
    expect(perRow).toEqual([
      "  linear mlp down D=384 bf16 [65536x1536]x[1536x384]: 2 samples, SM clock 1600 / 1700 MHz, 695 W, 99% busy",
      "  Self-E training step, bf16-mixed: 2 samples, SM clock 1960 / 1970 MHz, 410 W, 45% busy",
      "  a row that got no sample: no samples"
    ])
  })

  it("reads samples without the utilization column, and says where the bench log has no stamped row", () => {
    const samples = "2026/11/26 10:00:00.000, 1980, 650.00, 55, 0x0\n2026/11/26 10:00:00.100, 1900, 660.00, 56, 0x0"
    expect(summarise(samples, "10:00:00.000 AdamW 128M params in 144 tensors f32\n")).toContain(
      "  AdamW 128M params in 144 tensors f32: 2 samples, SM clock 1900 / 1940 MHz, 655 W, utilization not sampled"
    )
    expect(summarise(samples, "no rows\n")).toContain("gpu clocks per row: no stamped rows in the bench log")
  })

  it("says so where nvidia-smi left no samples", () => {
    expect(summarise("")).toMatch(/^gpu clocks: no samples in /)
  })
})
