/**
 * `--systemd-cgroup` through the command line, one process per command as podman and containerd call
 * it, against the real systemd of the pure v2 guest (test/guest/run-suite.sh packs the built CLI
 * bundle when there is one). The flag is given to `run` only: update and delete find the driver in
 * the container's record. Skipped, saying why, elsewhere.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { bundle, stateRoot, systemdDriverSkip, uniq, WORK } from "./harness.ts"

const BIN = path.resolve(import.meta.dirname, "..", "..", "bin", "xcontainer")
const skip =
  systemdDriverSkip ?? (!fs.existsSync(path.resolve(import.meta.dirname, "..", "..", "dist", "cli.js")) ? "the CLI is not built (npm run build)" : undefined)
if (skip) console.warn(`SKIPPING systemd cgroup driver CLI tests: ${skip}`)

const root = skip ? "" : stateRoot()
const units: string[] = []
afterAll(() => {
  for (const u of units) spawnSync("systemctl", ["stop", u])
})
const show = (unit: string, prop: string) => spawnSync("systemctl", ["show", "-P", prop, unit], { encoding: "utf8" }).stdout.trim()

/** One CLI call, its output in a file (a detached container must not hold a pipe of ours open). */
function xc(...args: string[]) {
  const out = path.join(WORK, uniq("out"))
  const fd = fs.openSync(out, "w+")
  try {
    const r = spawnSync(BIN, ["--root", root, ...args], { stdio: ["ignore", fd, fd], timeout: 170_000 })
    return { status: r.status, out: fs.readFileSync(out, "utf8") }
  } finally {
    fs.closeSync(fd)
    fs.rmSync(out, { force: true })
  }
}

describe.skipIf(skip)("--systemd-cgroup on the command line, real systemd", () => {
  it("run -d makes the scope; update (no flag) sets its properties; delete (no flag) stops it", () => {
    const id = uniq("sdcli")
    const unit = `xccli-${id}.scope`
    units.push(unit)
    const b = bundle(["sleep", "1000"], (s) => ({ ...s, linux: { ...s.linux, cgroupsPath: `system.slice:xccli:${id}`, resources: { memory: { limit: 64 << 20 } } } }))
    const r = xc("--systemd-cgroup", "run", "-d", "-b", b.dir, id)
    expect(r).toEqual({ status: 0, out: "" })
    try {
      expect([show(unit, "ActiveState"), show(unit, "Delegate"), show(unit, "MemoryMax")]).toEqual(["active", "yes", `${64 << 20}`])
      expect(xc("update", "--memory", `${128 << 20}`, id).status).toBe(0)
      expect(show(unit, "MemoryMax")).toBe(`${128 << 20}`)
      expect(fs.readFileSync(`/sys/fs/cgroup/system.slice/${unit}/memory.max`, "utf8").trim()).toBe(`${128 << 20}`)
    } finally {
      expect(xc("delete", "-f", id).status).toBe(0)
    }
    expect(show(unit, "LoadState")).not.toBe("loaded")
    expect(fs.existsSync(`/sys/fs/cgroup/system.slice/${unit}`)).toBe(false)
    expect(fs.existsSync(path.join(root, id))).toBe(false)
  })
})
