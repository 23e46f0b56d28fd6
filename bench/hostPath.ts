/**
 * npm run bench:host [-- --against DIR] — the JS host path of a whole training step (bench/noopAddon.ts: the
 * model, autograd, Effect and lifetimes as ever, ops that do nothing), for DiT-S in bf16-mixed and f32 and the
 * tiny DiT: ms per step with one step in flight, and addon calls per step by op. With --against, the same
 * steps of another checkout of this project (its own src and bench, this tree's node_modules) run in this
 * process, rounds interleaved, so a change's ratio is measured side by side on a noisy machine.
 */
import { resolve } from "node:path"
import { parseArgs } from "node:util"

const { values } = parseArgs({ options: { against: { type: "string" }, rounds: { type: "string", default: "16" } } })
const rounds = Number(values.rounds)
if (!Number.isInteger(rounds) || rounds < 2) throw new Error(`--rounds must be an integer >= 2, got ${values.rounds}`)
const cases = [
  ["S", "bf16-mixed"],
  ["S", "f32"],
  ["tiny", "f32"]
] as const

interface Side {
  /** Milliseconds per step (one in flight) of one round of 5 steps. */
  readonly round: (preset: string, precision: string) => Promise<number>
  /** Addon calls per step by op name, over 4 steps. */
  readonly calls: (preset: string, precision: string) => Promise<Map<string, number>>
}

/** A checkout's step machinery on its own do-nothing addon, counting the calls that reach it. */
const load = async (root: string): Promise<Side> => {
  const { liftBackend } = await import(`${root}/src/kernels/lift.ts`)
  const { NativeBackend } = await import(`${root}/src/kernels/native/NativeBackend.ts`)
  const { noopAddon } = await import(`${root}/bench/noopAddon.ts`)
  const { secondsPerStep, stepBenchConfig } = await import(`${root}/bench/trainStep.ts`)
  const counts = new Map<string, number>()
  const counted = new Proxy(noopAddon.ops, {
    get: (target, name: string) => {
      const op = target[name]
      return (...args: Array<unknown>) => {
        counts.set(name, (counts.get(name) ?? 0) + 1)
        return op(...args)
      }
    }
  })
  const kernels = liftBackend(new NativeBackend({ ...noopAddon, ops: counted }, { backend: "cuda" }))
  const steps = (preset: string, precision: string, count: number) =>
    // 30 warm-up steps: the training stream's render workers start and warm up before the timed steps.
    secondsPerStep(kernels, stepBenchConfig({ model: { preset } }), precision, count, 1, 30)
  return {
    round: async (preset, precision) => (await steps(preset, precision, 5)).seconds.get("one in flight") * 1000,
    // Two runs that differ by 4 steps (each run builds the model and steps both schedules): their difference is 4 steps' calls.
    calls: async (preset, precision) => {
      counts.clear()
      await steps(preset, precision, 1)
      const short = new Map(counts)
      counts.clear()
      await steps(preset, precision, 3)
      return new Map([...counts].map(([name, n]) => [name, (n - (short.get(name) ?? 0)) / 4] as const).filter(([, n]) => n > 0))
    }
  }
}

const sides: Array<[string, Side]> = [["this tree", await load(resolve(import.meta.dirname, ".."))]]
if (values.against !== undefined) sides.push([values.against, await load(resolve(values.against))])
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

console.log(`JS host path of a training step, ops doing nothing (ms per step, one in flight, median of ${rounds - 1} rounds of 5 steps after 30 warm-up steps${sides.length > 1 ? ", sides interleaved" : ""})`)
for (const [preset, precision] of cases) {
  const times = sides.map(() => [] as Array<number>)
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? sides.map((_, i) => i) : sides.map((_, i) => sides.length - 1 - i)
    for (const i of order) {
      const ms = await (sides[i] as [string, Side])[1].round(preset, precision)
      // The first round warms each side's code (JIT) and is dropped.
      if (round > 0) times[i]?.push(ms)
    }
  }
  const medians = times.map(median)
  const calls = await Promise.all(sides.map(([, side]) => side.calls(preset, precision)))
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0)
  const label = `${preset === "tiny" ? "tiny DiT" : `DiT-${preset}`}, ${precision}`
  const cells = sides.map(([name], i) => `${name}: ${(medians[i] as number).toFixed(1)} ms, ${total(calls[i] as Map<string, number>)} calls`)
  const ratio = sides.length > 1 ? `; this / other ${((medians[0] as number) / (medians[1] as number)).toFixed(2)}` : ""
  console.log(`  ${label.padEnd(22)}${cells.join(" | ")}${ratio}`)
  const top = [...(calls[0] as Map<string, number>)].sort((a, b) => b[1] - a[1]).slice(0, 6)
  console.log(`  ${"".padEnd(22)}calls by op (this tree): ${top.map(([name, n]) => `${name} ${n}`).join(", ")}`)
}
