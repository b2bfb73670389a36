/**
 * The rules for the rarer linux.resources knobs (cpu realtime, burst and idle, blkio per-device
 * weights and throttles, memory.useHierarchy, network classID and priorities, rdma): their shape,
 * the v1 controller each needs, and the file each needs the host's kernel to have. A knob whose
 * file this kernel lacks is refused by name before anything is created, rather than failing
 * half-way through create. Values measured on Linux 6.18 are noted where the kernel refuses what
 * the spec allows.
 */
import type { Problem } from "./resources.ts"
import type { ResourcesSpec } from "./spec.ts"

const P = "linux.resources"

const range = (v: number | undefined, lo: number, hi: number, at: string, unit = ""): Problem =>
  v !== undefined && v !== 0 && (v < lo || v > hi) ? { path: at, reason: `${v} is outside ${lo}-${hi}${unit}` } : undefined

/** Shape rules (config only). */
export function checkV1KnobShape(r: ResourcesSpec): Problem {
  // Linux >= 5.16 always accounts memory hierarchically: writing 0 to memory.use_hierarchy is EINVAL (measured).
  if (r.memory?.useHierarchy === false)
    return { path: `${P}.memory.useHierarchy`, reason: "false cannot be honoured: the kernel always accounts memory hierarchically (memory.use_hierarchy refuses 0 since Linux 5.16)" }
  const c = r.cpu
  if (c) {
    if (c.burst !== undefined && c.burst < 0) return { path: `${P}.cpu.burst`, reason: `${c.burst} is negative` }
    // The kernel refuses cpu.cfs_burst_us above the quota (EINVAL, measured).
    if (c.burst !== undefined && (c.quota ?? 0) > 0 && c.burst > c.quota!)
      return { path: `${P}.cpu.burst`, reason: `${c.burst} is above cpu.quota ${c.quota}` }
    if (c.realtimePeriod !== undefined && c.realtimePeriod < 0) return { path: `${P}.cpu.realtimePeriod`, reason: `${c.realtimePeriod} is negative` }
    if (c.realtimeRuntime !== undefined && c.realtimeRuntime < -1)
      return { path: `${P}.cpu.realtimeRuntime`, reason: `${c.realtimeRuntime} is negative (-1 means unlimited)` }
    if ((c.realtimeRuntime ?? 0) > 0 && (c.realtimePeriod ?? 0) > 0 && c.realtimeRuntime! > c.realtimePeriod!)
      return { path: `${P}.cpu.realtimeRuntime`, reason: `${c.realtimeRuntime} is above cpu.realtimePeriod ${c.realtimePeriod}` }
    if (c.idle !== undefined && c.idle !== 0 && c.idle !== 1) return { path: `${P}.cpu.idle`, reason: `${c.idle} is neither 0 nor 1` }
    // An idle group has no shares of its own: the kernel then reads cpu.shares as 3 and refuses writes to it (measured).
    if (c.idle === 1 && (c.shares ?? 0) > 0) return { path: `${P}.cpu.idle`, reason: "1 makes the kernel ignore cpu.shares: give one or the other" }
  }
  const b = r.blockIO
  if (b) {
    const bad = range(b.leafWeight, 10, 1000, `${P}.blockIO.leafWeight`)
    if (bad) return bad
    for (const [i, d] of (b.weightDevice ?? []).entries()) {
      const at = `${P}.blockIO.weightDevice[${i}]`
      if (d.major < 0 || d.minor < 0) return { path: at, reason: `${d.major}:${d.minor} is not a device number` }
      if (d.weight === undefined && d.leafWeight === undefined) return { path: at, reason: "gives neither weight nor leafWeight" }
      const w = range(d.weight, 10, 1000, `${at}.weight`) ?? range(d.leafWeight, 10, 1000, `${at}.leafWeight`)
      if (w) return w
    }
    for (const key of ["throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"] as const)
      for (const [i, d] of (b[key] ?? []).entries()) {
        const at = `${P}.blockIO.${key}[${i}]`
        if (d.major < 0 || d.minor < 0) return { path: at, reason: `${d.major}:${d.minor} is not a device number` }
        if (d.rate < 0) return { path: `${at}.rate`, reason: `${d.rate} is negative` }
      }
  }
  for (const [i, p] of (r.network?.priorities ?? []).entries())
    if (!/^[^\s/]{1,15}$/.test(p.name)) return { path: `${P}.network.priorities[${i}].name`, reason: `"${p.name}" is not an interface name` }
  for (const dev of Object.keys(r.rdma ?? {}))
    if (!/^\S+$/.test(dev)) return { path: `${P}.rdma`, reason: `"${dev}" is not an RDMA device name` }
  return undefined
}

