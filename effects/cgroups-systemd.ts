/**
 * The systemd cgroup driver (runc --systemd-cgroup; issue 17), first part: what is pure. The
 * container's cgroup is a transient scope that systemd makes over D-Bus; this module decides its
 * name, its place in the tree and the unit properties, exactly as runc's systemd manager does
 * (opencontainers/cgroups systemd/common.go, v2.go, cpuset.go; specconv for the path), so that a
 * config means the same under runc and us. No D-Bus here: the bus is a service (SystemdBus below)
 * the layer will be given, so that all of this is tested without one.
 *
 * - cgroupsPath "slice:prefix:name" (exactly three fields; "" → system.slice, prefix "xcontainer",
 *   the id): the unit is "prefix-name.scope", or "name" itself when it ends in ".slice" (runc makes
 *   a slice unit then). Anything else is a ConfigError naming linux.cgroupsPath, before anything
 *   is created.
 * - The slice expands as systemd lays it out: "a-b-c.slice" → /a.slice/a-b.slice/a-b-c.slice
 *   ("-.slice" is the root); the cgroup is that path + "/" + unit under the cgroup2 mount.
 * - Properties at StartTransientUnit: Description, Slice (Wants for a slice unit), Delegate=yes
 *   (the scope's subtree is ours: we write the knobs systemd has no property for), the init's pid
 *   (a scope cannot start empty, so the unit is made when the init exists, at its barrier, before
 *   it runs: the join step of the lifecycle), Memory/CPU/IO/TasksAccounting, DefaultDependencies=no,
 *   then the resources: MemoryMax, MemoryLow, MemorySwapMax, CPUWeight (CPUWeight=0 for cpu.idle
 *   on systemd ≥ 252), CPUQuotaPerSecUSec rounded up to 10 ms as systemd keeps it (and
 *   CPUQuotaPeriodUSec on ≥ 242), TasksMax (0 → 1: systemd refuses 0), AllowedCPUs /
 *   AllowedMemoryNodes as bit masks (≥ 244), and the unified keys systemd knows. The same list goes
 *   to SetUnitProperties on update; every file is then also written by the v2 manager (runc's
 *   fsMgr.Set), so systemd's view and the kernel's agree, and what systemd has no property for
 *   (burst, io, hugetlb, rdma, the device program) is still applied.
 */
import type { ResourcesSpec } from "../config/spec.ts"
import { ConfigError } from "./errors.ts"
import { sharesToWeight, swapToV2 } from "./cgroups-v2-resources.ts"

/** Where a container's scope goes, from linux.cgroupsPath. */
export interface SystemdPlacement {
  /** The parent slice unit ("system.slice"). */
  readonly slice: string
  /** The container's unit: "prefix-name.scope", or a ".slice" unit. */
  readonly unit: string
  /** The cgroup path of the unit below the cgroup2 mount ("/system.slice/xcontainer-id.scope"). */
  readonly cgroup: string
}

export const DEFAULT_SLICE = "system.slice"
export const DEFAULT_PREFIX = "xcontainer"

/** runc's ExpandSlice: the cgroup path systemd gives a slice unit, or why the name is not one. */
export function expandSlice(slice: string): { readonly path: string } | { readonly reason: string } {
  const suffix = ".slice"
  if (!slice.endsWith(suffix) || slice.includes("/")) return { reason: `"${slice}" is not a slice unit name (NAME.slice, no "/")` }
  const name = slice.slice(0, -suffix.length)
  if (name === "-") return { path: "/" }
  let out = ""
  let prefix = ""
  for (const component of name.split("-")) {
    if (component === "") return { reason: `"${slice}" has an empty component (a leading, trailing or doubled "-")` }
    out += `/${prefix}${component}${suffix}`
    prefix += `${component}-`
  }
  return { path: out }
}

/** Parses linux.cgroupsPath for the systemd driver (runc's "slice:prefix:name"); `id` names the default scope. */
export function parseSystemdPath(cgroupsPath: string | undefined, id: string): SystemdPlacement | ConfigError {
  const field = "linux.cgroupsPath"
  let slice = DEFAULT_SLICE
  let prefix = DEFAULT_PREFIX
  let name = id
  if (cgroupsPath !== undefined && cgroupsPath !== "") {
    const parts = cgroupsPath.split(":")
    if (parts.length !== 3) return new ConfigError({ path: field, reason: `"${cgroupsPath}" is not "slice:prefix:name", as the systemd cgroup driver needs` })
    slice = parts[0] || DEFAULT_SLICE
    prefix = parts[1]!
    name = parts[2]!
  }
  if (name === "") return new ConfigError({ path: field, reason: `"${cgroupsPath}" names no unit (the name field is empty)` })
  // Unit names are ASCII letters, digits and ":-_.\@" (systemd's unit_name_is_valid); ":" already split them.
  for (const [what, v] of [["prefix", prefix], ["name", name]] as const)
    if (!/^[A-Za-z0-9_.\\@-]*$/.test(v)) return new ConfigError({ path: field, reason: `the ${what} "${v}" has characters a systemd unit name cannot have` })
  const unit = name.endsWith(".slice") ? name : `${prefix}-${name}.scope`
  if (unit.length > 255) return new ConfigError({ path: field, reason: `the unit name "${unit}" is longer than systemd's 255 characters` })
  const expanded = expandSlice(slice)
  if ("reason" in expanded) return new ConfigError({ path: field, reason: expanded.reason })
  return { slice, unit, cgroup: `${expanded.path === "/" ? "" : expanded.path}/${unit}` }
}

