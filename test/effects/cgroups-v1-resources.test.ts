/** resources → v1 writes: order and values the kernel (and runc) expect. */
import fc from "fast-check"
import { test } from "@fast-check/vitest"
import { describe, expect, it } from "vitest"
import type { ResourcesSpec } from "../../config/spec.ts"
import { DEFAULT_DEVICE_RULES, deviceLine, orderMemoryWrites, v1Writes } from "../../effects/cgroups-v1-resources.ts"

const limit = fc.oneof(fc.constant(-1), fc.integer({ min: 1, max: 2 ** 40 }))
const arbResources: fc.Arbitrary<ResourcesSpec> = fc.record(
  {
    memory: fc.record(
      { limit, reservation: limit, swappiness: fc.integer({ min: 0, max: 100 }), disableOOMKiller: fc.boolean() },
      { requiredKeys: [] },
    ).chain((m) => (m.limit !== undefined && m.limit > 0 ? fc.constantFrom({ ...m, swap: -1 }, { ...m, swap: m.limit * 2 }, m) : fc.constant(m))),
    cpu: fc.record(
      { shares: fc.integer({ min: 2, max: 262144 }), quota: fc.oneof(fc.constant(-1), fc.integer({ min: 1000, max: 10 ** 6 })), period: fc.integer({ min: 1000, max: 10 ** 6 }), cpus: fc.constantFrom("0", "0-1"), mems: fc.constant("0") },
      { requiredKeys: [] },
    ),
    pids: fc.record({ limit }),
    devices: fc.array(
      fc.record(
        { allow: fc.boolean(), type: fc.constantFrom<"a" | "b" | "c">("a", "b", "c"), major: fc.integer({ min: -1, max: 300 }), minor: fc.integer({ min: -1, max: 300 }), access: fc.constantFrom("r", "rw", "rwm", "m") },
        { requiredKeys: ["allow"] },
      ),
      { maxLength: 5 },
    ),
  },
  { requiredKeys: [] },
)

const index = (ws: ReturnType<typeof v1Writes>, file: string) => ws.findIndex((w) => w.file === file)

describe("v1Writes", () => {
  test.prop([arbResources])("memsw comes after the memory limit; period before quota; each file belongs to its controller", (r) => {
    const ws = v1Writes(r)
    if (r.memory?.swap) expect(index(ws, "memory.memsw.limit_in_bytes")).toBeGreaterThan(index(ws, "memory.limit_in_bytes"))
    if (r.cpu?.quota && r.cpu.period) expect(index(ws, "cpu.cfs_quota_us")).toBeGreaterThan(index(ws, "cpu.cfs_period_us"))
    for (const w of ws) expect(w.file.startsWith(`${w.controller}.`)).toBe(true)
    // Nothing is written twice except device rules (a list by nature).
    const files = ws.filter((w) => w.controller !== "devices").map((w) => w.file)
    expect(new Set(files).size).toBe(files.length)
  })

  test.prop([arbResources])("devices: deny all first, then the spec's rules in order, then runc's defaults", (r) => {
    const ws = v1Writes(r).filter((w) => w.controller === "devices")
    const rules = [...(r.devices ?? []), ...DEFAULT_DEVICE_RULES]
    expect(ws[0]).toEqual({ controller: "devices", file: "devices.deny", value: "a" })
    expect(ws.slice(1)).toEqual(rules.map((d) => ({ controller: "devices", file: d.allow ? "devices.allow" : "devices.deny", value: deviceLine(d) })))
  })

  test.prop([arbResources])("-1 is unlimited: pids.max takes \"max\", the others -1; absent knobs are not written", (r) => {
    const ws = v1Writes(r)
    const pids = ws.find((w) => w.file === "pids.max")
    expect(pids?.value).toBe(r.pids ? (r.pids.limit > 0 ? `${r.pids.limit}` : "max") : undefined)
    expect(ws.find((w) => w.file === "memory.limit_in_bytes")?.value).toBe(r.memory?.limit === undefined ? undefined : `${r.memory.limit}`)
    if (!r.memory?.disableOOMKiller) expect(index(ws, "memory.oom_control")).toBe(-1)
  })

  it("writes device lines as the kernel reads them", () => {
    expect(deviceLine({ allow: false, access: "rwm" })).toBe("a")
    expect(deviceLine({ allow: true, type: "c", major: 1, minor: 3, access: "rw" })).toBe("c 1:3 rw")
    expect(deviceLine({ allow: true, type: "b", major: -1 })).toBe("b *:* rwm")
    expect(deviceLine({ allow: true, type: "c", major: 136 })).toBe("c 136:* rwm")
  })

  it("an empty device list still denies everything but runc's defaults (GHSA-g54h-m393-cpwq)", () => {
    const ws = v1Writes({ devices: [] }).filter((w) => w.controller === "devices")
    expect(ws[0]?.value).toBe("a")
    expect(ws.filter((w) => w.file === "devices.allow").map((w) => w.value)).not.toContain("a")
    expect(ws.map((w) => w.value)).toContain("c 1:3 rwm")
    expect(ws.map((w) => w.value)).not.toContain("b 8:0 rwm")
  })

  it("picks blkio.bfq.weight when only BFQ is there", () => {
    expect(v1Writes({ blockIO: { weight: 100 } }, new Set(["blkio.bfq.weight"])).find((w) => w.controller === "blkio")?.file).toBe("blkio.bfq.weight")
    expect(v1Writes({ blockIO: { weight: 100 } }, new Set(["blkio.weight", "blkio.bfq.weight"])).find((w) => w.controller === "blkio")?.file).toBe("blkio.weight")
  })
})

describe("runc's rules for device access letters and the memory/swap order", () => {
  it("ignores access letters other than r, w and m, and repeats (runc's Permissions: \"rwx\" is \"rw\")", () => {
    expect(deviceLine({ allow: true, type: "c", major: 1, minor: 11, access: "rwx" })).toBe("c 1:11 rw")
    expect(deviceLine({ allow: true, type: "c", major: 1, minor: 11, access: "mrrw" })).toBe("c 1:11 rwm")
  })

  it("writes swap before memory when swap is lifted or above the current memory limit, else memory first", () => {
    const w = v1Writes({ memory: { limit: -1, swap: -1 } }).filter((x) => x.controller === "memory")
    expect(orderMemoryWrites(w, () => 100 << 20).map((x) => x.file)).toEqual(["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"])
    const grow = v1Writes({ memory: { limit: 300 << 20, swap: 400 << 20 } }).filter((x) => x.controller === "memory")
    expect(orderMemoryWrites(grow, () => 100 << 20).map((x) => x.file)).toEqual(["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"])
    const shrink = v1Writes({ memory: { limit: 100 << 20, swap: 200 << 20 } }).filter((x) => x.controller === "memory")
    expect(orderMemoryWrites(shrink, () => 300 << 20).map((x) => x.file)).toEqual(["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"])
  })
})
