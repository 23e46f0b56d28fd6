import { attentionParity } from "./attentionParity.ts"

// The CUDA-core kernels for every case, as SELFE_CUDA_ATTENTION=simt selects them (read by the addon at the
// first attention of this process; vitest runs each test file in its own process).
process.env["SELFE_CUDA_ATTENTION"] = "simt"
attentionParity("SELFE_CUDA_ATTENTION=simt: CUDA cores only")
