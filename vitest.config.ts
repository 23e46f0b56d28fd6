import { defineConfig } from "vitest/config"
import { emulatorUnavailable } from "./test/helpers/cudaEmulatorBuild.ts"
import { emulatedAddonPath } from "./test/helpers/emulatedCudaAddon.ts"

// The GPU suite's files that also run on the CUDA emulator (test/helpers/emulatedCudaAddon.ts): attention.test.ts
// is left out to keep npm test short (it passes there, in 122 s on 2 cores; test/kernels/cudaEmulated.test.ts runs
// the same kernels), torch.test.ts needs PyTorch.
const emulatedGpuFiles = ["test/gpu/stream.test.ts", "test/gpu/cublasLtTrace.test.ts", "test/gpu/ops.test.ts", "test/gpu/precision.test.ts", "test/gpu/training.test.ts", "test/kernels/fuzz.test.ts", "test/gpu/resume.test.ts"]

export default defineConfig({
  test: {
    // Native tensors live on a worker thread per process; forks keep each file's device isolated.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      // Everything, on the addon `npm ci` built (its CUDA cases run where it has CUDA and a GPU).
      { extends: true, test: { name: "unit", include: ["test/**/*.test.ts"] } },
      // The GPU suite's CUDA cases again, on the addon built for the CPU emulator (Linux with a C++ compiler).
      ...(emulatorUnavailable() === undefined
        ? [
            {
              extends: true as const,
              test: {
                name: "gpu-emulated",
                include: emulatedGpuFiles,
                globalSetup: ["test/helpers/emulatedCudaAddon.ts"],
                env: { SELFE_NATIVE_ADDON: emulatedAddonPath, SELFE_CUDA_EMULATED: "1" },
                testTimeout: 600_000,
                hookTimeout: 600_000
              }
            }
          ]
        : [])
    ]
  }
})
