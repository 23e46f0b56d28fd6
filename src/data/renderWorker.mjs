// A render worker's entry (src/data/renderPool.ts starts it): plain JavaScript, so that Node starts the thread
// without a loader; tsx then compiles the TypeScript it imports, as bin/selfe.mjs does for the CLI.
import { register } from "tsx/esm/api"

register()
await import("./renderWorkerLoop.ts")
