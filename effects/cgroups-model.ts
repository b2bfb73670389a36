/**
 * The Cgroups service in memory: cgroup directory → member pids, over a fixed
 * fake hierarchy list, placed by the same rule as the fs layer (placeCgroups).
 * `destroy` fails with EBUSY while live pids remain, as rmdir on cgroupfs does,
 * so that a leaked process shows up as a leaked cgroup.
 *
 * A pid leaves its cgroup when it dies: provided together with the kernel
 * model (`ModelLayer`), the cgroups ask KernelModelControl which pids live;
 * on its own, every pid counts as alive.
 *
 * Resources are the same writes the fs layer makes (v1Writes), kept per
 * directory and file so that `read` returns them; freezing is a flag per
 * directory (the model's processes do not stop: the machine is what is tested).
 */
import { Context, Effect, Layer, Option } from "effect"
import type { HostFacts } from "../config/resources.ts"
import { Cgroups, type CgroupPaths, type Hierarchy } from "./cgroups.ts"
import { placeCgroups } from "./cgroups-fs.ts"
import { v1Writes } from "./cgroups-v1-resources.ts"
import { CgroupError } from "./errors.ts"
import { KernelModelControl, kernelModel, type KernelModelOptions } from "./kernel-model.ts"

/** A hybrid host: v1 hierarchies for cpu, devices and the freezer, and the unified one, all with us in /user.slice. */
export const MODEL_HIERARCHIES: readonly Hierarchy[] = [
  { mountPoint: "/sys/fs/cgroup/cpu,cpuacct", controllers: "cpu,cpuacct", version: 1 },
  { mountPoint: "/sys/fs/cgroup/devices", controllers: "devices", version: 1 },
  { mountPoint: "/sys/fs/cgroup/freezer", controllers: "freezer", version: 1 },
  { mountPoint: "/sys/fs/cgroup/unified", controllers: "", version: 2 },
]
export const MODEL_OWN: ReadonlyMap<string, string> = new Map([
  ["cpu,cpuacct", "/user.slice"],
  ["devices", "/user.slice"],
  ["freezer", "/user.slice"],
  ["", "/user.slice"],
])

/** A host with every v1 controller, two cpus, one node and 2MB pages. */
export const MODEL_FACTS: HostFacts = {
  v1Controllers: new Set(["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids", "blkio", "hugetlb"]),
  v1Files: new Set(["memory.memsw.limit_in_bytes", "blkio.weight"]),
  cpus: new Set([0, 1]),
  mems: new Set([0]),
  hugepageSizes: new Set(["2MB"]),
}

export interface CgroupsModelOptions {
  readonly hierarchies?: readonly Hierarchy[]
  readonly facts?: HostFacts
  /** Our own cgroup per hierarchy, keyed by sorted controller list ("" for cgroup2). */
  readonly own?: ReadonlyMap<string, string>
}

export interface CgroupsModelControlService {
  /** Every cgroup that exists, with its live member pids. */
  readonly groups: () => ReadonlyMap<string, readonly number[]>
  /**
   * The kernel's side of memory-pressure notifications: signals `count` events of `level` to the
   * watches on the container cgroup `dir` (any of its directories); returns how many watches got them.
   */
  readonly pressure: (dir: string, level: "low" | "medium" | "critical", count?: number) => number
}

export class CgroupsModelControl extends Context.Service<CgroupsModelControl, CgroupsModelControlService>()("xcontainer/CgroupsModelControl") {}

