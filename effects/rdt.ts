/**
 * Intel RDT (linux.intelRdt) through the resctrl filesystem, with runc's semantics
 * (libcontainer/intelrdt, configs/validate intelrdtCheck):
 *
 * - the group is <resctrl>/<closID>, or <resctrl>/<container id> without one;
 * - a closID group that already exists is joined, never rewritten: given schemata must match
 *   what it has (runc's checkExistingSchemata), and it is left in place at delete (others may
 *   share it); a group of our own gets the schemata (L3 and MB lines, one write) and goes at delete;
 * - a closID without schemata must name an existing group (it cannot be made up);
 * - enableCMT / enableMBM put the container's tasks in a monitoring group of its own,
 *   <group>/mon_groups/<container id>, read from mon_data; they need info/L3_MON's llc_occupancy
 *   and mbm_*_bytes features.
 * The features come from info/ (L3 → CAT, MB → MBA, L3_MON/mon_features → CMT, MBM). The resctrl
 * root and the filesystem are parameters: tests run all of it against a fake tree.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import type { IntelRdtSpec } from "../config/intel-rdt.ts"
import { CgroupError } from "./errors.ts"

export type { IntelRdtSpec }

/** What the code needs of the filesystem (resctrl's rmdir removes a group with its files; a fake tree's may not). */
export interface RdtFs {
  readonly exists: (p: string) => boolean
  readonly read: (p: string) => string
  readonly write: (p: string, data: string) => void
  readonly mkdir: (p: string) => void
  readonly rmdir: (p: string) => void
}

export const liveRdtFs: RdtFs = {
  exists: (p) => fs.existsSync(p),
  read: (p) => fs.readFileSync(p, "utf8"),
  write: (p, data) => fs.writeFileSync(p, data),
  mkdir: (p) => fs.mkdirSync(p, { mode: 0o755 }),
  rmdir: (p) => fs.rmdirSync(p),
}

/** The first resctrl mount in a mountinfo text. */
export function findResctrl(mountinfo: string): string | undefined {
  for (const line of mountinfo.split("\n")) {
    const [pre, post] = line.split(" - ")
    if (pre && post?.split(" ")[0] === "resctrl") return pre.split(" ")[4]
  }
  return undefined
}

export interface RdtFeatures {
  readonly cat: boolean
  readonly mba: boolean
  readonly cmt: boolean
  readonly mbm: boolean
}

/** The allocation and monitoring features resctrl reports under `root`/info. */
export function rdtFeatures(root: string, fsx: RdtFs = liveRdtFs): RdtFeatures {
  let mon: string[] = []
  try {
    mon = fsx.read(path.join(root, "info", "L3_MON", "mon_features")).split("\n").map((l) => l.trim())
  } catch {
    /* no monitoring */
  }
  return {
    cat: fsx.exists(path.join(root, "info", "L3")),
    mba: fsx.exists(path.join(root, "info", "MB")),
    cmt: mon.includes("llc_occupancy"),
    mbm: mon.includes("mbm_total_bytes") || mon.includes("mbm_local_bytes"),
  }
}

const P = "linux.intelRdt"

/** Host rules (runc's intelrdtCheck): resctrl mounted, and each asked-for feature present. */
export function checkIntelRdtOnHost(rdt: IntelRdtSpec | undefined, root: string | undefined, fsx: RdtFs = liveRdtFs): { path: string; reason: string } | undefined {
  if (!rdt) return undefined
  if (!root) return { path: P, reason: "Intel RDT is not supported or enabled on this host (no resctrl filesystem is mounted)" }
  const f = rdtFeatures(root, fsx)
  if (rdt.l3CacheSchema && !f.cat) return { path: `${P}.l3CacheSchema`, reason: "Intel RDT/CAT is not enabled on this host (no info/L3 in resctrl)" }
  if (rdt.memBwSchema && !f.mba) return { path: `${P}.memBwSchema`, reason: "Intel RDT/MBA is not enabled on this host (no info/MB in resctrl)" }
  if (rdt.enableCMT && !f.cmt) return { path: `${P}.enableCMT`, reason: "Intel RDT/CMT is not enabled on this host (no llc_occupancy in info/L3_MON/mon_features)" }
  if (rdt.enableMBM && !f.mbm) return { path: `${P}.enableMBM`, reason: "Intel RDT/MBM is not enabled on this host (no mbm_*_bytes in info/L3_MON/mon_features)" }
  if (rdt.closID && !rdt.l3CacheSchema && !rdt.memBwSchema && !fsx.exists(path.join(root, rdt.closID)))
    return { path: `${P}.closID`, reason: `resctrl group ${rdt.closID} does not exist (it must be made beforehand when no schemata are given)` }
  // An existing closID group is shared: joined as it is, so the config's schemata must be what it has.
  const schemata = schemataOf(rdt)
  if (rdt.closID && schemata !== "" && fsx.exists(path.join(root, rdt.closID))) {
    let current = ""
    try {
      current = fsx.read(path.join(root, rdt.closID, "schemata"))
    } catch {
      /* unreadable: joinRdt reports it */
    }
    if (!schemataMatch(current, schemata))
      return { path: `${P}.closID`, reason: `resctrl group ${rdt.closID} exists with other schemata (${current.trim().replace(/\n/g, "; ")})` }
  }
  return undefined
}

