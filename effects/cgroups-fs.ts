/**
 * Cgroups over the real filesystem, for v1, v2 and hybrid layouts alike: the
 * hierarchies come from /proc/self/mountinfo, our own place in each from
 * /proc/self/cgroup. Tests pass other files and a temp dir.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Duration, Effect, Layer } from "effect"
import { parseCpuList, type HostFacts } from "../config/resources.ts"
import { Cgroups, type CgroupPaths, type Hierarchy } from "./cgroups.ts"
import { hugepageSizeName, orderMemoryWrites, v1Writes } from "./cgroups-v1-resources.ts"
import { CgroupError } from "./errors.ts"
import { removeCgroupDir } from "./cgroups-remove.ts"
import { watchMemoryPressure } from "./pressure.ts"
import { freezerOf, frozenNow, has, isFrozen, parseHierarchies, parseOwnCgroups } from "./cgroups-mounts.ts"

export { parseHierarchies, parseOwnCgroups } from "./cgroups-mounts.ts"

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

/**
 * Whether a process whose /proc/PID/cgroup reads `procPidCgroup` is in the container's cgroup (or
 * one below it) in some hierarchy of `paths`. The paths are as our (the host's) cgroup namespace sees them.
 */
export function procCgroupHolds(procPidCgroup: string, hierarchies: readonly Hierarchy[], paths: CgroupPaths): boolean {
  const at = parseOwnCgroups(procPidCgroup)
  return hierarchies.some((h) => {
    const dir = paths[h.mountPoint]
    if (dir === undefined) return false
    const rel = `/${path.posix.relative(h.mountPoint, dir)}`
    const where = at.get(h.controllers.split(",").sort().join(","))
    // A container at a hierarchy's root would hold every process: never a membership proof.
    return rel !== "/" && where !== undefined && (where === rel || where.startsWith(`${rel}/`))
  })
}

/** procCgroupHolds for a live pid: false when it is gone. */
export function pidHeldBy(pid: number, hierarchies: readonly Hierarchy[], paths: CgroupPaths): boolean {
  let text: string
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8")
  } catch {
    return false
  }
  return procCgroupHolds(text, hierarchies, paths)
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

/** The directories between the hierarchy's mount point (exclusive) and `dir` (exclusive), top first. */
export function ancestorsBelowRoot(dir: string, hierarchies: readonly Hierarchy[]): string[] {
  const mount = hierarchies.map((h) => h.mountPoint).find((m) => dir.startsWith(`${m}/`))
  if (!mount) return []
  const out: string[] = []
  for (let d = path.dirname(dir); d !== mount && d.startsWith(`${mount}/`); d = path.dirname(d)) out.unshift(d)
  return out
}

export interface CgroupsFsOptions {
  readonly mountinfo?: string
  readonly procSelfCgroup?: string
  /** How long removal retries EBUSY (default 2000 ms). */
  readonly removeTimeoutMs?: number
  /** The older form of the bound: this many retries 10 ms apart (removeTimeoutMs wins). */
  readonly removeRetries?: number
  /** Where huge page sizes are listed (default /sys/kernel/mm/hugepages). */
  readonly hugepagesDir?: string
  /** How long a freeze may stay FREEZING before it is undone and reported. */
  readonly freezeTimeoutMs?: number
}

/** The removal bound from the options (2 s, runc's order of magnitude, by default). */
export const removeTimeoutMs = (o: { readonly removeTimeoutMs?: number; readonly removeRetries?: number }): number =>
  o.removeTimeoutMs ?? (o.removeRetries !== undefined ? o.removeRetries * 10 : 2000)

/** Sub-directories of a cgroup directory: its child cgroups ([] when gone or unreadable). */
export function childCgroups(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
  } catch {
    return []
  }
}

/** The real filesystem for removeCgroupDir. */
export const removeFs = { rmdir: (d: string) => fs.rmdirSync(d), read: readTrim, subdirs: childCgroups }