/** The cgroups model with its control; `CgroupsModel` is this with the defaults. */
export const cgroupsModel = (opts: CgroupsModelOptions = {}): Layer.Layer<Cgroups | CgroupsModelControl> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const hierarchies = opts.hierarchies ?? MODEL_HIERARCHIES
      const own = opts.own ?? MODEL_OWN
      const kernel = yield* Effect.serviceOption(KernelModelControl)
      const alive = (pid: number) => Option.match(kernel, { onNone: () => true, onSome: (k) => k.isAlive(pid) })
      const groups = new Map<string, Set<number>>()
      const files = new Map<string, Map<string, string>>()
      const frozenDirs = new Set<string>()
      /** Memory-pressure watches: directory → level → the listeners (each with its end). */
      const pressureWatches = new Set<{ dirs: readonly string[]; level: string; onEvent: (n: number) => void; onEnd: () => void }>()
      /** The directory in the hierarchy carrying `controller` (v1), or cgroup2's for "". */
      const dirOf = (paths: CgroupPaths, controller: string) => {
        const h = hierarchies.find((x) => (controller === "" ? x.version === 2 : x.version === 1 && x.controllers.split(",").includes(controller)))
        return h ? paths[h.mountPoint] : undefined
      }
      const existing = (paths: CgroupPaths, op: string) =>
        Effect.gen(function* () {
          const dirs = Object.values(paths)
          const missing = dirs.find((d) => !groups.has(d))
          if (missing !== undefined || dirs.length === 0) return yield* new CgroupError({ op, path: missing ?? "", reason: "ENOENT" })
          return dirs
        })
      const members = (dir: string) => [...(groups.get(dir) ?? [])].filter(alive).sort((a, b) => a - b)
      const mountOf = (dir: string) => hierarchies.find((h) => dir === h.mountPoint || dir.startsWith(`${h.mountPoint}/`))?.mountPoint

      const cgroups = Cgroups.of({
        paths: (cgroupsPath, id) => Effect.sync(() => placeCgroups(hierarchies, own, cgroupsPath, id)),
        create: (paths: CgroupPaths) =>
          Effect.forEach(Object.values(paths), (dir) =>
            mountOf(dir) === undefined
              ? Effect.fail(new CgroupError({ op: "create", path: dir, reason: "ENOENT" }))
              : Effect.sync(() => {
                  if (!groups.has(dir)) groups.set(dir, new Set())
                }),
          ).pipe(Effect.asVoid),
        subPaths: (paths, subs) =>
          Effect.gen(function* () {
            const out: Record<string, string> = { ...paths }
            for (const [ctrl, sub] of Object.entries(subs)) {
              const mps = ctrl === "" ? Object.keys(paths) : hierarchies.filter((h) => h.controllers.split(",").includes(ctrl) && paths[h.mountPoint]).map((h) => h.mountPoint)
              if (mps.length === 0) return yield* new CgroupError({ op: "join sub-cgroup", path: "/sys/fs/cgroup", reason: `unknown controller "${ctrl}"` })
              for (const mp of mps) {
                const dir = `${paths[mp]}/${sub}`.replace(/\/+$/, "")
                if (!groups.has(dir)) return yield* new CgroupError({ op: "join sub-cgroup", path: dir, reason: "ENOENT" })
                out[mp] = dir
              }
            }
            return out
          }),
        // Nothing to warm up in memory.
        prime: () => undefined,
        join: (paths, pid) =>
          Effect.forEach(Object.values(paths), (dir) =>
            Effect.gen(function* () {
              const g = groups.get(dir)
              if (!g) return yield* new CgroupError({ op: "join", path: dir, reason: "ENOENT" })
              // A task is in exactly one cgroup per hierarchy: joining moves it.
              const mp = mountOf(dir)
              for (const [other, set] of groups) if (other !== dir && mountOf(other) === mp) set.delete(pid)
              g.add(pid)
            }),
          ).pipe(Effect.asVoid),
        pids: (paths) => Effect.sync(() => [...new Set(Object.values(paths).flatMap(members))].sort((a, b) => a - b)),
        holds: (paths, pid) => Effect.sync(() => Object.values(paths).some((dir) => members(dir).includes(pid))),
        facts: () => Effect.succeed(opts.facts ?? MODEL_FACTS),
        apply: (paths, resources) =>
          Effect.gen(function* () {
            yield* existing(paths, "apply")
            for (const w of v1Writes(resources, (opts.facts ?? MODEL_FACTS).v1Files)) {
              const dir = dirOf(paths, w.controller)
              // As the fs layer: no hierarchy for a knob is an error, device rules included (fail closed).
              if (dir === undefined) return yield* new CgroupError({ op: `write ${w.file}`, path: "/sys/fs/cgroup", reason: `no cgroup v1 ${w.controller} hierarchy` })
              const m = files.get(dir) ?? new Map<string, string>()
              files.set(dir, m.set(w.file, w.value))
            }
          }),
        read: (paths, controller, file) =>
          Effect.gen(function* () {
            const dir = dirOf(paths, controller)
            const v = dir === undefined ? undefined : files.get(dir)?.get(file)
            if (v === undefined) return yield* new CgroupError({ op: "read", path: `${dir ?? ""}/${file}`, reason: "ENOENT" })
            return `${v}\n`
          }),
        freeze: (paths, on) =>
          Effect.gen(function* () {
            yield* existing(paths, on ? "freeze" : "thaw")
            const d = dirOf(paths, "freezer") ?? dirOf(paths, "")
            if (d === undefined) return yield* new CgroupError({ op: on ? "freeze" : "thaw", path: "/sys/fs/cgroup", reason: "no freezer hierarchy" })
            if (on) frozenDirs.add(d)
            else frozenDirs.delete(d)
          }),
        frozen: (paths) => Effect.sync(() => Object.values(paths).some((d) => frozenDirs.has(d) && groups.has(d))),
        destroy: (paths) =>
          Effect.forEach(Object.values(paths), (dir) =>
            Effect.gen(function* () {
              if (!groups.has(dir)) return
              const busy = members(dir).length > 0 || [...groups.keys()].some((g) => g.startsWith(`${dir}/`))
              if (busy) return yield* new CgroupError({ op: "remove", path: dir, reason: "EBUSY" })
              groups.delete(dir)
              files.delete(dir)
              frozenDirs.delete(dir)
              // The kernel ends a cgroup's pressure watches when it goes.
              for (const w of [...pressureWatches]) if (w.dirs.includes(dir)) w.onEnd()
            }),
          ).pipe(Effect.asVoid),
        memoryPressure: (paths, level, onEvent, onEnd) =>
          Effect.gen(function* () {
            const dirs = yield* existing(paths, "watch memory pressure in")
            let open = true
            const w = {
              dirs,
              level,
              onEvent,
              onEnd: () => {
                if (!open) return
                open = false
                pressureWatches.delete(w)
                onEnd()
              },
            }
            pressureWatches.add(w)
            return { close: w.onEnd }
          }),
      })
      const control = CgroupsModelControl.of({
        groups: () => new Map([...groups.keys()].map((d) => [d, members(d)])),
        pressure: (dir, level, count = 1) => {
          let n = 0
          for (const w of pressureWatches)
            if (w.dirs.includes(dir) && w.level === level) {
              w.onEvent(count)
              n++
            }
          return n
        },
      })
      return Context.make(Cgroups, cgroups).pipe(Context.add(CgroupsModelControl, control))
    }),
  )

/** The cgroups model with the default hierarchies (every pid alive unless the kernel model is provided to it). */
export const CgroupsModel = cgroupsModel()

/** Kernel and cgroups models wired together: a killed model process leaves its cgroups. */
export const modelLayer = (kernel: KernelModelOptions = {}, cgroups: CgroupsModelOptions = {}) =>
  cgroupsModel(cgroups).pipe(Layer.provideMerge(kernelModel(kernel)))

/** `modelLayer()` with the defaults. */
export const ModelLayer = modelLayer()
