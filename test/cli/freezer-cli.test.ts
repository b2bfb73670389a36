/** pause, resume and ps from the command line, one process per operation (as podman drives runc). */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { bundle, expectNoTrace, skipReason, stateRoot, uniq } from "../kernel/harness.ts"

const BIN = path.resolve(import.meta.dirname, "..", "..", "bin", "xcontainer")
const root = skipReason ? "" : stateRoot()
const xc = (...args: string[]) => {
  const r = spawnSync(BIN, ["--root", root, ...args], { encoding: "utf8", timeout: 20_000, stdio: ["ignore", "pipe", "pipe"] })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

beforeAll(() => {
  execFileSync("node", [path.resolve(import.meta.dirname, "..", "..", "cli", "bundle.mjs")], { cwd: path.resolve(import.meta.dirname, "..", "..") })
})

describe.skipIf(skipReason)("pause, resume and ps on the command line", () => {
  it("pauses, reports paused, lists pids, resumes, and refuses what the state forbids", () => {
    const id = uniq("clifrz")
    const b = bundle(["sh", "-c", "sleep 30 & sleep 30"])
    // A detached run's container keeps our stdio: give it /dev/null.
    const run = spawnSync(BIN, ["--root", root, "run", "-d", "-b", b.dir, id], { stdio: "ignore", timeout: 20_000 })
    expect(run.status).toBe(0)
    // busybox sh execs its last command: the init becomes one sleep, the other runs beside it.
    let pids: number[] = []
    for (let i = 0; i < 50 && pids.length < 2; i++) pids = JSON.parse(xc("ps", "--format", "json", id).out) as number[]
    expect(pids).toHaveLength(2)
    const table = xc("ps", id)
    expect(table.out.split("\n")[0]).toMatch(/PID/)
    expect(table.out.trim().split("\n").slice(1).map((l) => Number(l.trim().split(/\s+/)[1]))).toEqual(pids)
    expect(xc("pause", id).code).toBe(0)
    expect(JSON.parse(xc("state", id).out)).toMatchObject({ status: "paused" })
    const again = xc("pause", id)
    expect(again.code).toBe(1)
    expect(again.err).toMatch(/is paused: cannot pause/)
    expect(xc("resume", id).code).toBe(0)
    expect(JSON.parse(xc("state", id).out)).toMatchObject({ status: "running" })
    expect(xc("resume", id).err).toMatch(/is running: cannot resume/)
    expect(xc("pause", id).code).toBe(0)
    // delete -f of a paused container: thawed to let SIGKILL land, then removed.
    expect(xc("delete", "-f", id).code).toBe(0)
    expect(fs.existsSync(path.join(root, id))).toBe(false)
    expect(expectNoTrace(root, id)).toEqual([])
  })
})
