/**
 * The rules `linux.resources` must meet before anything is created. Two passes:
 * `checkResourceShape` needs only the config (negative limits, unknown device
 * access letters, knobs this runtime does not apply yet) and runs in parseSpec;
 * `checkResourcesOnHost` also needs the host's facts (which controllers have a
 * v1 hierarchy, the online cpus and memory nodes, which optional files the kernel
 * has) and runs in create, before the state dir is claimed. Each returns the
 * first violation with the JSON path of the field, as runc's
 * libcontainer/configs/validate and its fs managers' pre-checks do.
 */
import { checkDeviceRules, checkNoUnified, checkResourcesOnV2, checkUnifiedShape } from "./resources-v2.ts"
import type { ResourcesSpec } from "./spec.ts"
import { checkV1KnobShape, v1KnobControllers, v1KnobLacking } from "./resources-v1-knobs.ts"

/** What the host's cgroups offer (from the Cgroups service's `facts`). */
export interface HostFacts {
  /** Controllers that have a v1 hierarchy ("memory", "cpu", "hugetlb" …). */
  readonly v1Controllers: ReadonlySet<string>
  /** File names present in the v1 hierarchies' roots (optional knobs: memory.memsw.*, blkio.weight …). */
  readonly v1Files: ReadonlySet<string>
  /** Cpus and memory nodes a container may be given (the cpuset root's effective sets). */
  readonly cpus: ReadonlySet<number>
  readonly mems: ReadonlySet<number>
  /** Huge page sizes as the spec names them ("2MB", "1GB"). */
  readonly hugepageSizes: ReadonlySet<string>
  /** "v2" on a pure cgroup v2 host (effects/cgroups-layout.ts); absent or "v1"/"hybrid" otherwise. */
  readonly layout?: "v1" | "hybrid" | "v2"
  /** On v2: the root's cgroup.controllers, what a container's cgroup can be given. */
  readonly v2Controllers?: ReadonlySet<string>
}

export type Problem = { path: string; reason: string } | undefined

const P = "linux.resources"

/** A cpuset list ("0-2,5"); undefined when malformed. */
export function parseCpuList(text: string): number[] | undefined {
  const out: number[] = []
  if (text.trim() === "") return []
  for (const part of text.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
    if (!m) return undefined
    const lo = Number(m[1])
    const hi = m[2] === undefined ? lo : Number(m[2])
    // A range wider than any machine is a typo, and expanding it would cost memory.
    if (hi < lo || hi > 65535) return undefined
    for (let i = lo; i <= hi; i++) out.push(i)
  }
  return out
}

/** -1 (unlimited), 0 (unset) or positive; anything else names the field. */
const limit = (v: number | undefined, at: string): Problem =>
  v !== undefined && v < -1 ? { path: at, reason: `${v} is negative (-1 means unlimited)` } : undefined

/** cpu.cpus and cpu.mems name only cpus and memory nodes online here (both layouts). */
export function checkCpusOnline(r: ResourcesSpec, host: Pick<HostFacts, "cpus" | "mems">): Problem {
  for (const [key, set, what] of [
    ["cpus", host.cpus, "cpu"],
    ["mems", host.mems, "memory node"],
  ] as const) {
    const text = r.cpu?.[key]
    if (text === undefined) continue
    const outside = (parseCpuList(text) ?? []).find((n) => !set.has(n))
    if (outside !== undefined) return { path: `${P}.cpu.${key}`, reason: `${what} ${outside} is not online here (${[...set].join(",")})` }
  }
  return undefined
}