/** A D-Bus value with its signature: systemd's property types are "t" (uint64), "b", "s", "au", "ay". */
export type SystemdValue =
  | { readonly sig: "t"; readonly value: bigint }
  | { readonly sig: "b"; readonly value: boolean }
  | { readonly sig: "s"; readonly value: string }
  | { readonly sig: "au"; readonly value: readonly number[] }
  | { readonly sig: "ay"; readonly value: Uint8Array }

export interface SystemdProperty {
  readonly name: string
  readonly value: SystemdValue
}

const MAX_U64 = 0xffff_ffff_ffff_ffffn
const u64 = (name: string, v: bigint | number): SystemdProperty => ({ name, value: { sig: "t", value: BigInt(v) } })

/** runc's RangeToBits: "0-2,7" → a little-endian bit mask (byte 0 holds cpus 0–7), as AllowedCPUs takes it. */
export function rangeToBits(list: string): Uint8Array | undefined {
  const bits: number[] = []
  for (const raw of list.split(",")) {
    const r = raw.trim()
    if (r === "") continue
    const m = /^(\d+)(?:-(\d+))?$/.exec(r)
    if (!m) return undefined
    const start = Number(m[1])
    const end = m[2] !== undefined ? Number(m[2]) : start
    if (start > end || end > 0xffff) return undefined
    for (let i = start; i <= end; i++) bits.push(i)
  }
  if (bits.length === 0) return undefined
  const out = new Uint8Array(Math.floor(Math.max(...bits) / 8) + 1)
  for (const b of bits) out[b >> 3]! |= 1 << (b & 7)
  return out
}

/** runc's addCPUQuota: CPUQuotaPerSecUSec rounded up to 10 ms (systemd's granularity), "infinity" for no quota. */
export function cpuQuotaProperties(quota: number, period: number, systemdVersion: number): SystemdProperty[] {
  const out: SystemdProperty[] = []
  if (period !== 0 && systemdVersion >= 242) out.push(u64("CPUQuotaPeriodUSec", period))
  if (quota !== 0 || period !== 0) {
    let perSec = MAX_U64
    if (quota > 0) {
      const p = BigInt(period || 100000)
      perSec = (BigInt(quota) * 1_000_000n) / p
      if (perSec % 10000n !== 0n) perSec = (perSec / 10000n + 1n) * 10000n
    }
    out.push(u64("CPUQuotaPerSecUSec", perSec))
  }
  return out
}

/** The unified keys systemd has a property for (runc's unifiedResToSystemdProps); a string is the refusal. */
function unifiedProperties(unified: Readonly<Record<string, unknown>>, systemdVersion: number): SystemdProperty[] | string {
  const out: SystemdProperty[] = []
  const idle = String(unified["cpu.idle"] ?? "").trim() === "1" && systemdVersion >= 252
  for (const [k, raw] of Object.entries(unified)) {
    const v = String(raw).trim()
    const num = (): bigint | undefined => (v === "max" ? MAX_U64 : /^\d+$/.test(v) ? BigInt(v) : undefined)
    switch (k) {
      case "cpu.idle":
        if (idle) out.push(u64("CPUWeight", 0))
        break
      case "cpu.weight":
        if (idle) break // systemd cannot have both; cpu.idle wins, as in runc
        if (!/^\d+$/.test(v)) return `unified "${k}": "${v}" is not a number`
        out.push(u64("CPUWeight", BigInt(v)))
        break
      case "cpu.max": {
        const f = v.split(/\s+/)
        if (f.length < 1 || f.length > 2 || (f[0] !== "max" && !/^\d+$/.test(f[0]!)) || (f[1] !== undefined && !/^\d+$/.test(f[1]))) return `unified "${k}": "${v}" is not "QUOTA [PERIOD]"`
        out.push(...cpuQuotaProperties(f[0] === "max" ? 0 : Number(f[0]), f[1] !== undefined ? Number(f[1]) : 100000, systemdVersion))
        break
      }
      case "cpuset.cpus":
      case "cpuset.mems": {
        const bits = rangeToBits(v)
        if (!bits) return `unified "${k}": "${v}" is not a cpu/node list`
        if (systemdVersion >= 244) out.push({ name: k === "cpuset.cpus" ? "AllowedCPUs" : "AllowedMemoryNodes", value: { sig: "ay", value: bits } })
        break
      }
      case "memory.high":
      case "memory.low":
      case "memory.min":
      case "memory.max":
      case "memory.swap.max": {
        const n = num()
        if (n === undefined) return `unified "${k}": "${v}" is not a number or "max"`
        const name = { "memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin", "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax" }[k]
        out.push(u64(name, n))
        break
      }
      case "pids.max": {
        const n = num()
        if (n === undefined) return `unified "${k}": "${v}" is not a number or "max"`
        out.push(u64("TasksMax", n === 0n ? 1n : n))
        break
      }
      default:
      // No property: the v2 manager writes the file after the unit exists (runc: "will still be applied to cgroupfs").
    }
  }
  return out
}