/** [field, controller] for each knob given. */
export function v1KnobControllers(r: ResourcesSpec): Array<[string, string]> {
  const out: Array<[string, string]> = []
  if (r.memory?.useHierarchy !== undefined) out.push(["memory.useHierarchy", "memory"])
  for (const k of ["burst", "realtimeRuntime", "realtimePeriod", "idle"] as const) if (r.cpu?.[k] !== undefined) out.push([`cpu.${k}`, "cpu"])
  for (const k of ["leafWeight", "weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"] as const)
    if (r.blockIO?.[k] !== undefined) out.push([`blockIO.${k}`, "blkio"])
  if (r.network?.classID !== undefined) out.push(["network.classID", "net_cls"])
  if (r.network?.priorities !== undefined) out.push(["network.priorities", "net_prio"])
  if (r.rdma !== undefined) out.push(["rdma", "rdma"])
  return out
}

/** [field, present, the file(s) the kernel would need] for each knob given. */
function needsFiles(r: ResourcesSpec): Array<[string, boolean, readonly string[]]> {
  const out: Array<[string, boolean, readonly string[]]> = []
  const c = r.cpu
  out.push(["cpu.realtimePeriod", c?.realtimePeriod !== undefined, ["cpu.rt_period_us"]])
  out.push(["cpu.realtimeRuntime", c?.realtimeRuntime !== undefined, ["cpu.rt_runtime_us"]])
  out.push(["cpu.burst", c?.burst !== undefined, ["cpu.cfs_burst_us"]])
  out.push(["cpu.idle", c?.idle !== undefined, ["cpu.idle"]])
  out.push(["memory.useHierarchy", r.memory?.useHierarchy !== undefined, ["memory.use_hierarchy"]])
  const b = r.blockIO
  out.push(["blockIO.leafWeight", b?.leafWeight !== undefined, ["blkio.leaf_weight"]])
  out.push(["blockIO.weightDevice", (b?.weightDevice ?? []).some((d) => d.weight !== undefined), ["blkio.weight_device", "blkio.bfq.weight_device"]])
  out.push(["blockIO.weightDevice", (b?.weightDevice ?? []).some((d) => d.leafWeight !== undefined), ["blkio.leaf_weight_device"]])
  out.push(["blockIO.throttleReadBpsDevice", (b?.throttleReadBpsDevice ?? []).length > 0, ["blkio.throttle.read_bps_device"]])
  out.push(["blockIO.throttleWriteBpsDevice", (b?.throttleWriteBpsDevice ?? []).length > 0, ["blkio.throttle.write_bps_device"]])
  out.push(["blockIO.throttleReadIOPSDevice", (b?.throttleReadIOPSDevice ?? []).length > 0, ["blkio.throttle.read_iops_device"]])
  out.push(["blockIO.throttleWriteIOPSDevice", (b?.throttleWriteIOPSDevice ?? []).length > 0, ["blkio.throttle.write_iops_device"]])
  out.push(["network.classID", r.network?.classID !== undefined, ["net_cls.classid"]])
  out.push(["network.priorities", r.network?.priorities !== undefined, ["net_prio.ifpriomap"]])
  // rdma.max exists only below the root (the controller alone says it is there): v1KnobControllers checks it.
  return out
}

/** The first knob given whose file this host's kernel lacks (v1Files: the v1 hierarchies' root files). */
export function v1KnobLacking(r: ResourcesSpec, v1Files: ReadonlySet<string>): Problem {
  for (const [field, given, files] of needsFiles(r))
    if (given && !files.some((f) => v1Files.has(f)))
      return { path: `${P}.${field}`, reason: `this host's kernel lacks ${files.join(" and ")} (${files.length > 1 ? "none is" : "it is not"} in its cgroup v1 hierarchies)` }
  return undefined
}
