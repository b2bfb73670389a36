/**
 * The rarer v1 knobs: their shape rules, the host rules (a kernel without the file refuses the
 * field by name), and the writes they become, in the kernel's order.
 */
import { Effect, Result } from "effect"
import { describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import { parseSpec } from "../../config/parse.ts"
import { checkResourcesOnHost, type HostFacts } from "../../config/resources.ts"
import type { ResourcesSpec } from "../../config/spec.ts"
import { v1Writes } from "../../effects/cgroups-v1-resources.ts"

const base = defaultSpec(["sh"])
const shape = (resources: unknown) => {
  const r = Effect.runSync(Effect.result(parseSpec({ ...base, linux: { ...base.linux, resources } })))
  return Result.isFailure(r) ? { path: r.failure.path, reason: r.failure.reason } : undefined
}

/** This machine as measured: v1 cpu with rt, burst and idle; blkio without CFQ/BFQ; no net_cls, net_prio or rdma. */
const HOST: HostFacts = {
  v1Controllers: new Set(["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"]),
  v1Files: new Set(["cpu.rt_runtime_us", "cpu.rt_period_us", "cpu.cfs_burst_us", "cpu.idle", "memory.use_hierarchy", "blkio.throttle.read_bps_device", "blkio.throttle.write_iops_device"]),
  cpus: new Set([0, 1]),
  mems: new Set([0]),
  hugepageSizes: new Set(),
}
const onHost = (r: ResourcesSpec, host: HostFacts = HOST) => checkResourcesOnHost(r, host)

describe("v1 knobs: shape", () => {
  it("accepts them within range", () => {
    expect(
      shape({
        memory: { useHierarchy: true },
        cpu: { quota: 50000, burst: 20000, realtimePeriod: 1000000, realtimeRuntime: 10000, idle: 0 },
        blockIO: { leafWeight: 300, weightDevice: [{ major: 8, minor: 0, weight: 500 }], throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1 << 20 }] },
        network: { classID: 0x100001, priorities: [{ name: "eth0", priority: 5 }] },
        rdma: { mlx5_0: { hcaHandles: 2, hcaObjects: 2000 } },
      }),
    ).toBeUndefined()
  })

  it.each([
    [{ cpu: { quota: 10000, burst: 20000 } }, "linux.resources.cpu.burst", /above cpu.quota/],
    [{ cpu: { burst: -1 } }, "linux.resources.cpu.burst", /negative/],
    [{ cpu: { realtimeRuntime: -2 } }, "linux.resources.cpu.realtimeRuntime", /negative/],
    [{ cpu: { idle: 2 } }, "linux.resources.cpu.idle", /neither 0 nor 1/],
    [{ cpu: { idle: 1, shares: 512 } }, "linux.resources.cpu.idle", /ignore cpu.shares/],
    [{ blockIO: { leafWeight: 5 } }, "linux.resources.blockIO.leafWeight", /10-1000/],
    [{ blockIO: { weightDevice: [{ major: 8, minor: 0 }] } }, "linux.resources.blockIO.weightDevice[0]", /neither weight/],
    [{ blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 2000 }] } }, "linux.resources.blockIO.weightDevice[0].weight", /10-1000/],
    [{ blockIO: { throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: -1 }] } }, "linux.resources.blockIO.throttleWriteIOPSDevice[0].rate", /negative/],
    [{ network: { priorities: [{ name: "a b", priority: 1 }] } }, "linux.resources.network.priorities[0].name", /interface name/],
    [{ network: { classID: -1 } }, "linux.resources.network.classID", /.+/],
    [{ rdma: { mlx: { hcaHandles: "x" } } }, "linux.resources.rdma.mlx.hcaHandles", /.+/],
  ])("rejects %j naming the field", (resources, path, reason) => {
    const p = shape(resources)
    expect(p?.path).toBe(path)
    expect(p?.reason).toMatch(reason)
  })
})