/** Rules that need only the config. */
export function checkResourceShape(r: ResourcesSpec | undefined): Problem {
  if (!r) return undefined
  const layoutFree = checkUnifiedShape(r.unified) ?? checkDeviceRules(r)
  if (layoutFree) return layoutFree
  const m = r.memory
  if (m) {
    const bad = limit(m.limit, `${P}.memory.limit`) ?? limit(m.reservation, `${P}.memory.reservation`) ?? limit(m.swap, `${P}.memory.swap`)
    if (bad) return bad
    // v1 counts swap as memory+swap: the kernel refuses a memsw limit below the memory limit (runc's error too).
    if ((m.swap ?? 0) > 0 && !((m.limit ?? 0) > 0))
      return { path: `${P}.memory.swap`, reason: "a memory+swap limit needs memory.limit (on cgroup v1 swap counts memory too)" }
    if ((m.swap ?? 0) > 0 && (m.limit ?? 0) > (m.swap ?? 0))
      return { path: `${P}.memory.swap`, reason: `${m.swap} is below memory.limit ${m.limit} (on cgroup v1 swap counts memory too)` }
    if (m.swappiness !== undefined && (m.swappiness < 0 || m.swappiness > 100))
      return { path: `${P}.memory.swappiness`, reason: `${m.swappiness} is outside 0-100` }
  }
  const c = r.cpu
  if (c) {
    // The kernel clamps shares to 2..262144 silently; runc reads them back and fails. We refuse up front.
    if (c.shares !== undefined && c.shares !== 0 && (c.shares < 2 || c.shares > 262144))
      return { path: `${P}.cpu.shares`, reason: `${c.shares} is outside 2-262144` }
    if (c.period !== undefined && c.period !== 0 && (c.period < 1000 || c.period > 1_000_000))
      return { path: `${P}.cpu.period`, reason: `${c.period} is outside 1000-1000000 (microseconds)` }
    if (c.quota !== undefined && c.quota !== 0 && c.quota !== -1 && c.quota < 1000)
      return { path: `${P}.cpu.quota`, reason: `${c.quota} is below 1000 microseconds (-1 means unlimited)` }
    if (c.cpus !== undefined && parseCpuList(c.cpus) === undefined) return { path: `${P}.cpu.cpus`, reason: `"${c.cpus}" is not a cpu list (e.g. "0-2,5")` }
    if (c.mems !== undefined && parseCpuList(c.mems) === undefined) return { path: `${P}.cpu.mems`, reason: `"${c.mems}" is not a node list (e.g. "0-1")` }
  }
  if (r.pids) {
    const bad = limit(r.pids.limit, `${P}.pids.limit`)
    if (bad) return bad
  }
  const knob = checkV1KnobShape(r)
  if (knob) return knob
  const w = r.blockIO?.weight
  if (w !== undefined && w !== 0 && (w < 10 || w > 1000)) return { path: `${P}.blockIO.weight`, reason: `${w} is outside 10-1000` }
  for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
    if (!/^\d+(KB|MB|GB)$/.test(h.pageSize)) return { path: `${P}.hugepageLimits[${i}].pageSize`, reason: `"${h.pageSize}" is not a page size (e.g. "2MB")` }
    if (h.limit < 0) return { path: `${P}.hugepageLimits[${i}].limit`, reason: `${h.limit} is negative` }
  }
  for (const [i, d] of (r.devices ?? []).entries()) {
    const at = `${P}.devices[${i}]`
    if (d.major !== undefined && d.major < -1) return { path: `${at}.major`, reason: `${d.major} is negative (-1 means any)` }
    if (d.minor !== undefined && d.minor < -1) return { path: `${at}.minor`, reason: `${d.minor} is negative (-1 means any)` }
    if (d.access !== undefined) {
      // Letters other than r, w and m are ignored and repeats are one, as runc's Permissions (devices/device.go):
      // "rwx" is "rw". A rule left with none would allow or deny nothing (runc fails on it at its final check).
      if (![...d.access].some((ch) => "rwm".includes(ch)))
        return { path: `${at}.access`, reason: `"${d.access}" has none of r, w and m` }
    }
  }
  return undefined
}

/** Which controller each group of knobs needs. */
const needs = (r: ResourcesSpec): Array<[string, string]> => {
  const out: Array<[string, string]> = []
  const m = r.memory
  if (m && (m.limit || m.reservation || m.swap || m.swappiness !== undefined || m.disableOOMKiller || m.kernelTCP)) out.push(["memory", "memory"])
  const c = r.cpu
  if (c && (c.shares || c.quota || c.period)) out.push(["cpu", "cpu"])
  if (c && (c.cpus !== undefined || c.mems !== undefined)) out.push([c.cpus !== undefined ? "cpu.cpus" : "cpu.mems", "cpuset"])
  if (r.pids?.limit) out.push(["pids", "pids"])
  if (r.blockIO?.weight) out.push(["blockIO", "blkio"])
  if (r.hugepageLimits?.length) out.push(["hugepageLimits", "hugetlb"])
  if (r.devices?.length) out.push(["devices", "devices"])
  out.push(...v1KnobControllers(r))
  return out
}

/** Rules that need the host (checkResourceShape first). */
export function checkResourcesOnHost(r: ResourcesSpec | undefined, host: HostFacts): Problem {
  if (!r) return undefined
  if (host.layout === "v2") return checkResourcesOnV2(r, host)
  const noUnified = checkNoUnified(r)
  if (noUnified) return noUnified
  for (const [field, ctrl] of needs(r))
    if (!host.v1Controllers.has(ctrl))
      return { path: `${P}.${field}`, reason: `needs a cgroup v1 ${ctrl} hierarchy, and this host has none` }
  const m = r.memory
  if (m?.swap && m.swap !== 0 && !host.v1Files.has("memory.memsw.limit_in_bytes"))
    return { path: `${P}.memory.swap`, reason: "swap accounting is off on this host (no memory.memsw.limit_in_bytes)" }
  const offline = checkCpusOnline(r, host)
  if (offline) return offline
  if (r.blockIO?.weight && !host.v1Files.has("blkio.weight") && !host.v1Files.has("blkio.bfq.weight"))
    return { path: `${P}.blockIO.weight`, reason: "this host's blkio controller has no weight (no CFQ or BFQ scheduler)" }
  const lacking = v1KnobLacking(r, host.v1Files)
  if (lacking) return lacking
  for (const [i, h] of (r.hugepageLimits ?? []).entries())
    if (!host.hugepageSizes.has(h.pageSize))
      return { path: `${P}.hugepageLimits[${i}].pageSize`, reason: `${h.pageSize} pages do not exist here (${[...host.hugepageSizes].join(", ")})` }
  return undefined
}
