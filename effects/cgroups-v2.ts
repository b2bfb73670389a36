/**
 * Cgroups on a pure cgroup v2 host (runc's fs2 manager): one directory per
 * container in the unified tree, found from mountinfo and /proc/self/cgroup;
 * tests pass their own files and a temp dir (or a real cgroup2 subtree) as the mount.
 *
 * - Placement (runc's fs2 defaultDirPath): an absolute linux.cgroupsPath is
 *   taken from the mount's root; a relative one, and the default (the id), goes
 *   under the PARENT of our own cgroup: ours holds processes, and v2's "no
 *   internal processes" rule would keep a child of it from getting controllers.
 * - create: mkdir each level and, above the leaf, enable every controller the
 *   root offers in cgroup.subtree_control (all at once, else one by one: some
 *   may be refused, which the resource writes then report). A level made inside
 *   a threaded subtree is "domain invalid" (it could take no process) and is
 *   made threaded, as runc does; one that cannot be is refused by name, and the
 *   levels create made are removed again.
 * - threaded cgroups (cgroup.type "threaded" or "domain threaded") take the
 *   thread-aware controllers only (cpu, cpuset, pids, perf_event): apply
 *   refuses, naming the type and the files, limits of the domain controllers
 *   (memory, io, hugetlb, rdma) there, as runc's fs2 create does.
 * - apply: cgroups-v2-resources.ts's writes, then the device filter (eBPF,
 *   device-filter.ts) unless the update does not name devices.
 * - freeze: cgroup.freeze, then wait for cgroup.events to say "frozen 1" (or 0).
 *   kernfs notifies inotify when cgroup.events changes, so the wait is an
 *   fs.watch on the event loop, not a poll; a bound undoes a freeze that
 *   does not complete and reports it.
 * - killAll: cgroup.kill; pids: cgroup.procs of the cgroup and its descendants
 *   (a threaded cgroup will not list processes: there, its threads' thread groups).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import type { HostFacts } from "../config/resources.ts"
import { v2ResourceWarnings } from "../config/resources-v2.ts"
import { parseCpuList } from "../config/resources.ts"
import { Cgroups, type CgroupPaths } from "./cgroups.ts"
import { parseHierarchies, parseOwnCgroups, pidHeldBy, removeFs, removeTimeoutMs } from "./cgroups-fs.ts"
import { removeCgroupDir } from "./cgroups-remove.ts"
import { DEFAULT_DEVICE_RULES, hugepageSizeName } from "./cgroups-v1-resources.ts"
import { v2Writes } from "./cgroups-v2-resources.ts"
import { attachDeviceProgram, deviceFilterProgram, type AttachDeviceProgram } from "./device-filter.ts"
import { CgroupError } from "./errors.ts"
import { watchMemoryPressure } from "./pressure.ts"

export interface CgroupsV2Options {
  /** mountinfo and /proc/self/cgroup files (defaults: /proc/self/…). */
  readonly mountinfo?: string
  readonly procSelfCgroup?: string
  readonly hugepagesDir?: string
  readonly freezeTimeoutMs?: number
  /** How long removal retries EBUSY (default 2000 ms); removeRetries is the older count (10 ms apart). */
  readonly removeTimeoutMs?: number
  readonly removeRetries?: number
  /** Loads and attaches the device program (tests of a fake tree record it instead). */
  readonly attachDevices?: AttachDeviceProgram
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code ?? String(e)
const fail = (op: string, p: string) => (e: unknown) => new CgroupError({ op, path: p, reason: errno(e) })

const readTrim = (f: string): string => {
  try {
    return fs.readFileSync(f, "utf8").trim()
  } catch {
    return ""
  }
}

/** Controllers that are not thread-aware: a threaded cgroup cannot have them (cgroup-v2.rst, "Threads"). */
const DOMAIN_CONTROLLERS = ["memory", "io", "hugetlb", "rdma", "misc"]

/** The container's one directory (the record keys it by mount point, as on v1). */
const dirOf = (paths: CgroupPaths): string => Object.values(paths)[0] ?? ""

/** "frozen 1" in cgroup.events. */
const eventsFrozen = (dir: string) => /^frozen 1$/m.test(readTrim(path.join(dir, "cgroup.events")))