describe("v1 knobs: this host", () => {
  it("accepts what this kernel has", () => {
    expect(onHost({ memory: { useHierarchy: true }, cpu: { burst: 1, idle: 1, realtimeRuntime: 1, realtimePeriod: 2 }, blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1 }] } })).toBeUndefined()
  })

  it.each<[ResourcesSpec, HostFacts, string, RegExp]>([
    [{ blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 100 }] } }, HOST, "linux.resources.blockIO.weightDevice", /lacks blkio.weight_device and blkio.bfq.weight_device/],
    [{ blockIO: { leafWeight: 100 } }, HOST, "linux.resources.blockIO.leafWeight", /lacks blkio.leaf_weight/],
    [{ blockIO: { throttleWriteBpsDevice: [{ major: 8, minor: 0, rate: 1 }] } }, HOST, "linux.resources.blockIO.throttleWriteBpsDevice", /lacks blkio.throttle.write_bps_device/],
    [{ network: { classID: 1 } }, HOST, "linux.resources.network.classID", /v1 net_cls hierarchy/],
    [{ network: { priorities: [] } }, HOST, "linux.resources.network.priorities", /v1 net_prio hierarchy/],
    [{ rdma: {} }, HOST, "linux.resources.rdma", /v1 rdma hierarchy/],
    [{ cpu: { burst: 1 } }, { ...HOST, v1Files: new Set() }, "linux.resources.cpu.burst", /lacks cpu.cfs_burst_us/],
    [{ cpu: { realtimeRuntime: 1 } }, { ...HOST, v1Files: new Set() }, "linux.resources.cpu.realtimeRuntime", /lacks cpu.rt_runtime_us/],
    [{ cpu: { idle: 1 } }, { ...HOST, v1Files: new Set() }, "linux.resources.cpu.idle", /lacks cpu.idle/],
    [{ network: { classID: 1 } }, { ...HOST, v1Controllers: new Set([...HOST.v1Controllers, "net_cls"]) }, "linux.resources.network.classID", /lacks net_cls.classid/],
  ])("rejects %j on a host without it", (r, host, path, reason) => {
    const p = onHost(r, host)
    expect(p?.path).toBe(path)
    expect(p?.reason).toMatch(reason)
  })
})

describe("v1 knobs: writes", () => {
  const knobs = (r: ResourcesSpec, files: string[] = []) => v1Writes(r, new Set(files)).filter((w) => w.controller !== "devices")

  it("orders cpu: quota before burst, rt period before runtime, the runtime raised in the ancestors first", () => {
    expect(knobs({ cpu: { quota: 50000, burst: 10000, idle: 0, realtimePeriod: 1000000, realtimeRuntime: 10000 } })).toEqual([
      { controller: "cpu", file: "cpu.cfs_quota_us", value: "50000" },
      { controller: "cpu", file: "cpu.cfs_burst_us", value: "10000" },
      { controller: "cpu", file: "cpu.idle", value: "0" },
      { controller: "cpu", file: "cpu.rt_period_us", value: "1000000" },
      { controller: "cpu", file: "cpu.rt_runtime_us", value: "10000", ancestors: true },
    ])
  })

  it("writes one device per line, choosing BFQ's weight file where CFQ's is absent", () => {
    const r: ResourcesSpec = {
      blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 200, leafWeight: 300 }], throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 100 }, { major: 8, minor: 16, rate: 200 }] },
    }
    expect(knobs(r, ["blkio.bfq.weight_device"]).map((w) => `${w.file}=${w.value}`)).toEqual([
      "blkio.bfq.weight_device=8:0 200",
      "blkio.leaf_weight_device=8:0 300",
      "blkio.throttle.read_bps_device=8:0 100",
      "blkio.throttle.read_bps_device=8:16 200",
    ])
    expect(knobs(r, ["blkio.weight_device"])[0]!.file).toBe("blkio.weight_device")
  })

  it("writes memory.use_hierarchy, net_cls, net_prio and rdma as runc does", () => {
    expect(
      knobs({ memory: { useHierarchy: true }, network: { classID: 0x100001, priorities: [{ name: "eth0", priority: 5 }] }, rdma: { mlx5_0: { hcaHandles: 3 }, mlx4_0: { hcaHandles: 2, hcaObjects: 2000 } } }).map((w) => `${w.file}=${w.value}`),
    ).toEqual(["memory.use_hierarchy=1", "net_cls.classid=1048577", "net_prio.ifpriomap=eth0 5", "rdma.max=mlx5_0 hca_handle=3", "rdma.max=mlx4_0 hca_handle=2 hca_object=2000"])
  })
})
