/**
 * Running as a user who is not root (rootless), as runc's rootless mode on a cgroup v1 host:
 * - cgroups: a hierarchy the user cannot write is skipped (runc's fs manager drops it from its paths
 *   when `Rootless` and no explicit cgroupsPath), and a limit that would have gone there is refused
 *   naming the field (runc: "cannot set memory limit: container could not join or create cgroup").
 *   Device rules are not limits here: runc ignores the devices controller rootless, and without
 *   CAP_MKNOD in the host's user namespace no device node can be made anyway.
 * - id mappings: only what /etc/subuid and /etc/subgid grant (or the user's own id), no overlap;
 *   newuidmap/newgidmap check the same, but only after the clone: refused here, nothing made.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { CgroupPaths } from "./cgroups.ts"
import type { IdMappingSpec, ResourcesSpec, Spec } from "../config/spec.ts"

/** runc's --rootless: undefined or "auto" → rootless when not root; true/false force it. */
export const isRootless = (rootless: boolean | undefined, euid: number = process.geteuid?.() ?? 0): boolean => rootless ?? euid !== 0

export type Problem = { readonly path: string; readonly reason: string } | undefined

/** Whether `dir` (made if missing, by mkdir -p) could be made and joined by us. */
function writableCgroup(dir: string): boolean {
  try {
    if (fs.existsSync(dir)) {
      fs.accessSync(path.join(dir, "cgroup.procs"), fs.constants.W_OK)
      return true
    }
    let up = path.dirname(dir)
    while (!fs.existsSync(up) && up !== "/") up = path.dirname(up)
    fs.accessSync(up, fs.constants.W_OK)
    return true
  } catch {
    return false
  }
}

/** The v1 controllers (or "" for cgroup2) each linux.resources field is written to. */
const FIELD_CONTROLLERS: Readonly<Record<string, readonly string[]>> = {
  memory: ["memory"],
  cpu: ["cpu", "cpuset"],
  pids: ["pids"],
  blockIO: ["blkio"],
  hugepageLimits: ["hugetlb"],
  network: ["net_cls", "net_prio"],
  rdma: ["rdma"],
  unified: [""],
}

/** The controllers a hierarchy's mount point carries: its basename on v1 ("cpu,cpuacct"), "" for cgroup2. */
const controllersOf = (mountPoint: string, v2: readonly string[]): string[] =>
  v2.includes(mountPoint) ? [""] : path.basename(mountPoint).split(",")

const isSet = (v: unknown): boolean =>
  v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0) && !(typeof v === "object" && !Array.isArray(v) && Object.values(v).every((x) => x === undefined))

/**
 * The cgroups a rootless container gets: `paths` without the hierarchies it cannot write. A limit in a
 * skipped hierarchy, or an explicit cgroupsPath that cannot be made, is a problem naming the field.
 * `v2Mounts`: the mount points that are cgroup2 (their controllers are not in the name).
 */
export function rootlessCgroups(
  paths: CgroupPaths,
  spec: Spec,
  v2Mounts: readonly string[],
  writable: (dir: string) => boolean = writableCgroup,
): { readonly paths: CgroupPaths; readonly problem: Problem } {
  const kept: Record<string, string> = {}
  const skipped: string[] = []
  for (const [mp, dir] of Object.entries(paths)) {
    if (writable(dir)) kept[mp] = dir
    else skipped.push(mp)
  }
  if (skipped.length === 0) return { paths, problem: undefined }
  const uid = process.geteuid?.() ?? 0
  if (spec.linux?.cgroupsPath)
    return {
      paths: kept,
      problem: { path: "linux.cgroupsPath", reason: `rootless (uid ${uid}): ${paths[skipped[0]!]} cannot be created or joined (not writable)` },
    }
  const lost = new Set(skipped.flatMap((mp) => controllersOf(mp, v2Mounts)))
  const r: ResourcesSpec = spec.linux?.resources ?? {}
  for (const [field, ctrls] of Object.entries(FIELD_CONTROLLERS)) {
    if (!isSet(r[field as keyof ResourcesSpec])) continue
    // Honoured if some writable hierarchy carries each controller (a v1 one, or cgroup2 on a hybrid host).
    if (ctrls.some((c) => lost.has(c) && !Object.keys(kept).some((mp) => controllersOf(mp, v2Mounts).includes(c))))
      return {
        paths: kept,
        problem: {
          path: `linux.resources.${field}`,
          reason: `rootless (uid ${uid}): cannot set a ${field} limit: the ${ctrls.filter((c) => lost.has(c)).join("/") || "cgroup2"} cgroup is not writable by this user (remove the limit, or run as root or in a delegated cgroup)`,
        },
      }
  }
  return { paths: kept, problem: undefined }
}