/** `dir` and every cgroup below it, parents first. */
export function cgroupTree(dir: string): string[] {
  return [dir, ...childCgroups(dir).flatMap((n) => cgroupTree(path.join(dir, n)))]
}

/** A cpu or node list from the first of `files` that reads as one. */
function cpuSet(files: readonly string[]): Set<number> {
  for (const f of files) {
    const list = parseCpuList(readTrim(f))
    if (list && list.length > 0) return new Set(list)
  }
  return new Set()
}

/** The host's facts for config/resources.ts. */
function readFacts(hierarchies: readonly Hierarchy[], own: ReadonlyMap<string, string>, hugepagesDir: string): HostFacts {
  const v1 = hierarchies.filter((h) => h.version === 1)
  const v1Files = new Set<string>()
  for (const h of v1)
    try {
      for (const f of fs.readdirSync(h.mountPoint)) v1Files.add(f)
    } catch {
      /* an unreadable hierarchy offers nothing */
    }
  // The container nests under our own cpuset cgroup: what that one has is what it may be given.
  const cpuset = v1.find((h) => has(h, "cpuset"))
  const ownCpuset = cpuset ? path.join(cpuset.mountPoint, own.get(cpuset.controllers) ?? "/") : undefined
  let sizes: string[] = []
  try {
    sizes = fs
      .readdirSync(hugepagesDir)
      .map((d) => /^hugepages-(\d+)kB$/.exec(d)?.[1])
      .filter((kb): kb is string => kb !== undefined)
      .map((kb) => hugepageSizeName(Number(kb)))
  } catch {
    /* no huge pages */
  }
  return {
    v1Controllers: new Set(v1.flatMap((h) => h.controllers.split(","))),
    v1Files,
    cpus: cpuSet([...(ownCpuset ? [path.join(ownCpuset, "cpuset.effective_cpus"), path.join(ownCpuset, "cpuset.cpus")] : []), "/sys/devices/system/cpu/online"]),
    mems: cpuSet([...(ownCpuset ? [path.join(ownCpuset, "cpuset.effective_mems"), path.join(ownCpuset, "cpuset.mems")] : []), "/sys/devices/system/node/online"]),
    hugepageSizes: new Set(sizes),
  }
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
    const isCpuset = (mountPoint: string) => layout().hierarchies.some((h) => h.mountPoint === mountPoint && has(h, "cpuset"))
    /** The container's directory in the hierarchy carrying `controller` ("" = cgroup2), if any. */
    const dirOf = (paths: CgroupPaths, controller: string): string | undefined => {
      const h = layout().hierarchies.find((x) => (controller === "" ? x.version === 2 : x.version === 1 && has(x, controller)))
      return h ? paths[h.mountPoint] : undefined
    }
    const write = (file: string, value: string) =>
      Effect.try({ try: () => fs.writeFileSync(file, value), catch: fail(`write ${JSON.stringify(value)} to`, file) })
    /** CgroupWrite.ancestors: top-down, each ancestor below the hierarchy's root whose value is lower gets it first. */
    const raiseAncestors = (dir: string, w: { file: string; value: string }) =>
      Effect.forEach(ancestorsBelowRoot(dir, layout().hierarchies), (a) => {
        const current = Number(readTrim(path.join(a, w.file)))
        return current !== -1 && current < Number(w.value) ? write(path.join(a, w.file), w.value) : Effect.void
      })
    const readFile = (file: string) => Effect.try({ try: () => fs.readFileSync(file, "utf8"), catch: fail("read", file) })
    const freezer = (paths: CgroupPaths) => freezerOf(paths, layout().hierarchies)
    // What the host offers is read once per process: it took nine directory listings (the hierarchy
    // roots hold every container's cgroup), twice per create. CPU hotplug during one process's life is
    // the one change this misses; the kernel still refuses what it cannot do.
    let factsCache: HostFacts | undefined
    const facts = () =>
      Effect.try({
        try: () => (factsCache ??= readFacts(layout().hierarchies, layout().own, opts.hugepagesDir ?? "/sys/kernel/mm/hugepages")),
        catch: fail("read facts of", "/sys/fs/cgroup"),
      })
    return {
      facts,
      apply: (paths, resources, applyOpts) =>
        Effect.gen(function* () {
          const { v1Files } = yield* facts()
          const memDir = dirOf(paths, "memory")
          const writes = orderMemoryWrites(v1Writes(resources, v1Files), () => Number(readTrim(path.join(memDir ?? "/", "memory.limit_in_bytes")) || 0))
          const hasQuota = writes.some((w) => w.file === "cpu.cfs_quota_us")
          let periodAfterQuota: { dir: string; value: string } | undefined
          for (const w of writes) {
            if (applyOpts?.devices === false && w.controller === "devices") continue
            const dir = dirOf(paths, w.controller)
            // Validation refuses knobs without a hierarchy; device rules come from runc's defaults even when
            // the spec has none, and must not be dropped silently (fail closed, GHSA-g54h-m393-cpwq).
            if (!dir) return yield* new CgroupError({ op: `write ${w.file}`, path: "/sys/fs/cgroup", reason: `no cgroup v1 ${w.controller} hierarchy` })
            if (w.ancestors) yield* raiseAncestors(dir, w)
            if (w.file === "cpu.cfs_period_us" && hasQuota) {
              // runc's CpuGroup.Set: a shorter period is refused (EINVAL) while the old quota over it would
              // exceed a parent's limit; then the quota goes first and the period right after it.
              const r = yield* Effect.result(write(path.join(dir, w.file), w.value))
              if (r._tag === "Success") continue
              if (r.failure.reason !== "EINVAL") return yield* r.failure
              periodAfterQuota = { dir, value: w.value }
              continue
            }
            yield* write(path.join(dir, w.file), w.value)
            if (w.file === "cpu.cfs_quota_us" && periodAfterQuota) {
              yield* write(path.join(periodAfterQuota.dir, "cpu.cfs_period_us"), periodAfterQuota.value)
              periodAfterQuota = undefined
            }
          }
        }),
      read: (paths, controller, file) => {
        const dir = dirOf(paths, controller)
        return dir
          ? readFile(path.join(dir, file))
          : Effect.fail(new CgroupError({ op: `read ${file}`, path: "/sys/fs/cgroup", reason: `no ${controller || "cgroup2"} hierarchy` }))
      },
      freeze: (paths, on) =>
        Effect.gen(function* () {
          const f = freezer(paths)
          if (!f) return yield* new CgroupError({ op: on ? "freeze" : "thaw", path: "/sys/fs/cgroup", reason: "no freezer hierarchy" })
          const request = f.version === 1 ? write(path.join(f.dir, "freezer.state"), on ? "FROZEN" : "THAWED") : write(path.join(f.dir, "cgroup.freeze"), on ? "1" : "0")
          yield* request
          const deadline = Date.now() + (opts.freezeTimeoutMs ?? 2000)
          // v1 passes through FREEZING while tasks reach the refrigerator; a task forked meanwhile can keep it
          // there, so the request is repeated (runc's freezeWithRetry). v2 reports in cgroup.events.
          for (let round = 0; isFrozen(f) !== on; round++) {
            if (Date.now() > deadline) {
              if (on) yield* request.pipe(Effect.andThen(write(path.join(f.dir, f.version === 1 ? "freezer.state" : "cgroup.freeze"), f.version === 1 ? "THAWED" : "0")), Effect.ignore)
              const file = f.version === 1 ? "freezer.state" : "cgroup.events"
              const now = f.version === 1 ? readTrim(path.join(f.dir, file)) || "unreadable" : isFrozen(f) ? "frozen 1" : "frozen 0"
              const want = f.version === 1 ? (on ? "FROZEN" : "THAWED") : `frozen ${on ? 1 : 0}`
              return yield* new CgroupError({
                op: on ? "freeze" : "thaw",
                path: f.dir,
                reason: `ETIMEDOUT: waited ${opts.freezeTimeoutMs ?? 2000} ms for ${file} to read "${want}", it reads "${now}"${!on && f.version === 1 && now === "FROZEN" ? " (a parent cgroup is frozen?)" : ""}`,
              })
            }
            yield* Effect.sleep(Duration.millis(round < 10 ? 1 : 10))
            if (on && round % 10 === 9) yield* request
          }
        }),
      frozen: (paths) => Effect.sync(() => frozenNow(paths, layout().hierarchies)),
      holds: (paths, pid) => Effect.sync(() => pidHeldBy(pid, layout().hierarchies, paths)),
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
      subPaths: (paths, subs) =>
        Effect.gen(function* () {
          const mine = layout().hierarchies.filter((h) => paths[h.mountPoint] !== undefined)
          const chosen = new Map<string, { sub: string; by: string }>()
          for (const [ctrl, sub] of Object.entries(subs)) {
            if (ctrl === "") {
              for (const h of mine) chosen.set(h.mountPoint, { sub, by: "" })
              continue
            }
            const h = mine.find((x) => x.version === 1 && has(x, ctrl))
            if (!h)
              return yield* new CgroupError({
                op: "join sub-cgroup",
                path: "/sys/fs/cgroup",
                reason: `unknown controller "${ctrl}": none of the container's hierarchies carries it (it has ${mine.map((x) => x.controllers || "cgroup2").join("; ")})`,
              })
            // Co-mounted controllers (cpu,cpuacct) are one directory: one task cannot be in two places there.
            const prev = chosen.get(h.mountPoint)
            if (prev && prev.by !== "" && prev.sub !== sub)
              return yield* new CgroupError({ op: "join sub-cgroup", path: h.mountPoint, reason: `controllers ${prev.by} and ${ctrl} share this hierarchy and name different sub-cgroups` })
            chosen.set(h.mountPoint, { sub, by: ctrl })
          }
          const out: Record<string, string> = { ...paths }
          for (const [mp, { sub }] of chosen) {
            const dir = path.join(paths[mp]!, sub)
            if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory())
              return yield* new CgroupError({ op: "join sub-cgroup", path: dir, reason: "ENOENT: no such cgroup (exec --cgroup joins an existing sub-cgroup, it makes none)" })
            out[mp] = dir
          }
          return out
        }),
      join: (paths, pid) =>
        Effect.forEach(Object.values(paths), (dir) =>
          Effect.try({ try: () => fs.writeFileSync(path.join(dir, "cgroup.procs"), `${pid}`), catch: fail("join", dir) }),
        ).pipe(Effect.asVoid),
      pids: (paths) => {
        const dirs = Object.values(paths)
        return Effect.try({
          try: () => {
            const all = new Set<number>()
            // The whole subtree, as runc's GetAllPids: a container may have made sub-cgroups and moved tasks there.
            for (const dir of dirs.flatMap(cgroupTree)) {
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
          removeCgroupDir(removeFs, dir, { timeoutMs: removeTimeoutMs(opts), delayMs: 10 }),
        ).pipe(Effect.asVoid),
      // On hybrid the container's tasks are in the cgroup2 tree too: its cgroup.kill reaches them all
      // (v1-frozen ones die once thawed, which the caller does for SIGKILL).
      memoryPressure: watchMemoryPressure,
      killAll: (paths) =>
        Effect.gen(function* () {
          const v2 = dirOf(paths, "")
          if (!v2 || !fs.existsSync(path.join(v2, "cgroup.kill"))) return false
          yield* write(path.join(v2, "cgroup.kill"), "1")
          return true
        }),
    }
  })
