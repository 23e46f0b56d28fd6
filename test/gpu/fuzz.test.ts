import { bindingFuzz } from "../helpers/bindingFuzz.ts"
import { describeCuda } from "./cuda.ts"

// test/kernels/fuzz.test.ts's malformed calls on a CUDA device: its N-API glue, allocator and launchers.
describeCuda("fuzzing the native boundary of a CUDA device", bindingFuzz({ backend: "cuda" }))