/** Child cgroups, deepest first (they must go before their parent). */
function descendants(dir: string): string[] {
  let entries: fs.Dirent[] = []
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true })
  } catch {
    return []
  }
  return entries.filter((e) => e.isDirectory()).flatMap((e) => [...descendants(path.join(dir, e.name)), path.join(dir, e.name)])
}

/** The processes of a threaded cgroup: the thread groups (Tgid) of the threads in cgroup.threads. */
function threadGroups(dir: string): number[] {
  const tgids = new Set<number>()
  for (const l of fs.readFileSync(path.join(dir, "cgroup.threads"), "utf8").split("\n")) {
    if (!l.trim()) continue
    const tgid = /^Tgid:\s*(\d+)$/m.exec(readTrim(`/proc/${l.trim()}/status`))?.[1]
    if (tgid) tgids.add(Number(tgid)) // a thread that exited meanwhile has no status: it is gone
  }
  return [...tgids]
}

/** The pure placement rule (see above). */
export function placeV2(mountPoint: string, ownCgroup: string, cgroupsPath: string | undefined, id: string): CgroupPaths {
  const wanted = cgroupsPath && cgroupsPath.length > 0 ? cgroupsPath : id
  const rel = path.posix.isAbsolute(wanted) ? wanted : path.posix.join(path.posix.dirname(ownCgroup), wanted)
  return { [mountPoint]: path.posix.join(mountPoint, path.posix.normalize(rel)) }
}

/** Waits on the event loop until cgroup.events says frozen == want; fails after timeoutMs. */
const awaitFrozen = (dir: string, want: boolean, timeoutMs: number) =>
  Effect.callback<void, CgroupError>((resume) => {
    let done = false
    let watcher: fs.FSWatcher | undefined
    const finish = (r: Effect.Effect<void, CgroupError>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      watcher?.close()
      resume(r)
    }
    const check = () => {
      if (eventsFrozen(dir) === want) finish(Effect.void)
    }
    const timer = setTimeout(
      () =>
        finish(
          Effect.fail(
            new CgroupError({
              op: want ? "freeze" : "thaw",
              path: dir,
              reason: `ETIMEDOUT: waited ${timeoutMs} ms for cgroup.events to read "frozen ${want ? 1 : 0}", it reads "frozen ${want ? 0 : 1}"${want ? "" : " (a parent cgroup is frozen?)"}`,
            }),
          ),
        ),
      timeoutMs,
    )
    try {
      watcher = fs.watch(path.join(dir, "cgroup.events"), check)
      watcher.on("error", () => undefined) // the cgroup went away: the timeout or the next check answers
    } catch (e) {
      finish(Effect.fail(fail("watch", path.join(dir, "cgroup.events"))(e)))
      return
    }
    // After the watch is in place: a change between the write and the watch is not missed.
    check()
    return Effect.sync(() => finish(Effect.void))
  })

