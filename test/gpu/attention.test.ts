import { attentionParity } from "./attentionParity.ts"

// The default kernels: tensor cores for bf16 at head dims 64 and 128, CUDA cores for the rest (an outside
// SELFE_CUDA_ATTENTION is cleared; the addon reads it at the first attention of this process).
delete process.env["SELFE_CUDA_ATTENTION"]
attentionParity("default kernels: tensor cores for bf16 at head dims 64 and 128")
