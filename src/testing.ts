/**
 * `selfe/testing`: kernels for tests of pipeline logic. The Reference layer computes real numbers in
 * TypeScript (no addon needed); Recording keeps the op trace; Mock fails loudly on anything not stubbed.
 */
export { Reference } from "./kernels/layers.ts"
export { KernelTrace, Recording, type TraceEntry, type TensorInfo } from "./kernels/recording.ts"
export { Mock } from "./kernels/mock.ts"
export { gradcheck, type GradcheckInput, type GradcheckResult } from "./autograd/gradcheck.ts"