/** One user's ranges from /etc/subuid or /etc/subgid text ("name:start:count" or "uid:start:count"). */
export function subIdRanges(text: string, user: { readonly name: string | undefined; readonly id: number }): { start: number; count: number }[] {
  const out: { start: number; count: number }[] = []
  for (const line of text.split("\n")) {
    const [who, start, count] = line.trim().split(":")
    if (!who || start === undefined || count === undefined || !/^\d+$/.test(start) || !/^\d+$/.test(count)) continue
    if (who === user.name || who === String(user.id)) out.push({ start: Number(start), count: Number(count) })
  }
  return out
}

/**
 * The rule newuidmap/newgidmap enforce, checked before anything exists: each host range is the
 * caller's own id (size 1) or inside one of its subordinate ranges; no two container ranges and no two
 * host ranges overlap (the kernel refuses overlaps too, but only after the clone).
 */
export function checkRootlessMappings(
  field: "linux.uidMappings" | "linux.gidMappings",
  maps: readonly IdMappingSpec[] | undefined,
  own: number,
  ranges: readonly { start: number; count: number }[],
  file: string,
): Problem {
  const m = maps ?? []
  for (let i = 0; i < m.length; i++) {
    const x = m[i]!
    for (let j = 0; j < i; j++) {
      const y = m[j]!
      if (x.containerID < y.containerID + y.size && y.containerID < x.containerID + x.size)
        return { path: `${field}[${i}]`, reason: `container ids ${x.containerID}..${x.containerID + x.size - 1} overlap ${field}[${j}]` }
      if (x.hostID < y.hostID + y.size && y.hostID < x.hostID + x.size)
        return { path: `${field}[${i}]`, reason: `host ids ${x.hostID}..${x.hostID + x.size - 1} overlap ${field}[${j}]` }
    }
    const ownId = x.hostID === own && x.size === 1
    const inRange = ranges.some((r) => x.hostID >= r.start && x.hostID + x.size <= r.start + r.count)
    if (!ownId && !inRange)
      return {
        path: `${field}[${i}]`,
        reason: `host ids ${x.hostID}..${x.hostID + x.size - 1} are neither this user's id (${own}) nor in its ranges in ${file} (${ranges.map((r) => `${r.start}+${r.count}`).join(", ") || "none"})`,
      }
  }
  return undefined
}

/** Whether a map is only the caller's own id, which an unprivileged parent may write itself. */
export const selfMapOnly = (maps: readonly IdMappingSpec[] | undefined, own: number): boolean =>
  (maps ?? []).length === 1 && maps![0]!.hostID === own && maps![0]!.size === 1

const CAP_SYS_PTRACE = 19n
const CAP_CHECKPOINT_RESTORE = 40n

/** The effective capability set of this process, from /proc/self/status (0 when unreadable). */
export function ownCapEff(status: string = readStatus()): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)
  return m ? BigInt(`0x${m[1]}`) : 0n
}

function readStatus(): string {
  try {
    return fs.readFileSync("/proc/self/status", "utf8")
  } catch {
    return ""
  }
}

/**
 * Why CRIU cannot checkpoint or restore for a manager that is not root (undefined: it is root). CRIU
 * (4.1 here) dumps and restores as root, or, with --unprivileged (CRIU >= 3.17, Linux >= 5.9), with
 * CAP_CHECKPOINT_RESTORE and CAP_SYS_PTRACE in the host's user namespace; a rootless user has
 * neither, and runc refuses rootless checkpoint too ("cannot checkpoint a rootless container").
 */
export function rootlessCriuProblem(euid: number = process.geteuid?.() ?? 0, capEff: bigint = ownCapEff()): string | undefined {
  if (euid === 0) return undefined
  const has = (c: bigint) => (capEff >> c) & 1n
  const lacking = [has(CAP_CHECKPOINT_RESTORE) ? "" : "CAP_CHECKPOINT_RESTORE", has(CAP_SYS_PTRACE) ? "" : "CAP_SYS_PTRACE"].filter(Boolean)
  return lacking.length
    ? `rootless (uid ${euid}): CRIU needs root, or ${lacking.join(" and ")} for its unprivileged mode, and this process lacks them (CapEff ${capEff.toString(16)})`
    : `rootless (uid ${euid}): CRIU's unprivileged mode (--unprivileged, CAP_CHECKPOINT_RESTORE) is not supported by this runtime yet`
}
