import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Forks, not worker threads: each test file gets its own process, event loop and addon instance.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
})
