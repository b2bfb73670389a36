/**
 * The Cgroups service in memory: cgroup directory → member pids, over a fixed
 * fake hierarchy list, placed by the same rule as the fs layer (placeCgroups).
 * `destroy` fails with EBUSY while live pids remain, as rmdir on cgroupfs does,
 * so that a leaked process shows up as a leaked cgroup.
 *
 * A pid leaves its cgroup when it dies: provided together with the kernel
 * model (`ModelLayer`), the cgroups ask KernelModelControl which pids live;
 * on its own, every pid counts as alive.
 */
import { Context, Effect, Layer, Option } from "effect"
import { Cgroups, type CgroupPaths, type Hierarchy } from "./cgroups.ts"
import { placeCgroups } from "./cgroups-fs.ts"
import { CgroupError } from "./errors.ts"
import { KernelModelControl, kernelModel, type KernelModelOptions } from "./kernel-model.ts"

/** A hybrid host: one v1 hierarchy and the unified one, both with us in /user.slice. */
export const MODEL_HIERARCHIES: readonly Hierarchy[] = [
  { mountPoint: "/sys/fs/cgroup/cpu,cpuacct", controllers: "cpu,cpuacct", version: 1 },
  { mountPoint: "/sys/fs/cgroup/unified", controllers: "", version: 2 },
]
export const MODEL_OWN: ReadonlyMap<string, string> = new Map([
  ["cpu,cpuacct", "/user.slice"],
  ["", "/user.slice"],
])

export interface CgroupsModelOptions {
  readonly hierarchies?: readonly Hierarchy[]
  /** Our own cgroup per hierarchy, keyed by sorted controller list ("" for cgroup2). */
  readonly own?: ReadonlyMap<string, string>
}

export interface CgroupsModelControlService {
  /** Every cgroup that exists, with its live member pids. */
  readonly groups: () => ReadonlyMap<string, readonly number[]>
}

export class CgroupsModelControl extends Context.Tag("xcontainer/CgroupsModelControl")<CgroupsModelControl, CgroupsModelControlService>() {}

/** The cgroups model with its control; `CgroupsModel` is this with the defaults. */
export const cgroupsModel = (opts: CgroupsModelOptions = {}): Layer.Layer<Cgroups | CgroupsModelControl> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const hierarchies = opts.hierarchies ?? MODEL_HIERARCHIES
      const own = opts.own ?? MODEL_OWN
      const kernel = yield* Effect.serviceOption(KernelModelControl)
      const alive = (pid: number) => Option.match(kernel, { onNone: () => true, onSome: (k) => k.isAlive(pid) })
      const groups = new Map<string, Set<number>>()
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
        destroy: (paths) =>
          Effect.forEach(Object.values(paths), (dir) =>
            Effect.gen(function* () {
              if (!groups.has(dir)) return
              const busy = members(dir).length > 0 || [...groups.keys()].some((g) => g.startsWith(`${dir}/`))
              if (busy) return yield* new CgroupError({ op: "remove", path: dir, reason: "EBUSY" })
              groups.delete(dir)
            }),
          ).pipe(Effect.asVoid),
      })
      const control = CgroupsModelControl.of({
        groups: () => new Map([...groups.keys()].map((d) => [d, members(d)])),
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
