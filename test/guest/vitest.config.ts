/**
 * vitest for the guest suite (test/guest/run-suite.sh runs it inside the pure cgroup v2 guest).
 * No global setup: the CLI bundle and its V8 snapshot are built on the host, and the snapshot does
 * not load on the guest's emulated CPU; the suite drives the library. Node runs 15–30× slower under
 * emulation, hence the long timeouts, and every file in one process without isolation: there,
 * starting a fork and loading Effect and the sources again costs ~40 s per file (measured).
 */
import * as path from "node:path"
import { defineConfig } from "vitest/config"

export default defineConfig({
  root: path.resolve(import.meta.dirname, "..", ".."),
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    isolate: false,
    poolOptions: { forks: { singleFork: true } },
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
})