/**
 * The resource properties of the unit (runc's genV2ResourcesProperties, without the device ones:
 * the device program is attached by the v2 manager as without systemd). `systemdVersion` gates
 * what older systemd lacks. A string is the refusal, named by field.
 */
export function resourceProperties(r: ResourcesSpec | undefined, systemdVersion: number): SystemdProperty[] | ConfigError {
  const out: SystemdProperty[] = []
  if (!r) return out
  const P = "linux.resources"
  const m = r.memory
  if (m?.limit) out.push(u64("MemoryMax", m.limit === -1 ? MAX_U64 : BigInt(m.limit)))
  if (m?.reservation) out.push(u64("MemoryLow", m.reservation === -1 ? MAX_U64 : BigInt(m.reservation)))
  const swap = swapToV2(m?.swap ?? 0, m?.limit ?? 0)
  if (typeof swap === "string") return new ConfigError({ path: `${P}.memory.swap`, reason: swap })
  if (swap !== 0) out.push(u64("MemorySwapMax", swap === -1 ? MAX_U64 : BigInt(swap)))
  const c = r.cpu
  const idle = typeof c?.idle === "number" && c.idle === 1 && systemdVersion >= 252
  if (idle) out.push(u64("CPUWeight", 0))
  if (c?.shares && !idle) out.push(u64("CPUWeight", sharesToWeight(c.shares)))
  out.push(...cpuQuotaProperties(c?.quota ?? 0, c?.period ?? 0, systemdVersion))
  if (r.pids?.limit) out.push(u64("TasksMax", r.pids.limit < 0 ? MAX_U64 : BigInt(r.pids.limit)))
  if (systemdVersion >= 244)
    for (const [field, name, list] of [["cpus", "AllowedCPUs", c?.cpus], ["mems", "AllowedMemoryNodes", c?.mems]] as const) {
      if (!list) continue
      const bits = rangeToBits(list)
      if (!bits) return new ConfigError({ path: `${P}.cpu.${field}`, reason: `"${list}" is not a list of numbers and ranges` })
      out.push({ name, value: { sig: "ay", value: bits } })
    }
  if (r.unified && typeof r.unified === "object") {
    const u = unifiedProperties(r.unified as Record<string, unknown>, systemdVersion)
    if (typeof u === "string") return new ConfigError({ path: `${P}.unified`, reason: u })
    out.push(...u)
  }
  return out
}

/** Everything StartTransientUnit is given for the container's unit (runc's UnifiedManager.Apply). */
export function unitProperties(place: SystemdPlacement, id: string, pid: number, resources: ResourcesSpec | undefined, systemdVersion: number): SystemdProperty[] | ConfigError {
  const res = resourceProperties(resources, systemdVersion)
  if (res instanceof ConfigError) return res
  const isSlice = place.unit.endsWith(".slice")
  return [
    { name: "Description", value: { sig: "s", value: `xcontainer container ${id}` } },
    isSlice ? { name: "Wants", value: { sig: "s", value: place.slice } } : { name: "Slice", value: { sig: "s", value: place.slice } },
    ...(isSlice ? [] : [{ name: "Delegate", value: { sig: "b", value: true } } as const]),
    { name: "PIDs", value: { sig: "au", value: [pid] } },
    ...["MemoryAccounting", "CPUAccounting", "IOAccounting", "TasksAccounting"].map((name) => ({ name, value: { sig: "b", value: true } }) as const),
    { name: "DefaultDependencies", value: { sig: "b", value: false } },
    ...res,
  ]
}

/**
 * What the driver needs from systemd (org.freedesktop.systemd1.Manager on the system bus). The
 * implementation will wrap a maintained D-Bus client from npm (not yet a dependency: the choice goes
 * into the README with it); each failure is a CgroupError naming the unit and D-Bus's error name
 * (org.freedesktop.systemd1.UnitExists, …).
 */
export interface SystemdBus {
  /** Manager.Version, as a number (252 for "252.39-1~deb12u2"). */
  readonly version: () => Promise<number>
  /** StartTransientUnit(unit, "replace", props, []) and the job's JobRemoved result ("done" or why not). */
  readonly startTransientUnit: (unit: string, props: readonly SystemdProperty[]) => Promise<string>
  /** SetUnitProperties(unit, runtime = true, props). */
  readonly setUnitProperties: (unit: string, props: readonly SystemdProperty[]) => Promise<void>
  /** StopUnit(unit, "replace") and its job's result, then ResetFailedUnit (best effort). */
  readonly stopUnit: (unit: string) => Promise<string>
}