/** The live layer for a pure v2 host. */
export const CgroupsV2 = (opts: CgroupsV2Options = {}) =>
  Layer.sync(Cgroups, () => {
    let cached: { mountPoint: string; own: string } | undefined
    const layout = () => {
      if (cached) return cached
      const h = parseHierarchies(fs.readFileSync(opts.mountinfo ?? "/proc/self/mountinfo", "utf8")).find((x) => x.version === 2)
      if (!h) throw Object.assign(new Error("no cgroup2 mount"), { code: "ENOENT" })
      return (cached = { mountPoint: h.mountPoint, own: parseOwnCgroups(fs.readFileSync(opts.procSelfCgroup ?? "/proc/self/cgroup", "utf8")).get("") ?? "/" })
    }
    const attach = opts.attachDevices ?? attachDeviceProgram
    const write = (file: string, value: string) => Effect.try({ try: () => fs.writeFileSync(file, value), catch: fail(`write ${JSON.stringify(value)} to`, file) })
    const timeoutMs = opts.freezeTimeoutMs ?? 2000

    let factsCache: HostFacts | undefined
    const readFacts = (): HostFacts => {
      const { mountPoint, own } = layout()
      const parent = path.join(mountPoint, path.posix.dirname(own))
      const list = (files: string[]) => {
        for (const f of files) {
          const l = parseCpuList(readTrim(f))
          if (l && l.length > 0) return new Set(l)
        }
        return new Set<number>()
      }
      let sizes: string[] = []
      try {
        sizes = fs
          .readdirSync(opts.hugepagesDir ?? "/sys/kernel/mm/hugepages")
          .map((d) => /^hugepages-(\d+)kB$/.exec(d)?.[1])
          .filter((kb): kb is string => kb !== undefined)
          .map((kb) => hugepageSizeName(Number(kb)))
      } catch {
        /* no huge pages */
      }
      return {
        layout: "v2",
        v1Controllers: new Set(),
        v1Files: new Set(),
        v2Controllers: new Set(readTrim(path.join(mountPoint, "cgroup.controllers")).split(/\s+/).filter(Boolean)),
        cpus: list([path.join(parent, "cpuset.cpus.effective"), "/sys/devices/system/cpu/online"]),
        mems: list([path.join(parent, "cpuset.mems.effective"), "/sys/devices/system/node/online"]),
        hugepageSizes: new Set(sizes),
      }
    }

    return {
      facts: () => Effect.try({ try: () => (factsCache ??= readFacts()), catch: fail("read facts of", "cgroup2") }),
      paths: (cgroupsPath, id) =>
        Effect.try({ try: () => placeV2(layout().mountPoint, layout().own, cgroupsPath, id), catch: fail("locate", "/proc/self") }),
      prime: () => undefined,
      create: (paths) =>
        Effect.try({
          try: () => {
            const { mountPoint } = layout()
            const leaf = dirOf(paths)
            const enable = readTrim(path.join(mountPoint, "cgroup.controllers"))
              .split(/\s+/)
              .filter(Boolean)
              .map((c) => `+${c}`)
            const levels = path.relative(mountPoint, leaf).split("/").filter(Boolean)
            let cur = mountPoint
            const made: string[] = []
            try {
              for (const name of levels) {
                // Enable the controllers in this level's subtree_control before making its child.
                if (enable.length > 0) {
                  const ctl = path.join(cur, "cgroup.subtree_control")
                  try {
                    fs.writeFileSync(ctl, enable.join(" "))
                  } catch {
                    for (const c of enable)
                      try {
                        fs.writeFileSync(ctl, c)
                      } catch {
                        /* refused here (a delegation boundary): the write needing it reports it */
                      }
                  }
                }
                cur = path.join(cur, name)
                try {
                  fs.mkdirSync(cur, { mode: 0o755 })
                  made.push(cur)
                } catch (e) {
                  if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
                }
                // A new cgroup inside a threaded subtree is "domain invalid" until made threaded (no process
                // could join it as it is). runc's fs2 makes it threaded; the domain controllers are then
                // refused by apply, naming them.
                if (readTrim(path.join(cur, "cgroup.type")) === "domain invalid")
                  try {
                    fs.writeFileSync(path.join(cur, "cgroup.type"), "threaded")
                  } catch (e) {
                    throw new CgroupError({
                      op: "create",
                      path: cur,
                      reason: `cgroup.type is "domain invalid" (no process can join it) and it cannot be made threaded: ${errno(e)}`,
                    })
                  }
              }
            } catch (e) {
              // Nothing half-created: the levels made here go again, deepest first.
              for (const d of made.reverse())
                try {
                  fs.rmdirSync(d)
                } catch {
                  /* busy or gone: the error below is what the caller needs */
                }
              throw e
            }
          },
          catch: (e) => (e instanceof CgroupError ? e : fail("create", dirOf(paths))(e)),
        }),
      // One hierarchy: a bare path only (runc's v2 AddPid takes the "" entry and nothing else).
      subPaths: (paths, subs) =>
        Effect.gen(function* () {
          const named = Object.keys(subs).find((c) => c !== "")
          if (named !== undefined)
            return yield* new CgroupError({ op: "join sub-cgroup", path: dirOf(paths), reason: `unknown controller "${named}": cgroup v2 has one hierarchy, give a path without <controller>:` })
          const dir = path.join(dirOf(paths), subs[""] ?? "")
          if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory())
            return yield* new CgroupError({ op: "join sub-cgroup", path: dir, reason: "ENOENT: no such cgroup (exec --cgroup joins an existing sub-cgroup, it makes none)" })
          return Object.fromEntries(Object.keys(paths).map((mp) => [mp, dir]))
        }),
      join: (paths, pid) => Effect.try({ try: () => fs.writeFileSync(path.join(dirOf(paths), "cgroup.procs"), `${pid}`), catch: fail("join", dirOf(paths)) }),
      holds: (paths, pid) => Effect.sync(() => pidHeldBy(pid, Object.keys(paths).map((mountPoint) => ({ mountPoint, controllers: "", version: 2 as const })), paths)),
      pids: (paths) =>
        Effect.try({
          try: () => {
            const dir = dirOf(paths)
            const all = new Set<number>()
            for (const d of [dir, ...descendants(dir)]) {
              let text = ""
              try {
                text = fs.readFileSync(path.join(d, "cgroup.procs"), "utf8")
              } catch (e) {
                const code = (e as NodeJS.ErrnoException).code
                // A threaded cgroup refuses to list processes (EOPNOTSUPP): its threads, by thread group.
                if (code === "ENOTSUP" || code === "EOPNOTSUPP") text = threadGroups(d).join("\n")
                else if (code !== "ENOENT") throw e
              }
              for (const l of text.split("\n")) if (l.trim()) all.add(Number(l))
            }
            return [...all].sort((a, b) => a - b)
          },
          catch: fail("read", dirOf(paths)),
        }),
      apply: (paths, resources, applyOpts) =>
        Effect.gen(function* () {
          const dir = dirOf(paths)
          for (const warning of v2ResourceWarnings(resources)) yield* Effect.logWarning(warning)
          const writes = v2Writes(resources)
          const type = readTrim(path.join(dir, "cgroup.type"))
          if (type === "threaded" || type === "domain threaded") {
            const domain = [...new Set(writes.map((w) => w.file).filter((f) => DOMAIN_CONTROLLERS.includes(f.split(".")[0]!)))]
            if (domain.length > 0)
              return yield* new CgroupError({
                op: "apply",
                path: dir,
                reason: `cgroup.type is "${type}": only thread-aware controllers (cpu, cpuset, pids, perf_event) work here, not ${domain.join(", ")}`,
              })
          }
          for (const w of writes) {
            const file = path.join(dir, w.file)
            const missing = w.ifMissing && !fs.existsSync(file) ? w.ifMissing : undefined
            if (missing && "skip" in missing) continue
            if (missing && "file" in missing) yield* write(path.join(dir, missing.file), missing.value)
            else yield* write(file, w.value)
          }
          if (applyOpts?.devices === false) return
          // runc's defaults follow the spec's rules, as on v1 (an empty list must not mean every device).
          const program = yield* deviceFilterProgram([...(resources?.devices ?? []), ...DEFAULT_DEVICE_RULES], dir)
          yield* attach(dir, program)
        }),
      read: (paths, _controller, file) =>
        Effect.try({ try: () => fs.readFileSync(path.join(dirOf(paths), file), "utf8"), catch: fail("read", path.join(dirOf(paths), file)) }),
      freeze: (paths, on) =>
        Effect.gen(function* () {
          const dir = dirOf(paths)
          const ctl = path.join(dir, "cgroup.freeze")
          if (!fs.existsSync(ctl)) return yield* new CgroupError({ op: on ? "freeze" : "thaw", path: dir, reason: "no cgroup.freeze (the v2 freezer needs Linux 5.2)" })
          yield* write(ctl, on ? "1" : "0")
          yield* awaitFrozen(dir, on, timeoutMs).pipe(
            // A freeze that does not complete is undone, so that the container is not left half-frozen.
            Effect.tapError(() => (on ? write(ctl, "0").pipe(Effect.ignore) : Effect.void)),
          )
        }),
      // Asked to freeze, or frozen by a parent (then only cgroup.events says so).
      frozen: (paths) => Effect.sync(() => readTrim(path.join(dirOf(paths), "cgroup.freeze")) === "1" || eventsFrozen(dirOf(paths))),
      memoryPressure: watchMemoryPressure,
      killAll: (paths) =>
        Effect.gen(function* () {
          const file = path.join(dirOf(paths), "cgroup.kill")
          if (!fs.existsSync(file)) return false
          yield* write(file, "1")
          return true
        }),
      // Depth-first through any sub-cgroups, EBUSY retried within a time bound (cgroups-remove.ts).
      destroy: (paths) => removeCgroupDir(removeFs, dirOf(paths), { timeoutMs: removeTimeoutMs(opts), delayMs: 10 }),
    }
  })
