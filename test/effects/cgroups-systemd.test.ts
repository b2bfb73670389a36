/** The systemd cgroup driver's pure part: runc's path parsing, slice expansion and unit properties. */
import { describe, expect, it } from "vitest"
import { ConfigError } from "../../effects/errors.ts"
import { cpuQuotaProperties, expandSlice, parseSystemdPath, rangeToBits, resourceProperties, unitProperties, type SystemdProperty } from "../../effects/cgroups-systemd.ts"

const byName = (props: SystemdProperty[] | ConfigError) => {
  if (props instanceof ConfigError) throw props
  return Object.fromEntries(props.map((p) => [p.name, p.value.value]))
}

describe("systemd cgroup driver: placement", () => {
  it("expands slices as systemd lays them out (runc's ExpandSlice)", () => {
    expect(expandSlice("system.slice")).toEqual({ path: "/system.slice" })
    expect(expandSlice("a-b-c.slice")).toEqual({ path: "/a.slice/a-b.slice/a-b-c.slice" })
    expect(expandSlice("-.slice")).toEqual({ path: "/" })
    for (const bad of ["system", "a/b.slice", "a--b.slice", "-a.slice", "a-.slice", ".slice"]) expect(expandSlice(bad)).toHaveProperty("reason")
  })

  it('parses "slice:prefix:name" into a scope under the slice; "" is system.slice and the id', () => {
    expect(parseSystemdPath("system.slice:docker:1234", "x")).toEqual({ slice: "system.slice", unit: "docker-1234.scope", cgroup: "/system.slice/docker-1234.scope" })
    expect(parseSystemdPath("machine-pods.slice:crio:ab", "x")).toEqual({ slice: "machine-pods.slice", unit: "crio-ab.scope", cgroup: "/machine.slice/machine-pods.slice/crio-ab.scope" })
    expect(parseSystemdPath(":libpod:c1", "x")).toMatchObject({ slice: "system.slice", unit: "libpod-c1.scope" })
    expect(parseSystemdPath(undefined, "c9")).toEqual({ slice: "system.slice", unit: "xcontainer-c9.scope", cgroup: "/system.slice/xcontainer-c9.scope" })
    // A name ending in .slice is a slice unit of its own (runc's getUnitName).
    expect(parseSystemdPath("system.slice:x:pod1.slice", "x")).toMatchObject({ unit: "pod1.slice", cgroup: "/system.slice/pod1.slice" })
    expect(parseSystemdPath("-.slice:p:n", "x")).toMatchObject({ cgroup: "/p-n.scope" })
  })

  it("refuses what the driver cannot parse, naming linux.cgroupsPath", () => {
    for (const bad of ["/sys/fs/cgroup/x", "a:b", "a:b:c:d", "system:p:n", "system.slice:p:", "system.slice:p:a/b", "bad--x.slice:p:n"]) {
      const r = parseSystemdPath(bad, "x")
      expect(r, bad).toBeInstanceOf(ConfigError)
      expect(r).toMatchObject({ path: "linux.cgroupsPath" })
    }
  })
})

describe("systemd cgroup driver: unit properties (runc's genV2ResourcesProperties)", () => {
  it("converts the resources", () => {
    const p = byName(
      resourceProperties(
        { memory: { limit: 64 << 20, swap: 96 << 20, reservation: 16 << 20 }, cpu: { shares: 512, quota: 25000, period: 50000, cpus: "0-2,9", mems: "0" }, pids: { limit: 0 } },
        252,
      ),
    )
    expect(p).toEqual({
      MemoryMax: BigInt(64 << 20),
      MemoryLow: BigInt(16 << 20),
      MemorySwapMax: BigInt(32 << 20),
      CPUWeight: 59n,
      CPUQuotaPeriodUSec: 50000n,
      CPUQuotaPerSecUSec: 500000n,
      AllowedCPUs: new Uint8Array([0b111, 0b10]),
      AllowedMemoryNodes: new Uint8Array([1]),
    })
    expect(byName(resourceProperties({ pids: { limit: -1 } }, 252)).TasksMax).toBe(0xffffffffffffffffn)
  })

  it("rounds the quota up to 10 ms as systemd keeps it, infinity without one; period only on systemd ≥ 242", () => {
    expect(byName(cpuQuotaProperties(12345, 100000, 252))).toEqual({ CPUQuotaPeriodUSec: 100000n, CPUQuotaPerSecUSec: 130000n })
    expect(byName(cpuQuotaProperties(-1, 100000, 241))).toEqual({ CPUQuotaPerSecUSec: 0xffffffffffffffffn })
    expect(cpuQuotaProperties(0, 0, 252)).toEqual([])
  })

  it("maps the unified keys systemd knows; idle wins over a weight; the rest is left to the files", () => {
    const p = byName(resourceProperties({ unified: { "memory.high": "max", "pids.max": "0", "cpu.max": "max 20000", "io.weight": "default 100" } }, 252))
    expect(p).toEqual({ MemoryHigh: 0xffffffffffffffffn, TasksMax: 1n, CPUQuotaPeriodUSec: 20000n, CPUQuotaPerSecUSec: 0xffffffffffffffffn })
    expect(byName(resourceProperties({ unified: { "cpu.idle": "1", "cpu.weight": "50" } }, 252))).toEqual({ CPUWeight: 0n })
    expect(byName(resourceProperties({ unified: { "cpu.weight": "50" } }, 251))).toEqual({ CPUWeight: 50n })
    expect(resourceProperties({ unified: { "memory.max": "lots" } }, 252)).toMatchObject({ _tag: "ConfigError", path: "linux.resources.unified" })
  })

  it("makes the scope with Delegate, the init's pid and accounting on", () => {
    const place = parseSystemdPath("system.slice:xc:c1", "c1")
    if (place instanceof ConfigError) throw place
    const p = byName(unitProperties(place, "c1", 4242, { memory: { limit: 1 << 30 } }, 252))
    expect(p).toMatchObject({ Slice: "system.slice", Delegate: true, PIDs: [4242], MemoryAccounting: true, TasksAccounting: true, DefaultDependencies: false, MemoryMax: BigInt(1 << 30) })
  })

  it("turns cpu lists into systemd's bit masks (runc's RangeToBits)", () => {
    expect(rangeToBits("0")).toEqual(new Uint8Array([1]))
    expect(rangeToBits("8-9")).toEqual(new Uint8Array([0, 3]))
    expect(rangeToBits("")).toBeUndefined()
    expect(rangeToBits("3-1")).toBeUndefined()
  })
})
