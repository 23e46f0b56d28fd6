import { parseArgs } from "node:util"

/** The flags every training program takes: --set path=value (repeatable) and --resume FILE|latest. */
export const trainingArgs = () => {
  const { values } = parseArgs({
    options: { set: { type: "string", multiple: true, default: [] }, resume: { type: "string" } },
    strict: true
  })
  return { overrides: values.set ?? [], resume: values.resume }
}
