/**
 * The rarer v1 knobs on the real kernel: what this kernel has (cpu burst, idle and realtime,
 * memory.use_hierarchy, blkio throttles) is written and read back, the realtime runtime reaches a
 * nested cgroup through its parent; what it lacks (blkio per-device weights without CFQ/BFQ,
 * net_cls, net_prio, rdma — measured absent here) is refused by name before anything is created.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import type { ResourcesSpec, Spec } from "../../config/spec.ts"
import { create, dispose } from "../../promise.ts"
import { bundle, cgroupDirsNamed, expectNoTrace, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

const withResources = (resources: ResourcesSpec, cgroupsPath?: string) => (s: Spec): Spec => ({
  ...s,
  linux: { ...s.linux, resources, ...(cgroupsPath ? { cgroupsPath } : {}) },
})
const cgDir = (id: string, ctrl: string) => cgroupDirsNamed(id).find((d) => d.startsWith(`/sys/fs/cgroup/${ctrl}/`))!
const cgRead = (id: string, ctrl: string, file: string) => fs.readFileSync(path.join(cgDir(id, ctrl), file), "utf8").trim()
const has = (f: string) => fs.existsSync(f)

/** A block device of this machine ("254:0"), for the throttles (the kernel refuses unknown devices). */
const disk = (() => {
  try {
    return fs.readdirSync("/sys/dev/block").find((d) => !d.startsWith("7:")) // not a loop device
  } catch {
    return undefined
  }
})()
const missing = skipReason
  ?? (!has("/sys/fs/cgroup/cpu/cpu.rt_runtime_us") ? "no cpu.rt_runtime_us (CONFIG_RT_GROUP_SCHED off)" : undefined)
  ?? (!has("/sys/fs/cgroup/cpu/cpu.cfs_burst_us") || !has("/sys/fs/cgroup/cpu/cpu.idle") ? "no cpu.cfs_burst_us or cpu.idle in the v1 cpu hierarchy" : undefined)
  ?? (!disk || !has("/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device") ? "no block device or no blkio throttles" : undefined)
if (missing && !skipReason) console.warn(`SKIPPING v1 knob writes: ${missing}`)

describe.skipIf(missing)("rarer v1 knobs on the real kernel", () => {
  it("writes burst, idle, realtime, use_hierarchy and throttles, and an update changes them", async () => {
    const id = uniq("knob")
    const [maj, min] = disk!.split(":").map(Number) as [number, number]
    const b = bundle(["sleep", "30"], withResources({
      memory: { useHierarchy: true },
      cpu: { quota: 20000, period: 100000, burst: 5000, idle: 1, realtimePeriod: 1000000, realtimeRuntime: 10000 },
      blockIO: { throttleReadBpsDevice: [{ major: maj, minor: min, rate: 1 << 20 }], throttleWriteIOPSDevice: [{ major: maj, minor: min, rate: 300 }] },
    }))
    const c = await create({ root, id, bundle: b.dir })
    try {
      expect({
        burst: cgRead(id, "cpu", "cpu.cfs_burst_us"),
        idle: cgRead(id, "cpu", "cpu.idle"),
        rtPeriod: cgRead(id, "cpu", "cpu.rt_period_us"),
        rtRuntime: cgRead(id, "cpu", "cpu.rt_runtime_us"),
        hierarchy: cgRead(id, "memory", "memory.use_hierarchy"),
        readBps: cgRead(id, "blkio", "blkio.throttle.read_bps_device"),
        writeIops: cgRead(id, "blkio", "blkio.throttle.write_iops_device"),
      }).toEqual({ burst: "5000", idle: "1", rtPeriod: "1000000", rtRuntime: "10000", hierarchy: "1", readBps: `${disk} ${1 << 20}`, writeIops: `${disk} 300` })
      await c.update({ cpu: { burst: 7000, idle: 0, realtimeRuntime: 20000 } })
      expect([cgRead(id, "cpu", "cpu.cfs_burst_us"), cgRead(id, "cpu", "cpu.idle"), cgRead(id, "cpu", "cpu.rt_runtime_us")]).toEqual(["7000", "0", "20000"])
      await expect(c.update({ cpu: { burst: 90000 } })).rejects.toMatchObject({ _tag: "ConfigError", path: "linux.resources.cpu.burst" })
      expect(cgRead(id, "cpu", "cpu.cfs_burst_us")).toBe("7000")
    } finally {
      await c.destroy()
    }
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("gives a nested cgroup its realtime runtime by raising its new parent first", async () => {
    const id = uniq("rtnest")
    const parent = uniq("xc-rtparent")
    const c = await create({ root, id, bundle: bundle(["true"], withResources({ cpu: { realtimeRuntime: 10000 } }, `/${parent}/${id}`)).dir })
    try {
      expect(cgRead(id, "cpu", "cpu.rt_runtime_us")).toBe("10000")
      expect(fs.readFileSync(`/sys/fs/cgroup/cpu/${parent}/cpu.rt_runtime_us`, "utf8").trim()).toBe("10000")
    } finally {
      await c.destroy()
      // The parents this test made (delete removes the container's own cgroups only, as runc).
      for (const d of fs.readdirSync("/sys/fs/cgroup"))
        if (fs.existsSync(`/sys/fs/cgroup/${d}/${parent}`)) fs.rmdirSync(`/sys/fs/cgroup/${d}/${parent}`)
    }
    expect(expectNoTrace(root, id)).toEqual([])
  })
})

describe.skipIf(skipReason)("rarer v1 knobs this host lacks", () => {
  const lacking: Array<[ResourcesSpec, string, string]> = []
  if (!has("/sys/fs/cgroup/blkio/blkio.weight_device") && !has("/sys/fs/cgroup/blkio/blkio.bfq.weight_device"))
    lacking.push([{ blockIO: { weightDevice: [{ major: 254, minor: 0, weight: 100 }] } }, "linux.resources.blockIO.weightDevice", "lacks blkio.weight_device"])
  if (!has("/sys/fs/cgroup/net_cls")) lacking.push([{ network: { classID: 0x100001 } }, "linux.resources.network.classID", "net_cls hierarchy"])
  if (!has("/sys/fs/cgroup/net_prio")) lacking.push([{ network: { priorities: [{ name: "eth0", priority: 1 }] } }, "linux.resources.network.priorities", "net_prio hierarchy"])
  if (!has("/sys/fs/cgroup/rdma")) lacking.push([{ rdma: { mlx5_0: { hcaHandles: 1 } } }, "linux.resources.rdma", "rdma hierarchy"])
  it.skipIf(lacking.length === 0)("refuses each by name, creating nothing", async () => {
    for (const [resources, field, reason] of lacking) {
      const id = uniq("lack")
      await expect(create({ root, id, bundle: bundle(["true"], withResources(resources)).dir })).rejects.toMatchObject({ _tag: "ConfigError", path: field, reason: expect.stringContaining(reason) })
      expect(expectNoTrace(root, id)).toEqual([])
    }
  })
})
