/** containerd's ctr with bin/xcontainer as the runc binary of its runc.v2 shim (test/clients/containerd.sh). */
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { skipReason } from "../kernel/harness.ts"

const repo = path.resolve(import.meta.dirname, "..", "..")
const have = (cmd: string) => spawnSync(cmd, ["--version"]).status === 0
const reason =
  skipReason ?? (have("containerd") && have("ctr") && have("podman") ? undefined : "containerd, ctr and podman are needed (apt-get install containerd podman; .ci/setup does)")
if (reason) console.warn(`SKIPPING containerd tests: ${reason}`)

describe.skipIf(reason)("containerd drives xcontainer", () => {
  it("runs, execs, pauses, resumes, kills and deletes tasks, with a memory limit", () => {
    const r = spawnSync("bash", [path.join(repo, "test", "clients", "containerd.sh")], { encoding: "utf8", timeout: 240_000 })
    expect(r.stdout.split("\n").filter((l) => l.startsWith("FAIL"))).toEqual([])
    expect(r.stdout).toMatch(/\n(\d+) passed, 0 failed\n/)
    expect(r.status).toBe(0)
  }, 300_000)
})
