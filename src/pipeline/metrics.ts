import type { StepMetrics } from "./step.ts"

/** Edges of the t bins the loss is reported in. */
export const T_BINS = [0, 0.2, 0.4, 0.6, 0.8, 1] as const

/** One line of metrics.jsonl: the window of steps since the previous line, summarised. */
export interface MetricsLine {
  readonly step: number
  readonly loss: number
  /** Mean row loss per t bin ([0, 0.2), [0.2, 0.4), ...), null for an empty bin. */
  readonly lossByT: ReadonlyArray<number | null>
  /** Mean over critique rows of |target shift|^2 / |flow target|^2. */
  readonly selfEvaluationShare: number
  readonly critiqueRowFraction: number
  readonly fakeLoss: number | null
  readonly gradNorm: number
  readonly learningRate: number
  readonly tau: number
  readonly stepsPerSecond: number
  readonly elapsedSeconds: number
}

const average = (values: ReadonlyArray<number>) => (values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length)

/** Summarises a window of steps (at least one) into a metrics line. */
export const summariseWindow = (window: ReadonlyArray<StepMetrics>, stepsPerSecond: number, elapsedSeconds: number): MetricsLine => {
  const last = window[window.length - 1] as StepMetrics
  const bins = T_BINS.slice(0, -1).map(() => [] as Array<number>)
  let rows = 0
  for (const m of window)
    m.rowLoss.forEach((loss, i) => {
      const t = m.t[i] as number
      bins[Math.min(bins.length - 1, Math.floor(t / (1 / bins.length)))]!.push(loss)
      rows++
    })
  const fake = window.flatMap((m) => (m.fakeLoss === undefined ? [] : [m.fakeLoss]))
  return {
    step: last.step,
    loss: average(window.map((m) => m.loss)),
    lossByT: bins.map((bin) => (bin.length === 0 ? null : average(bin))),
    selfEvaluationShare: average(window.filter((m) => m.critiqueRows > 0).map((m) => m.selfEvaluationShare)),
    critiqueRowFraction: window.reduce((n, m) => n + m.critiqueRows, 0) / Math.max(1, rows),
    fakeLoss: fake.length === 0 ? null : average(fake),
    gradNorm: average(window.map((m) => m.gradNorm)),
    learningRate: last.learningRate,
    tau: last.tau,
    stepsPerSecond,
    elapsedSeconds
  }
}
