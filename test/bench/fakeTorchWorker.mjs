// A stand-in for bench/gpu_torch.py in torchWorker.test.ts, run by node. argv[2] picks its behaviour:
//   answer: times a case as {"torch": case.reps / 1000} ("fail" in the case's id: {"error"}), after a line that is not JSON
//   refuse: its first line is an error (no CUDA device)
//   die:    answers the first case, then exits on the second without answering
import { createInterface } from "node:readline"

const mode = process.argv[2]
const say = (message) => process.stdout.write(`${JSON.stringify(message)}\n`)
if (mode === "refuse") {
  say({ error: "torch 0.0 sees no CUDA device" })
  process.exit(1)
}
say({ device: "Fake GPU", torch: "0.0" })
let answered = 0
for await (const line of createInterface({ input: process.stdin })) {
  const c = JSON.parse(line)
  if (mode === "die" && answered === 1) process.exit(3)
  process.stdout.write("a warning that is not JSON\n")
  say(c.id.includes("fail") ? { error: `ValueError: ${c.id}` } : { torch: c.reps / 1000, "torch cuDNN": null })
  answered++
}
