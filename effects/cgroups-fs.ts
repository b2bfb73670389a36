/**
 * Cgroups over the real filesystem, for v1, v2 and hybrid layouts alike: the
 * hierarchies come from /proc/self/mountinfo, our own place in each from
 * /proc/self/cgroup. Tests pass other files and a temp dir.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Duration, Effect, Layer, Schedule } from "effect"
import { Cgroups, type CgroupPaths, type Hierarchy } from "./cgroups.ts"
import { CgroupError } from "./errors.ts"

/** Hierarchies from mountinfo text (fields after " - " are fstype, source, super options). */
export function parseHierarchies(mountinfo: string): Hierarchy[] {
  const out: Hierarchy[] = []
  for (const line of mountinfo.split("\n")) {
    const [pre, post] = line.split(" - ")
    if (!pre || !post) continue
    const mountPoint = pre.split(" ")[4]
    const [fstype, , superOpts] = post.split(" ")
    if (!mountPoint) continue
    if (fstype === "cgroup2") out.push({ mountPoint, controllers: "", version: 2 })
    else if (fstype === "cgroup") {
      const ctrls = (superOpts ?? "")
        .split(",")
        .filter((o) => !["rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "xattr", "clone_children"].includes(o) && !o.startsWith("release_agent="))
      out.push({ mountPoint, controllers: ctrls.sort().join(","), version: 1 })
    }
  }
  return out
}

/** Our own cgroup in each hierarchy, keyed by its sorted controller list ("" for cgroup2). */
export function parseOwnCgroups(procSelfCgroup: string): Map<string, string> {
  const own = new Map<string, string>()
  for (const line of procSelfCgroup.split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line)
    if (m) own.set((m[1] ?? "").split(",").sort().join(","), m[2] ?? "/")
  }
  return own
}

/** runc's placement rule (see cgroups.ts). */
export function placeCgroups(hierarchies: readonly Hierarchy[], own: ReadonlyMap<string, string>, cgroupsPath: string | undefined, id: string): CgroupPaths {
  const wanted = cgroupsPath && cgroupsPath.length > 0 ? cgroupsPath : id
  const out: Record<string, string> = {}
  for (const h of hierarchies) {
    const rel = path.posix.isAbsolute(wanted) ? wanted : path.posix.join(own.get(h.controllers) ?? "/", wanted)
    out[h.mountPoint] = path.posix.join(h.mountPoint, path.posix.normalize(rel))
  }
  return out
}

const fail = (op: string, p: string) => (e: unknown) =>
  new CgroupError({ op, path: p, reason: (e as NodeJS.ErrnoException).code ?? String(e) })

const readTrim = (f: string): string => {
  try {
    return fs.readFileSync(f, "utf8").trim()
  } catch {
    return ""
  }
}

/** A v1 cpuset cgroup refuses tasks until cpus and mems are set: copy them down from the parent. */
function fillCpuset(dir: string, mountPoint: string): void {
  const chain: string[] = []
  for (let d = dir; d.startsWith(mountPoint) && d !== mountPoint; d = path.dirname(d)) chain.unshift(d)
  for (const d of chain)
    for (const f of ["cpuset.cpus", "cpuset.mems"]) {
      const file = path.join(d, f)
      if (readTrim(file) === "") fs.writeFileSync(file, readTrim(path.join(path.dirname(d), f)))
    }
}

export interface CgroupsFsOptions {
  readonly mountinfo?: string
  readonly procSelfCgroup?: string
  /** How many times rmdir is retried on EBUSY, 10 ms apart. */
  readonly removeRetries?: number
}

/** The live layer. */
export const CgroupsFs = (opts: CgroupsFsOptions = {}) =>
  Layer.sync(Cgroups, () => {
    let cached: { hierarchies: Hierarchy[]; own: Map<string, string> } | undefined
    const layout = () =>
      (cached ??= {
        hierarchies: parseHierarchies(fs.readFileSync(opts.mountinfo ?? "/proc/self/mountinfo", "utf8")),
        own: parseOwnCgroups(fs.readFileSync(opts.procSelfCgroup ?? "/proc/self/cgroup", "utf8")),
      })
    const isCpuset = (mountPoint: string) => layout().hierarchies.some((h) => h.mountPoint === mountPoint && h.controllers.split(",").includes("cpuset"))
    return {
      paths: (cgroupsPath, id) =>
        Effect.try({ try: () => placeCgroups(layout().hierarchies, layout().own, cgroupsPath, id), catch: fail("locate", "/proc/self") }),
      prime: () => {
        try {
          const h = layout().hierarchies.find((x) => x.version === 1) ?? layout().hierarchies[0]
          if (!h) return
          const own = path.posix.join(h.mountPoint, layout().own.get(h.controllers) ?? "/", "cgroup.procs")
          // Writing our pid where it already is migrates nothing; failure only means no head start.
          // One thread-pool op (the open is synchronous), so the write starts now, not at the next tick.
          const fd = fs.openSync(own, "w")
          fs.write(fd, `${process.pid}`, () => fs.close(fd, () => undefined))
        } catch {
          /* no cgroups mounted: nothing to prime */
        }
      },
      create: (paths) =>
        Effect.forEach(Object.entries(paths), ([mp, dir]) =>
          Effect.try({
            try: () => {
              fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
              if (isCpuset(mp)) fillCpuset(dir, mp)
            },
            catch: fail("create", dir),
          }),
        ).pipe(Effect.asVoid),
      join: (paths, pid) =>
        Effect.forEach(Object.values(paths), (dir) =>
          Effect.try({ try: () => fs.writeFileSync(path.join(dir, "cgroup.procs"), `${pid}`), catch: fail("join", dir) }),
        ).pipe(Effect.asVoid),
      pids: (paths) => {
        const dirs = Object.values(paths)
        return Effect.try({
          try: () => {
            const all = new Set<number>()
            for (const dir of dirs) {
              const text = (() => {
                try {
                  return fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8")
                } catch (e) {
                  if ((e as NodeJS.ErrnoException).code === "ENOENT") return ""
                  throw e
                }
              })()
              for (const l of text.split("\n")) if (l.trim()) all.add(Number(l))
            }
            return [...all].sort((a, b) => a - b)
          },
          catch: fail("read", dirs[0] ?? ""),
        })
      },
      destroy: (paths) =>
        Effect.forEach(Object.values(paths), (dir) =>
          Effect.try({
            try: () => fs.rmdirSync(dir),
            catch: (e) => e as NodeJS.ErrnoException,
          }).pipe(
            Effect.catchIf((e) => e.code === "ENOENT", () => Effect.void),
            Effect.retry({ schedule: Schedule.spaced(Duration.millis(10)), times: opts.removeRetries ?? 100, while: (e) => e.code === "EBUSY" }),
            Effect.mapError(fail("remove", dir)),
          ),
        ).pipe(Effect.asVoid),
    }
  })
