import cliProgress from "cli-progress"
import { Effect, Layer } from "effect"
import { TrainingObserver } from "../pipeline/observer.ts"

/**
 * The CLI's view of a run: a progress bar with loss, it/s and ETA on a terminal; on anything else (logs,
 * CI) one plain line every `every` steps. Events (samples, checkpoints) print as lines of their own.
 */
export const progressObserver = (every: number) =>
  Layer.scoped(
    TrainingObserver,
    Effect.gen(function* () {
      const tty = process.stderr.isTTY === true
      const bar = new cliProgress.SingleBar(
        {
          format: "{bar} {value}/{total} | loss {loss} | grad {grad} | {rate} it/s | ETA {eta_formatted}",
          stream: process.stderr,
          hideCursor: true,
          etaBuffer: 50
        },
        cliProgress.Presets.shades_classic
      )
      let started = false
      const startedAt = performance.now()
      yield* Effect.addFinalizer(() => Effect.sync(() => started && bar.stop()))
      // On a terminal, clear the bar's line first; the next update redraws it below the message.
      const say = (line: string) => process.stderr.write(`${tty && started ? "\r\x1b[2K" : ""}${line}\n`)
      return {
        onStep: (metrics, total) =>
          Effect.sync(() => {
            const rate = (metrics.step / ((performance.now() - startedAt) / 1000)).toFixed(2)
            const values = { loss: metrics.loss.toFixed(4), grad: metrics.gradNorm.toFixed(2), rate }
            if (tty) {
              if (!started) {
                bar.start(total, metrics.step - 1, values)
                started = true
              }
              bar.update(metrics.step, values)
            } else if (metrics.step % every === 0 || metrics.step === total) {
              say(`step ${metrics.step}/${total} loss ${values.loss} grad ${values.grad} ${rate} it/s`)
            }
          }),
        onEvent: (event) => Effect.sync(() => say(`${event.message}${event.path === undefined ? "" : ` (${event.path})`}`))
      }
    })
  )
