import { describe } from "vitest"
import { bindingFuzz } from "../helpers/bindingFuzz.ts"

// The CUDA device's run of the same calls is test/gpu/fuzz.test.ts.
describe("fuzzing the native boundary of a CPU device", bindingFuzz({}))
