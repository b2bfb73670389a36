/** podman with bin/xcontainer as its runtime (test/clients/podman.sh; runnable on its own too). */
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { skipReason } from "../kernel/harness.ts"

const repo = path.resolve(import.meta.dirname, "..", "..")
const havePodman = spawnSync("podman", ["--version"]).status === 0
const reason = skipReason ?? (havePodman ? undefined : "podman is not installed (apt-get install podman; .ci/setup does)")
if (reason) console.warn(`SKIPPING podman tests: ${reason}`)

describe.skipIf(reason)("podman drives xcontainer", () => {
  it("runs, execs, stops and removes containers with limits and seccomp", () => {
    const r = spawnSync("bash", [path.join(repo, "test", "clients", "podman.sh")], { encoding: "utf8", timeout: 240_000 })
    expect(r.stdout.split("\n").filter((l) => l.startsWith("FAIL"))).toEqual([])
    expect(r.stdout).toMatch(/\n(\d+) passed, 0 failed\n/)
    expect(r.status).toBe(0)
  }, 300_000)
})
