/**
 * The v1 writes for the rarer knobs (config/resources-v1-knobs.ts validates them), appended by
 * v1Writes after the common ones, so that the kernel's order holds:
 * - cpu.cfs_burst_us after cpu.cfs_quota_us (a burst above the quota is EINVAL);
 * - cpu.rt_period_us before cpu.rt_runtime_us (runc's SetRtSched), and the runtime goes to the
 *   ancestors first: a new cgroup starts with 0 realtime runtime, and the kernel refuses a child
 *   more than its parent has (EINVAL, measured), so a nested cgroupsPath needs its parents raised;
 * - one device per write for the per-device files (the kernel parses one "major:minor value").
 * Where a knob has two files (CFQ's blkio.weight_device, BFQ's blkio.bfq.weight_device) `files`
 * (the host's v1 root files) chooses.
 */
import type { ResourcesSpec } from "../config/spec.ts"
import type { CgroupWrite } from "./cgroups-v1-resources.ts"

/** The writes, in order. */
export function v1KnobWrites(r: ResourcesSpec | undefined, files: ReadonlySet<string>): CgroupWrite[] {
  const out: CgroupWrite[] = []
  const w = (controller: string, file: string, value: string | number, ancestors?: boolean) =>
    out.push({ controller, file, value: `${value}`, ...(ancestors ? { ancestors } : {}) })
  if (r?.memory?.useHierarchy) w("memory", "memory.use_hierarchy", 1)
  const c = r?.cpu
  if (c?.burst !== undefined) w("cpu", "cpu.cfs_burst_us", c.burst)
  if (c?.idle !== undefined) w("cpu", "cpu.idle", c.idle)
  if (c?.realtimePeriod) w("cpu", "cpu.rt_period_us", c.realtimePeriod)
  if (c?.realtimeRuntime) w("cpu", "cpu.rt_runtime_us", c.realtimeRuntime, true)
  const b = r?.blockIO
  if (b?.leafWeight) w("blkio", "blkio.leaf_weight", b.leafWeight)
  const weightFile = files.has("blkio.weight_device") || !files.has("blkio.bfq.weight_device") ? "blkio.weight_device" : "blkio.bfq.weight_device"
  for (const d of b?.weightDevice ?? []) {
    if (d.weight !== undefined) w("blkio", weightFile, `${d.major}:${d.minor} ${d.weight}`)
    if (d.leafWeight !== undefined) w("blkio", "blkio.leaf_weight_device", `${d.major}:${d.minor} ${d.leafWeight}`)
  }
  for (const [key, file] of [
    ["throttleReadBpsDevice", "blkio.throttle.read_bps_device"],
    ["throttleWriteBpsDevice", "blkio.throttle.write_bps_device"],
    ["throttleReadIOPSDevice", "blkio.throttle.read_iops_device"],
    ["throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"],
  ] as const)
    for (const d of b?.[key] ?? []) w("blkio", file, `${d.major}:${d.minor} ${d.rate}`)
  if (r?.network?.classID !== undefined) w("net_cls", "net_cls.classid", r.network.classID)
  for (const p of r?.network?.priorities ?? []) w("net_prio", "net_prio.ifpriomap", `${p.name} ${p.priority}`)
  // runc's rdma: "<device> hca_handle=N hca_object=M", each part only when given.
  for (const [dev, l] of Object.entries(r?.rdma ?? {}))
    w("rdma", "rdma.max", [dev, ...(l.hcaHandles !== undefined ? [`hca_handle=${l.hcaHandles}`] : []), ...(l.hcaObjects !== undefined ? [`hca_object=${l.hcaObjects}`] : [])].join(" "))
  return out
}
