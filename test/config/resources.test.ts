/** linux.resources validation: the shape rules in parseSpec, the host rules against given facts. */
import { Effect, Result } from "effect"
import fc from "fast-check"
import { test } from "@fast-check/vitest"
import { describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import { parseSpec } from "../../config/parse.ts"
import { checkResourcesOnHost, parseCpuList, type HostFacts } from "../../config/resources.ts"
import type { ResourcesSpec } from "../../config/spec.ts"

const base = defaultSpec(["sh"])
const withResources = (resources: unknown) => ({ ...base, linux: { ...base.linux, resources } })
const problem = (resources: unknown) => {
  const r = Effect.runSync(Effect.result(parseSpec(withResources(resources))))
  return Result.isFailure(r) ? { path: r.failure.path, reason: r.failure.reason } : undefined
}

/** This machine's shape: v1 everywhere, no hugetlb or blkio weight, two cpus, one node. */
const HOST: HostFacts = {
  v1Controllers: new Set(["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "name=systemd"]),
  v1Files: new Set(["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "cpu.shares"]),
  cpus: new Set([0, 1]),
  mems: new Set([0]),
  hugepageSizes: new Set(["2MB", "1GB"]),
}
const onHost = (r: ResourcesSpec, host: HostFacts = HOST) => checkResourcesOnHost(r, host)

describe("linux.resources: shape", () => {
  it("accepts every knob applied, within range", () => {
    expect(
      problem({
        memory: { limit: 64 << 20, reservation: 32 << 20, swap: 128 << 20, swappiness: 10, disableOOMKiller: false },
        cpu: { shares: 512, quota: 50000, period: 100000, cpus: "0-1", mems: "0" },
        pids: { limit: 16 },
        blockIO: { weight: 500 },
        hugepageLimits: [{ pageSize: "2MB", limit: 0 }],
        devices: [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 3, access: "rw" }],
      }),
    ).toBeUndefined()
    expect(problem({ memory: { limit: -1, swap: -1 }, pids: { limit: -1 }, cpu: { quota: -1 } })).toBeUndefined()
  })

  it.each([
    [{ memory: { limit: -2 } }, "linux.resources.memory.limit", /negative/],
    [{ memory: { reservation: -5 } }, "linux.resources.memory.reservation", /negative/],
    [{ memory: { limit: 100, swap: 50 } }, "linux.resources.memory.swap", /below memory.limit/],
    [{ memory: { swap: 100 } }, "linux.resources.memory.swap", /needs memory.limit/],
    [{ memory: { swappiness: 101 } }, "linux.resources.memory.swappiness", /0-100/],
    [{ memory: { useHierarchy: false } }, "linux.resources.memory.useHierarchy", /always accounts/],
    [{ memory: { limit: "lots" } }, "linux.resources.memory.limit", /.+/],
    [{ cpu: { shares: 1 } }, "linux.resources.cpu.shares", /2-262144/],
    [{ cpu: { period: 10 } }, "linux.resources.cpu.period", /1000-1000000/],
    [{ cpu: { quota: 5 } }, "linux.resources.cpu.quota", /below 1000/],
    [{ cpu: { cpus: "0-" } }, "linux.resources.cpu.cpus", /cpu list/],
    [{ cpu: { mems: "x" } }, "linux.resources.cpu.mems", /node list/],
    [{ cpu: { realtimeRuntime: 2000, realtimePeriod: 1000 } }, "linux.resources.cpu.realtimeRuntime", /above cpu.realtimePeriod/],
    [{ pids: { limit: -7 } }, "linux.resources.pids.limit", /negative/],
    [{ pids: {} }, "linux.resources.pids.limit", /.+/],
    [{ blockIO: { weight: 5 } }, "linux.resources.blockIO.weight", /10-1000/],
    [{ blockIO: { throttleReadBpsDevice: [{ major: -1, minor: 0, rate: 1 }] } }, "linux.resources.blockIO.throttleReadBpsDevice[0]", /device number/],
    [{ hugepageLimits: [{ pageSize: "2M", limit: 1 }] }, "linux.resources.hugepageLimits[0].pageSize", /page size/],
    [{ hugepageLimits: [{ pageSize: "2MB", limit: -1 }] }, "linux.resources.hugepageLimits[0].limit", /negative/],
    [{ devices: [{ allow: true, type: "x" }] }, "linux.resources.devices[0].type", /.+/],
    // Letters other than r, w, m are ignored (runc): a rule left with none of them is refused.
    [{ devices: [{ allow: true, type: "c", access: "x" }] }, "linux.resources.devices[0].access", /"x" has none of r, w and m/],
    [{ devices: [{ allow: true, type: "c", access: "" }] }, "linux.resources.devices[0].access", /none of r, w and m/],
    [{ devices: [{ allow: true, type: "c", major: -3 }] }, "linux.resources.devices[0].major", /negative/],
    [{ devices: [{ type: "c" }] }, "linux.resources.devices[0].allow", /.+/],
    [{ unified: { "a/b.max": "1" } }, 'linux.resources.unified["a/b.max"]', /no slashes/],
  ])("rejects %j naming the field", (resources, path, reason) => {
    const p = problem(resources)
    expect(p?.path).toBe(path)
    expect(p?.reason).toMatch(reason)
  })
})

describe("linux.resources: this host", () => {
  it("accepts what the host has", () => {
    expect(onHost({ memory: { limit: 1 << 20, swap: 2 << 20 }, cpu: { cpus: "1", mems: "0" }, hugepageLimits: [{ pageSize: "1GB", limit: 0 }] }, { ...HOST, v1Controllers: new Set([...HOST.v1Controllers, "hugetlb"]) })).toBeUndefined()
  })

  it.each<[ResourcesSpec, HostFacts, string, RegExp]>([
    [{ cpu: { cpus: "0-2" } }, HOST, "linux.resources.cpu.cpus", /cpu 2 is not online/],
    [{ cpu: { mems: "1" } }, HOST, "linux.resources.cpu.mems", /memory node 1/],
    [{ hugepageLimits: [{ pageSize: "64KB", limit: 0 }] }, { ...HOST, v1Controllers: new Set([...HOST.v1Controllers, "hugetlb"]) }, "linux.resources.hugepageLimits[0].pageSize", /do not exist/],
    [{ hugepageLimits: [{ pageSize: "2MB", limit: 0 }] }, HOST, "linux.resources.hugepageLimits", /v1 hugetlb hierarchy/],
    [{ blockIO: { weight: 100 } }, HOST, "linux.resources.blockIO.weight", /no weight/],
    [{ memory: { limit: 10, swap: 20 } }, { ...HOST, v1Files: new Set() }, "linux.resources.memory.swap", /swap accounting/],
    [{ memory: { limit: 10 } }, { ...HOST, v1Controllers: new Set(["cpu"]) }, "linux.resources.memory", /v1 memory hierarchy/],
    [{ devices: [{ allow: false }] }, { ...HOST, v1Controllers: new Set() }, "linux.resources.devices", /v1 devices hierarchy/],
  ])("rejects %j on a host without it", (r, host, path, reason) => {
    const p = onHost(r, host)
    expect(p?.path).toBe(path)
    expect(p?.reason).toMatch(reason)
  })

  test.prop([fc.uniqueArray(fc.nat({ max: 63 }), { minLength: 1 }), fc.nat({ max: 63 })])("a cpu list is accepted exactly when every cpu is online", (online, extra) => {
    const host = { ...HOST, cpus: new Set(online) }
    const asked = [...online.slice(0, 3), extra]
    const p = onHost({ cpu: { cpus: asked.join(",") } }, host)
    expect(p === undefined).toBe(asked.every((n) => host.cpus.has(n)))
  })

  test.prop([fc.array(fc.tuple(fc.nat({ max: 200 }), fc.nat({ max: 5 })), { minLength: 1, maxLength: 5 })])("parseCpuList expands ranges", (ranges) => {
    const text = ranges.map(([lo, w]) => (w === 0 ? `${lo}` : `${lo}-${lo + w}`)).join(",")
    expect(parseCpuList(text)).toEqual(ranges.flatMap(([lo, w]) => Array.from({ length: w + 1 }, (_, i) => lo + i)))
  })
})