/** Where the container's tasks go. */
export function rdtGroup(root: string, rdt: IntelRdtSpec, id: string): { readonly dir: string; readonly monDir: string | undefined; readonly shared: boolean } {
  const dir = path.join(root, rdt.closID ?? id)
  return { dir, monDir: rdt.enableCMT || rdt.enableMBM ? path.join(dir, "mon_groups", id) : undefined, shared: rdt.closID !== undefined }
}

/** The schemata text for the spec (L3 then MB, as runc writes them). */
export const schemataOf = (rdt: IntelRdtSpec): string => [rdt.l3CacheSchema, rdt.memBwSchema].filter((s): s is string => !!s).join("\n")

/** "L3:0=0ff;1=f0" → a comparable form (cache ids sorted, masks as lowercase hex without leading zeros). */
function normalizeLine(line: string): string | undefined {
  const m = /^(L3|L3DATA|L3CODE|MB):(.*)$/.exec(line.trim())
  if (!m) return undefined
  const tokens = m[2]!
    .split(";")
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      const [k, v] = t.split("=").map((x) => x.trim())
      if (!k || !v) return `!${t}` // malformed: never equal to a well-formed one
      return `${k}=${m[1] === "MB" ? v : Number.isNaN(parseInt(v, 16)) ? `!${v}` : parseInt(v, 16).toString(16)}`
    })
    .sort()
  return `${m[1]}:${tokens.join(";")}`
}

/** Whether the lines we would write are exactly those an existing group has (other resources' lines ignored). */
export function schemataMatch(existing: string, wanted: string): boolean {
  const norm = (t: string) => new Set(t.split("\n").map(normalizeLine).filter((l): l is string => l !== undefined))
  const [a, b] = [norm(existing), norm(wanted)]
  return a.size === b.size && [...a].every((l) => b.has(l))
}

const cgErr = (op: string, p: string, root: string, fsx: RdtFs) => (e: unknown) => {
  let status = ""
  try {
    status = fsx.read(path.join(root, "info", "last_cmd_status")).trim()
  } catch {
    /* older kernels have no last_cmd_status */
  }
  const code = (e as NodeJS.ErrnoException).code ?? String(e)
  return new CgroupError({ op, path: p, reason: status && status !== "ok" ? `${code} (resctrl: ${status})` : code })
}

/**
 * Puts `pid` in the container's resctrl group (made, with its schemata, unless it is an existing closID,
 * whose schemata must then match) and, with CMT/MBM, in its own monitoring group.
 */
export const joinRdt = (root: string, rdt: IntelRdtSpec, id: string, pid: number, fsx: RdtFs = liveRdtFs): Effect.Effect<void, CgroupError> =>
  Effect.gen(function* () {
    const g = rdtGroup(root, rdt, id)
    const schemata = schemataOf(rdt)
    const existed = fsx.exists(g.dir)
    if (existed && g.shared && schemata !== "") {
      const current = yield* Effect.try({ try: () => fsx.read(path.join(g.dir, "schemata")), catch: cgErr("read", path.join(g.dir, "schemata"), root, fsx) })
      if (!schemataMatch(current, schemata))
        return yield* new CgroupError({ op: "join resctrl group", path: g.dir, reason: `its schemata (${current.trim().replace(/\n/g, "; ")}) are not the config's` })
    }
    if (!existed) yield* Effect.try({ try: () => fsx.mkdir(g.dir), catch: cgErr("create resctrl group", g.dir, root, fsx) })
    if (!existed && schemata !== "") yield* Effect.try({ try: () => fsx.write(path.join(g.dir, "schemata"), `${schemata}\n`), catch: cgErr("write schemata to", g.dir, root, fsx) })
    // The kernel moves a task into a monitoring group only from its parent control group: the group first.
    yield* Effect.try({ try: () => fsx.write(path.join(g.dir, "tasks"), `${pid}`), catch: cgErr("join", path.join(g.dir, "tasks"), root, fsx) })
    if (g.monDir) {
      const mon = g.monDir
      if (!fsx.exists(mon)) yield* Effect.try({ try: () => fsx.mkdir(mon), catch: cgErr("create monitoring group", mon, root, fsx) })
      yield* Effect.try({ try: () => fsx.write(path.join(mon, "tasks"), `${pid}`), catch: cgErr("join", path.join(mon, "tasks"), root, fsx) })
    }
  })

/** Removes what joinRdt made: the monitoring group, and the group unless it is a shared closID. Gone already is fine. */
export const removeRdt = (root: string, rdt: IntelRdtSpec, id: string, fsx: RdtFs = liveRdtFs): Effect.Effect<void, CgroupError> =>
  Effect.gen(function* () {
    const g = rdtGroup(root, rdt, id)
    for (const dir of [g.monDir, g.shared ? undefined : g.dir])
      if (dir && fsx.exists(dir)) yield* Effect.try({ try: () => fsx.rmdir(dir), catch: cgErr("remove", dir, root, fsx) })
  })

let hostRoot: { value: string | undefined } | undefined
/** This host's resctrl mount (read once per process). */
export const resctrlRoot = (): string | undefined =>
  (hostRoot ??= {
    value: (() => {
      try {
        return findResctrl(fs.readFileSync("/proc/self/mountinfo", "utf8"))
      } catch {
        return undefined
      }
    })(),
  }).value
