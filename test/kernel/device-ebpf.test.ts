/**
 * The v2 device filter on the real kernel, in a cgroup under this host's
 * cgroup2 mount (/sys/fs/cgroup/unified on hybrid, /sys/fs/cgroup on pure v2): a process in it opens what the rules
 * allow and gets EPERM for the rest; an update swaps the program atomically
 * (BPF_F_REPLACE: exactly one program attached before and after).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import type { DeviceRuleSpec } from "../../config/spec.ts"
import { attachDeviceProgram, deviceFilterProgram } from "../../effects/device-filter.ts"
import { DEFAULT_DEVICE_RULES } from "../../effects/cgroups-v1-resources.ts"
import { addon } from "../../native/addon.ts"
import { CGROUP2, isRoot, uniq, WORK } from "./harness.ts"

const UNIFIED = CGROUP2
const noUnified = !isRoot
  ? "needs root"
  : (() => {
      try {
        return fs.statfsSync(UNIFIED).type === 0x63677270 ? undefined : `${UNIFIED} is not a cgroup2 mount`
      } catch {
        return `no ${UNIFIED}`
      }
    })()
if (noUnified) console.warn(`SKIPPING device eBPF tests: ${noUnified}`)

const made: string[] = []
// A cgroup is removed with rmdir (its files are not files); the shells that joined have exited.
afterAll(() => {
  for (const d of made) if (fs.existsSync(d)) fs.rmdirSync(d)
})

const install = (dir: string, rules: readonly DeviceRuleSpec[]) =>
  Effect.runPromise(Effect.flatMap(deviceFilterProgram(rules, dir), (p) => attachDeviceProgram(dir, p)))

/** Opens each path from a shell that first joins `dir`; "ok" or the shell's error per path. */
function opensFrom(dir: string, paths: readonly string[]): string[] {
  const script = `echo $$ > ${dir}/cgroup.procs || exit 9\n` + paths.map((p) => `if (exec 3<>${p}); then echo ok; else echo denied; fi`).join("\n")
  const r = spawnSync("/bin/sh", ["-c", script], { encoding: "utf8" })
  expect(r.status, r.stderr).toBe(0)
  return r.stdout.trim().split("\n")
}

describe.skipIf(noUnified)("device eBPF on the real kernel", () => {
  it("allows /dev/null, denies /dev/zero and a mknod'ed node with EPERM, and an update swaps them", async () => {
    const dir = path.join(UNIFIED, uniq("dev"))
    fs.mkdirSync(dir)
    made.push(dir)
    // A node of a device no rule allows, outside /dev: c 1:1 (/dev/mem).
    fs.mkdirSync(WORK, { recursive: true })
    const node = path.join(WORK, uniq("mem"))
    spawnSync("mknod", [node, "c", "1", "1"])
    try {
      await install(dir, [{ allow: true, type: "c", major: 1, minor: 3, access: "rw" }])
      const first = addon.bpfQueryDevicePrograms(dir)
      expect(first).toHaveLength(1)
      expect(opensFrom(dir, ["/dev/null", "/dev/zero", node])).toEqual(["ok", "denied", "denied"])
      // The shell's message names the errno: EPERM ("Operation not permitted"), not EACCES.
      const r = spawnSync("/bin/sh", ["-c", `echo $$ > ${dir}/cgroup.procs; exec 3</dev/zero`], { encoding: "utf8" })
      expect(r.stderr).toMatch(/Operation not permitted/)

      await install(dir, [{ allow: true, type: "c", major: 1, minor: 5, access: "r" }])
      const second = addon.bpfQueryDevicePrograms(dir)
      expect(second).toHaveLength(1)
      expect(second[0]).not.toBe(first[0])
      expect(opensFrom(dir, ["/dev/null", "/dev/zero"])).toEqual(["denied", "denied"]) // zero is r only; <> asks rw
      const ro = spawnSync("/bin/sh", ["-c", `echo $$ > ${dir}/cgroup.procs; exec 3</dev/zero && echo ok`], { encoding: "utf8" })
      expect(ro.stdout.trim()).toBe("ok")
    } finally {
      fs.rmSync(node, { force: true })
    }
  })

  it("runc's defaults: the usual devices open, others (the host's console 5:1 too) do not, mknod is allowed", async () => {
    const dir = path.join(UNIFIED, uniq("dev"))
    fs.mkdirSync(dir)
    made.push(dir)
    await install(dir, DEFAULT_DEVICE_RULES)
    const node = path.join(WORK, uniq("node"))
    const con = path.join(WORK, uniq("console"))
    try {
      const r = spawnSync("/bin/sh", ["-c", `echo $$ > ${dir}/cgroup.procs; mknod ${node} c 1 1 && mknod ${con} c 5 1 && echo made`], { encoding: "utf8" })
      expect(r.stdout.trim()).toBe("made")
      expect(opensFrom(dir, ["/dev/null", "/dev/zero", "/dev/full", "/dev/urandom", node, con])).toEqual(["ok", "ok", "ok", "ok", "denied", "denied"])
    } finally {
      for (const n of [node, con]) fs.rmSync(n, { force: true })
    }
  })

  it("replaces a program someone else attached too many of: attach then detach the old ones", async () => {
    const dir = path.join(UNIFIED, uniq("dev"))
    fs.mkdirSync(dir)
    made.push(dir)
    // Two programs attached (ALLOW_MULTI, no replace): the next install leaves exactly one.
    const p = await Effect.runPromise(deviceFilterProgram([{ allow: true, type: "c", major: 1, minor: 3, access: "rwm" }], dir))
    for (let i = 0; i < 2; i++) {
      const fd = addon.bpfLoadDeviceProgram(p, "GPL")
      addon.bpfAttachDeviceProgram(dir, fd)
      fs.closeSync(fd)
    }
    expect(addon.bpfQueryDevicePrograms(dir)).toHaveLength(2)
    await install(dir, [{ allow: true, type: "c", major: 1, minor: 5, access: "rwm" }])
    expect(addon.bpfQueryDevicePrograms(dir)).toHaveLength(1)
    expect(opensFrom(dir, ["/dev/null", "/dev/zero"])).toEqual(["denied", "ok"])
  })

  it("reports a program the verifier refuses with its log", () => {
    // r0 never set before exit.
    const bad = new Uint8Array([0x95, 0, 0, 0, 0, 0, 0, 0])
    let err: (Error & { code?: string; log?: string }) | undefined
    try {
      fs.closeSync(addon.bpfLoadDeviceProgram(bad, "GPL"))
    } catch (e) {
      err = e as Error & { code?: string; log?: string }
    }
    expect(err?.code).toBe("EACCES")
    expect(err?.log).toMatch(/R0 !read_ok/)
  })
})
