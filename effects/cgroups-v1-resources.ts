/**
 * linux.resources → the cgroup v1 file writes that apply them, in order. Pure:
 * the fs layer only carries them out (writing each to the container's directory
 * in the hierarchy that has `controller`). The semantics are runc's
 * (libcontainer/cgroups/fs/*.go): -1 is unlimited, 0 or absent leaves the kernel's
 * value, swap is memory+swap.
 *
 * Order matters to the kernel:
 * - memory.limit_in_bytes before memory.memsw.limit_in_bytes: memsw may not go
 *   below the memory limit, and at create both start unlimited, so the memory
 *   limit must come down first (runc's setMemoryAndSwap, "new limit < old memsw").
 * - cpu.cfs_period_us before cpu.cfs_quota_us (runc's order).
 * - devices: "a" to devices.deny first, then every rule in order: the spec's, then
 *   runc's always-allowed list (specconv.AllowedDevices). An empty rule list thus
 *   allows only the defaults (GHSA-g54h-m393-cpwq: an empty list must not mean
 *   "all devices").
 */
import type { DeviceRuleSpec, ResourcesSpec } from "../config/spec.ts"
import { v1KnobWrites } from "./cgroups-v1-knobs.ts"

/** One write: `value` into `file` of the container's cgroup in the hierarchy carrying `controller`. */
export interface CgroupWrite {
  readonly controller: string
  readonly file: string
  readonly value: string
  /**
   * Written first to each ancestor between the hierarchy's root and the container's cgroup whose
   * value is lower (numerically): a budget a child may only have if its parents have it (cpu.rt_runtime_us).
   */
  readonly ancestors?: boolean
}

/**
 * runc's AllowedDevices (libcontainer/specconv/spec_linux.go): always appended after the spec's rules.
 * Not c 5:1: that is the host's console, and with CAP_MKNOD (docker's default) a container could mknod
 * it and write there. The container's /dev/console is its own pty (136:N) bound in by the init.
 */
export const DEFAULT_DEVICE_RULES: readonly DeviceRuleSpec[] = [
  // mknod of any device; opening it is another matter (the rules below).
  { allow: true, type: "c", major: -1, minor: -1, access: "m" },
  { allow: true, type: "b", major: -1, minor: -1, access: "m" },
  { allow: true, type: "c", major: 1, minor: 3, access: "rwm" }, // null
  { allow: true, type: "c", major: 1, minor: 8, access: "rwm" }, // random
  { allow: true, type: "c", major: 1, minor: 7, access: "rwm" }, // full
  { allow: true, type: "c", major: 5, minor: 0, access: "rwm" }, // tty
  { allow: true, type: "c", major: 1, minor: 5, access: "rwm" }, // zero
  { allow: true, type: "c", major: 1, minor: 9, access: "rwm" }, // urandom
  { allow: true, type: "c", major: 136, minor: -1, access: "rwm" }, // pts
  { allow: true, type: "c", major: 5, minor: 2, access: "rwm" }, // ptmx
  { allow: true, type: "c", major: 10, minor: 200, access: "rwm" }, // tuntap
]

/**
 * runc's setMemoryAndSwap order (libcontainer/cgroups/fs/memory.go): the kernel refuses a memory limit
 * above memory+swap, and memory+swap below the memory limit, so when both are written, swap goes first
 * if it is being lifted (-1) or is above the current memory limit; else memory first. `currentLimit`
 * is memory.limit_in_bytes now (read only when both writes are there).
 */
export function orderMemoryWrites(writes: readonly CgroupWrite[], currentLimit: () => number): CgroupWrite[] {
  const mem = writes.findIndex((w) => w.file === "memory.limit_in_bytes")
  const swap = writes.findIndex((w) => w.file === "memory.memsw.limit_in_bytes")
  if (mem < 0 || swap < 0 || swap < mem) return [...writes]
  const value = Number(writes[swap]!.value)
  if (value !== -1 && !(currentLimit() < value)) return [...writes]
  const out = writes.filter((_, i) => i !== swap)
  out.splice(mem, 0, writes[swap]!)
  return out
}

