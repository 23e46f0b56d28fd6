import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Native tensors live on a worker thread per process; forks keep each file's device isolated.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
