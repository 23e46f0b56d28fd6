import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { startTorchWorker } from "../../bench/torchWorker.ts"

// The fake worker is a node script (test/bench/fakeTorchWorker.mjs) speaking gpu_torch.py's protocol.
const fake = fileURLToPath(new URL("./fakeTorchWorker.mjs", import.meta.url))
const start = (mode: string) => startTorchWorker(fake, [mode], process.execPath)

describe("bench:gpu's PyTorch worker (bench/torchWorker.ts)", () => {
  it("answers cases in the order they were sent, a failed case with its reason, lines that are not JSON skipped", async () => {
    const worker = await start("answer")
    if (typeof worker === "string") throw new Error(worker)
    expect([worker.device, worker.version]).toEqual(["Fake GPU", "0.0"])
    const answers = await Promise.all([
      worker.time({ id: "a", reps: 5 }),
      worker.time({ id: "fail-b", reps: 6 }),
      worker.time({ id: "c", reps: 7 })
    ])
    expect(answers).toEqual([{ torch: 0.005, "torch cuDNN": null }, "ValueError: fail-b", { torch: 0.007, "torch cuDNN": null }])
    worker.close()
    expect(await worker.time({ id: "d", reps: 1 })).toBe("closed")
  })

  it("says why where the worker refuses to start or its interpreter is missing", async () => {
    expect(await start("refuse")).toBe("torch 0.0 sees no CUDA device")
    expect(await startTorchWorker(fake, [], "/nonexistent/python3")).toMatch(/^\/nonexistent\/python3 did not start: .*ENOENT/)
  })

  it("answers a request the worker died on, and every later one, with its exit", async () => {
    const worker = await start("die")
    if (typeof worker === "string") throw new Error(worker)
    expect(await worker.time({ id: "a", reps: 2 })).toEqual({ torch: 0.002, "torch cuDNN": null })
    expect(await worker.time({ id: "b", reps: 2 })).toBe("PyTorch's worker exited (status 3)")
    expect(await worker.time({ id: "c", reps: 2 })).toBe("PyTorch's worker exited (status 3)")
  })
})
