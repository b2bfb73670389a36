/**
 * linux.resources on a pure cgroup v2 host (the refusals of v1-only knobs, the
 * controllers cgroup.controllers must offer, runc's swap rule), `unified` on v1
 * and hybrid hosts, and device rules that would punch a hole in a wildcard.
 */
import { Effect, Result } from "effect"
import { describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import { parseSpec } from "../../config/parse.ts"
import { checkResourcesOnHost, type HostFacts } from "../../config/resources.ts"
import { v2ResourceWarnings } from "../../config/resources-v2.ts"
import type { ResourcesSpec } from "../../config/spec.ts"

const base = defaultSpec(["sh"])
const shapeProblem = (resources: unknown) => {
  const r = Effect.runSync(Effect.result(parseSpec({ ...base, linux: { ...base.linux, resources } })))
  return Result.isFailure(r) ? { path: r.failure.path, reason: r.failure.reason } : undefined
}

const V2: HostFacts = {
  layout: "v2",
  v1Controllers: new Set(),
  v1Files: new Set(),
  v2Controllers: new Set(["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"]),
  cpus: new Set([0, 1]),
  mems: new Set([0]),
  hugepageSizes: new Set(["2MB"]),
}
/** This machine: v1 controllers and cgroup2 beside them. */
const HYBRID: HostFacts = { layout: "hybrid", v1Controllers: new Set(["cpu", "memory", "pids"]), v1Files: new Set(), cpus: new Set([0]), mems: new Set([0]), hugepageSizes: new Set() }
const v2 = (r: unknown, host: HostFacts = V2) => checkResourcesOnHost(r as ResourcesSpec, host)

describe("linux.resources on pure cgroup v2", () => {
  it("accepts every knob v2 has", () => {
    expect(
      v2({
        memory: { limit: 64 << 20, swap: 128 << 20, reservation: 32 << 20 },
        cpu: { shares: 512, quota: 50000, period: 100000, cpus: "0-1", mems: "0" },
        pids: { limit: 64 },
        blockIO: { weight: 500 },
        hugepageLimits: [{ pageSize: "2MB", limit: 1 << 21 }],
        unified: { "memory.high": "1000000", "cgroup.max.descendants": "5" },
        devices: [{ allow: false, access: "rwm" }],
      }),
    ).toBeUndefined()
  })

  it.each([
    [{ memory: { kernelTCP: 1 << 20 } }, "memory.kernelTCP", /TCP/],
    [{ memory: { swappiness: 10 } }, "memory.swappiness", /swappiness/],
    [{ memory: { disableOOMKiller: true } }, "memory.disableOOMKiller", /OOM/],
    [{ memory: { useHierarchy: false } }, "memory.useHierarchy", /hierarchical/],
    [{ cpu: { realtimeRuntime: 1000 } }, "cpu.realtimeRuntime", /realtime/],
    [{ cpu: { realtimePeriod: 1000 } }, "cpu.realtimePeriod", /realtime/],
    [{ network: { classID: 1 } }, "network", /net_cls/],
    [{ blockIO: { leafWeight: 100 } }, "blockIO.leafWeight", /leaf/],
    [{ blockIO: { weightDevice: [{ major: 8, minor: 0, leafWeight: 10 }] } }, "blockIO.weightDevice[0].leafWeight", /leaf/],
    [{ memory: { swap: 1 << 20 } }, "memory.swap", /needs memory.limit/],
    [{ memory: { limit: 2 << 20, swap: 1 << 20 } }, "memory.swap", /below memory.limit/],
    [{ cpu: { cpus: "3" } }, "cpu.cpus", /not online/],
    [{ hugepageLimits: [{ pageSize: "1GB", limit: 1 }] }, "hugepageLimits[0].pageSize", /do not exist/],
    [{ rdma: { mlx4_0: {} } }, 'rdma["mlx4_0"]', /neither/],
    [{ unified: { "misc.max": "x 1" } }, 'unified["misc.max"]', /misc controller/],
  ])("refuses %j naming the field", (r, field, reason) => {
    const p = v2(r)
    expect(p?.path).toBe(`linux.resources.${field}`)
    expect(p?.reason).toMatch(reason)
  })

  it("refuses a knob whose controller the host does not offer", () => {
    const p = v2({ pids: { limit: 5 } }, { ...V2, v2Controllers: new Set(["memory"]) })
    expect(p).toEqual({ path: "linux.resources.pids", reason: expect.stringMatching(/v2 pids controller.*\(memory\)/) })
  })

  it("ignores memory.kernel and useHierarchy: true, with a warning saying why", () => {
    expect(v2({ memory: { kernel: 1 << 20, useHierarchy: true } })).toBeUndefined()
    expect(v2ResourceWarnings({ memory: { kernel: 1 << 20, useHierarchy: true } })).toEqual([
      expect.stringMatching(/memory\.kernel is ignored.*memory\.max/),
      expect.stringMatching(/useHierarchy is ignored/),
    ])
    expect(v2ResourceWarnings({ memory: { limit: 1 } })).toEqual([])
  })
})

describe("unified and device rules on every layout", () => {
  it("refuses unified on hybrid and v1 hosts, naming it", () => {
    for (const host of [HYBRID, { ...HYBRID, layout: undefined }])
      expect(v2({ unified: { "memory.max": "1" } }, host)).toEqual({ path: "linux.resources.unified", reason: expect.stringMatching(/cannot use unified on cgroup v1/) })
  })

  it.each([
    [{ unified: { "memory.max": 5 } }, 'linux.resources.unified["memory.max"]', /not a string/],
    [{ unified: { "../x.max": "1" } }, 'linux.resources.unified["../x.max"]', /no slashes/],
    [{ unified: { memorymax: "1" } }, 'linux.resources.unified["memorymax"]', /CONTROLLER\.PARAMETER/],
    [{ unified: { "cgroup.procs": "1" } }, 'linux.resources.unified["cgroup.procs"]', /runtime's/],
    [{ unified: ["memory.max"] }, "linux.resources.unified", /map/],
    [
      { devices: [{ allow: true, type: "c", major: 1, access: "rwm" }, { allow: false, type: "c", major: 1, minor: 3, access: "w" }] },
      "linux.resources.devices[1]",
      /punch a hole/,
    ],
  ])("refuses %j at parse time", (r, path, reason) => {
    const p = shapeProblem(r)
    expect(p?.path).toBe(path)
    expect(p?.reason).toMatch(reason)
  })
})
