/**
 * The systemd driver's unit properties against a real systemd (the pure v2 guest of
 * test/guest/run-suite.sh; skipped, saying so, where systemd is not PID 1): the scope that
 * unitProperties describes is started with StartTransientUnit, systemd writes the limits into the
 * cgroup at the path parseSystemdPath computed, SetUnitProperties changes them, StopUnit ends it.
 * The bus is reached with busctl here, a test's stand-in until the driver's D-Bus client exists.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { ConfigError } from "../../effects/errors.ts"
import { parseSystemdPath, resourceProperties, unitProperties, type SystemdProperty } from "../../effects/cgroups-systemd.ts"
import { cgroupLayout, isRoot, uniq } from "./harness.ts"

const hasBusctl = spawnSync("busctl", ["--version"]).status === 0
const skip = !isRoot
  ? "needs root"
  : !fs.existsSync("/run/systemd/system")
    ? "systemd is not this host's init"
    : cgroupLayout !== "v2"
      ? `cgroups are ${cgroupLayout}, not pure v2`
      : !hasBusctl
        ? "no busctl"
        : undefined
if (skip) console.warn(`SKIPPING systemd scope tests: ${skip}`)

const SD = ["org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"]
const busctl = (...args: string[]) => {
  const r = spawnSync("busctl", args, { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`busctl ${args.join(" ")}: ${r.stderr}`)
  return r.stdout.trim()
}
/** busctl's argument syntax for a(sv): name, signature, then the value (arrays: count, items). */
const encode = (props: readonly SystemdProperty[]): string[] => [
  `${props.length}`,
  ...props.flatMap((p) => {
    const v = p.value
    switch (v.sig) {
      case "t":
        return [p.name, "t", v.value.toString()]
      case "b":
        return [p.name, "b", v.value ? "true" : "false"]
      case "s":
        return [p.name, "s", v.value]
      case "au":
        return [p.name, "au", `${v.value.length}`, ...v.value.map(String)]
      case "ay":
        return [p.name, "ay", `${v.value.length}`, ...[...v.value].map(String)]
    }
  }),
]
const units: string[] = []
afterAll(() => {
  for (const u of units) spawnSync("systemctl", ["stop", u])
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.skipIf(skip)("systemd scope from unitProperties", () => {
  it("StartTransientUnit makes the scope with the limits where parseSystemdPath says; SetUnitProperties updates; StopUnit ends it", async () => {
    const version = Number(/"(\d+)/.exec(busctl("get-property", ...SD, "Version"))![1])
    const id = uniq("sd")
    const place = parseSystemdPath(`system.slice:xctest:${id}`, id)
    if (place instanceof ConfigError) throw place
    units.push(place.unit)
    const child = spawn("sleep", ["60"], { stdio: "ignore" })
    const props = unitProperties(place, id, child.pid!, { memory: { limit: 64 << 20 }, cpu: { shares: 512, quota: 25000, period: 100000, cpus: "0" }, pids: { limit: 10 } }, version)
    if (props instanceof ConfigError) throw props
    busctl("call", ...SD, "StartTransientUnit", "ssa(sv)a(sa(sv))", place.unit, "replace", ...encode(props), "0")
    const dir = path.join("/sys/fs/cgroup", place.cgroup)
    // The call returns with the job queued: systemd makes the cgroup, then moves the pid into it.
    const cgroupOf = () => fs.readFileSync(`/proc/${child.pid}/cgroup`, "utf8").trim()
    for (let i = 0; i < 200 && cgroupOf() !== `0::${place.cgroup}`; i++) await sleep(50)
    expect(cgroupOf()).toBe(`0::${place.cgroup}`)
    const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8").trim()
    expect({ max: read("memory.max"), weight: read("cpu.weight"), cpu: read("cpu.max"), pids: read("pids.max"), cpus: read("cpuset.cpus") }).toEqual({
      max: `${64 << 20}`,
      weight: "59",
      cpu: "25000 100000",
      pids: "10",
      cpus: "0",
    })
    // Delegate=yes: the scope's subtree is ours to write (the knobs systemd has no property for).
    expect(busctl("get-property", "org.freedesktop.systemd1", `/org/freedesktop/systemd1/unit/${place.unit.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}`, "org.freedesktop.systemd1.Scope", "Delegate")).toBe("b true")
    const update = resourceProperties({ memory: { limit: 128 << 20 }, pids: { limit: 20 } }, version)
    if (update instanceof ConfigError) throw update
    busctl("call", ...SD, "SetUnitProperties", "sba(sv)", place.unit, "true", ...encode(update))
    expect([read("memory.max"), read("pids.max")]).toEqual([`${128 << 20}`, "20"])
    busctl("call", ...SD, "StopUnit", "ss", place.unit, "replace")
    const exit = await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(child.signalCode) : child.once("exit", (_c, s) => r(s))))
    expect(exit).toBe("SIGTERM")
    for (let i = 0; i < 100 && fs.existsSync(dir); i++) await sleep(50)
    expect(fs.existsSync(dir)).toBe(false)
  })
})
