/**
 * The systemd cgroup driver (cgroupDriver: "systemd", the CLI's --systemd-cgroup) against a real
 * systemd over D-Bus: the pure v2 guest of test/guest/run-suite.sh. Skipped, saying why, where
 * systemd is not PID 1, the cgroups are not pure v2, or the D-Bus client (@particle/dbus-next) is
 * not installed (run-suite.sh packs it when XC_GUEST_EXTRA_MODULES names a node_modules holding it).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import type { Spec } from "../../config/spec.ts"
import { create, dispose } from "../../promise.ts"
import { bundle, capture, expectNoTrace, stateRoot, systemdDriverSkip, uniq } from "./harness.ts"

const skip = systemdDriverSkip
if (skip) console.warn(`SKIPPING systemd cgroup driver tests: ${skip}`)

const root = skip ? "" : stateRoot()
const units: string[] = []
afterAll(async () => {
  await dispose()
  for (const u of units) spawnSync("systemctl", ["stop", u])
})

const show = (unit: string, prop: string) => spawnSync("systemctl", ["show", "-P", prop, unit], { encoding: "utf8" }).stdout.trim()
const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), "utf8").trim()
const withPath = (cgroupsPath: string, resources?: NonNullable<Spec["linux"]>["resources"]) => (s: Spec): Spec => ({
  ...s,
  linux: { ...s.linux, cgroupsPath, ...(resources ? { resources } : {}) },
})

describe.skipIf(skip)("the systemd cgroup driver, real systemd", () => {
  it("makes a delegated scope with the limits as properties and the rest in the files; update sets properties; delete stops the unit", async () => {
    const id = uniq("sdc")
    const unit = `xctest-${id}.scope`
    units.push(unit)
    const dir = `/sys/fs/cgroup/system.slice/${unit}`
    const io = capture()
    const b = bundle(
      ["sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.oom.group"],
      withPath(`system.slice:xctest:${id}`, {
        memory: { limit: 64 << 20 },
        cpu: { shares: 512, quota: 25000, period: 100000, burst: 5000 },
        pids: { limit: 16 },
        unified: { "memory.oom.group": "1" },
      }),
    )
    const c = await create({ root, id, bundle: b.dir, stdio: io.stdio, cgroupDriver: "systemd" })
    try {
      // systemd's unit, delegated, holding the init; its properties as runc sets them.
      expect({ active: show(unit, "ActiveState"), delegate: show(unit, "Delegate"), memoryMax: show(unit, "MemoryMax"), tasksMax: show(unit, "TasksMax"), slice: show(unit, "Slice") }).toEqual({
        active: "active",
        delegate: "yes",
        memoryMax: `${64 << 20}`,
        tasksMax: "16",
        slice: "system.slice",
      })
      expect(show(unit, "CPUQuotaPerSecUSec")).toBe("250ms")
      // The files: systemd's and the v2 manager's (burst and memory.oom.group have no systemd property).
      expect({ procs: read(dir, "cgroup.procs"), max: read(dir, "memory.max"), weight: read(dir, "cpu.weight"), cpu: read(dir, "cpu.max"), burst: read(dir, "cpu.max.burst"), oomGroup: read(dir, "memory.oom.group") }).toEqual({
        procs: `${c.pid}`,
        max: `${64 << 20}`,
        weight: "59",
        cpu: "25000 100000",
        burst: "5000",
        oomGroup: "1",
      })
      await c.update({ memory: { limit: 128 << 20 }, pids: { limit: 32 } })
      expect([show(unit, "MemoryMax"), show(unit, "TasksMax"), read(dir, "memory.max"), read(dir, "pids.max")]).toEqual([`${128 << 20}`, "32", `${128 << 20}`, "32"])
      await c.start()
      expect(await c.wait()).toEqual({ code: 0, signal: null })
      // The scope's directory is the container's /sys/fs/cgroup.
      expect(io.out()).toBe(`0::/\n${128 << 20}\n1\n`)
    } finally {
      await c.destroy({ force: true })
      io.close()
    }
    expect(fs.existsSync(dir)).toBe(false)
    expect(["inactive", ""]).toContain(show(unit, "ActiveState"))
    expect(show(unit, "LoadState")).not.toBe("loaded")
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("refuses a cgroupsPath it cannot parse, and a unit that exists already, before anything is made", async () => {
    const id = uniq("sdb")
    await expect(create({ root, id, bundle: bundle(["true"], withPath("system.slice:only-two")).dir, cgroupDriver: "systemd" })).rejects.toMatchObject({
      _tag: "ConfigError",
      path: "linux.cgroupsPath",
    })
    expect(expectNoTrace(root, id)).toEqual([])
    await expect(create({ root, id, bundle: bundle(["true"], withPath("no-such:xctest:x")).dir, cgroupDriver: "systemd" })).rejects.toMatchObject({
      _tag: "ConfigError",
      path: "linux.cgroupsPath",
    })
    // Two containers, one unit: the second is refused, the first is untouched.
    const first = uniq("sdu")
    const unit = `xctest-${first}.scope`
    units.push(unit)
    const a = await create({ root, id: first, bundle: bundle(["true"], withPath(`system.slice:xctest:${first}`)).dir, cgroupDriver: "systemd" })
    try {
      const other = uniq("sdu")
      await expect(create({ root, id: other, bundle: bundle(["true"], withPath(`system.slice:xctest:${first}`)).dir, cgroupDriver: "systemd" })).rejects.toMatchObject({
        _tag: "CgroupError",
        path: unit,
      })
      expect(expectNoTrace(root, other)).toEqual([])
      expect(show(unit, "ActiveState")).toBe("active")
    } finally {
      await a.destroy({ force: true })
    }
    expect(expectNoTrace(root, first)).toEqual([])
  })

  it("a systemd it cannot reach is a CgroupError naming the unit, and nothing is left (no unit, no cgroup, no state)", async () => {
    const id = uniq("sdx")
    const unit = `xctest-${id}.scope`
    units.push(unit)
    const saved = process.env["DBUS_SYSTEM_BUS_ADDRESS"]
    process.env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/run/no-such-bus-socket"
    try {
      await expect(create({ root, id, bundle: bundle(["true"], withPath(`system.slice:xctest:${id}`)).dir, cgroupDriver: "systemd" })).rejects.toMatchObject({
        _tag: "CgroupError",
        path: unit,
      })
    } finally {
      if (saved === undefined) delete process.env["DBUS_SYSTEM_BUS_ADDRESS"]
      else process.env["DBUS_SYSTEM_BUS_ADDRESS"] = saved
    }
    expect(fs.existsSync(`/sys/fs/cgroup/system.slice/${unit}`)).toBe(false)
    expect(show(unit, "LoadState")).not.toBe("loaded")
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("a start job systemd fails is a CgroupError naming the unit and the result; the unit is reset, nothing is left", async () => {
    // A slice unit systemd cannot load (a masked one) makes the scope's start job fail.
    const id = uniq("sdj")
    const slice = `xcmask${id.slice(4)}.slice`
    fs.symlinkSync("/dev/null", `/run/systemd/system/${slice}`)
    spawnSync("systemctl", ["daemon-reload"])
    const unit = `xctest-${id}.scope`
    units.push(unit)
    try {
      const r = create({ root, id, bundle: bundle(["true"], withPath(`${slice}:xctest:${id}`)).dir, cgroupDriver: "systemd" })
      await expect(r).rejects.toMatchObject({ _tag: "CgroupError", path: unit })
    } finally {
      fs.rmSync(`/run/systemd/system/${slice}`)
      spawnSync("systemctl", ["daemon-reload"])
    }
    expect(show(unit, "LoadState")).not.toBe("loaded")
    expect(expectNoTrace(root, id)).toEqual([])
  })
})