/** The access letters the kernel knows, in its order: others are ignored, as runc's Permissions do ("rwx" → "rw"). */
export const deviceAccess = (access: string | undefined): string => (access === undefined ? "rwm" : [..."rwm"].filter((c) => access.includes(c)).join(""))

const num = (n: number | undefined) => (n === undefined || n === -1 ? "*" : `${n}`)

/** A rule as devices.allow/deny take it: "c 1:3 rwm", "a" for everything. */
export function deviceLine(d: DeviceRuleSpec): string {
  const type = d.type ?? "a"
  // "a" ignores major, minor and access; the kernel takes the bare letter.
  return type === "a" ? "a" : `${type} ${num(d.major)}:${num(d.minor)} ${deviceAccess(d.access)}`
}

/** The device writes for the spec's rules (runc's default list appended). */
export function deviceWrites(rules: readonly DeviceRuleSpec[] | undefined): CgroupWrite[] {
  return [
    { controller: "devices", file: "devices.deny", value: "a" },
    ...[...(rules ?? []), ...DEFAULT_DEVICE_RULES].map((d) => ({
      controller: "devices",
      file: d.allow ? "devices.allow" : "devices.deny",
      value: deviceLine(d),
    })),
  ]
}

/** Huge page sizes as the spec names them ("2MB") from /sys/kernel/mm/hugepages entries ("hugepages-2048kB"). */
export function hugepageSizeName(kb: number): string {
  return kb >= 1 << 20 && kb % (1 << 20) === 0 ? `${kb >> 20}GB` : kb >= 1024 && kb % 1024 === 0 ? `${kb >> 10}MB` : `${kb}KB`
}

/**
 * The writes for `r` at create. `files` are the v1 knob names this host has (HostFacts.v1Files):
 * they choose between alternatives (blkio.weight or, with BFQ, blkio.bfq.weight).
 */
export function v1Writes(r: ResourcesSpec | undefined, files: ReadonlySet<string> = new Set()): CgroupWrite[] {
  const out: CgroupWrite[] = []
  const w = (controller: string, file: string, value: string | number) => out.push({ controller, file, value: `${value}` })
  const c = r?.cpu
  if (c?.cpus) w("cpuset", "cpuset.cpus", c.cpus)
  if (c?.mems) w("cpuset", "cpuset.mems", c.mems)
  if (c?.shares) w("cpu", "cpu.shares", c.shares)
  if (c?.period) w("cpu", "cpu.cfs_period_us", c.period)
  if (c?.quota) w("cpu", "cpu.cfs_quota_us", c.quota)
  const m = r?.memory
  if (m?.limit) w("memory", "memory.limit_in_bytes", m.limit)
  if (m?.swap) w("memory", "memory.memsw.limit_in_bytes", m.swap)
  if (m?.reservation) w("memory", "memory.soft_limit_in_bytes", m.reservation)
  if (m?.swappiness !== undefined) w("memory", "memory.swappiness", m.swappiness)
  if (m?.disableOOMKiller) w("memory", "memory.oom_control", 1)
  // memory.kernel is deprecated by the runtime-spec and ignored, as runc >= 1.0 does (kernels >= 5.16
  // accept the write and do nothing); kernelTCP is still a v1 knob.
  if (m?.kernelTCP) w("memory", "memory.kmem.tcp.limit_in_bytes", m.kernelTCP)
  // pids.max takes "max", not -1.
  if (r?.pids?.limit) w("pids", "pids.max", r.pids.limit > 0 ? r.pids.limit : "max")
  if (r?.blockIO?.weight) w("blkio", files.has("blkio.weight") || !files.has("blkio.bfq.weight") ? "blkio.weight" : "blkio.bfq.weight", r.blockIO.weight)
  for (const h of r?.hugepageLimits ?? []) w("hugetlb", `hugetlb.${h.pageSize}.limit_in_bytes`, h.limit)
  out.push(...v1KnobWrites(r, files))
  out.push(...deviceWrites(r?.devices))
  return out
}
