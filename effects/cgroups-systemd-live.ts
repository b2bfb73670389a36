/**
 * The systemd cgroup driver as a Cgroups service (runc --systemd-cgroup; issue 17): the container's
 * cgroup is a transient scope systemd makes over D-Bus (the bus: systemd-dbus.ts), everything else
 * is the v2 manager's (cgroups-v2.ts) on the scope's directory. Pure v2 hosts only, where systemd
 * is PID 1 (runc's IsRunningSystemd: /run/systemd/system exists).
 *
 * The lifecycle calls the service as for the fs drivers, in this order, and this is what each does:
 * - paths: linux.cgroupsPath as "slice:prefix:name" (cgroups-systemd.ts; a ConfigError naming the
 *   field), the unit's directory under the cgroup2 mount. Refused before anything exists: a host
 *   that is not pure v2 or has no systemd, and a unit whose cgroup exists already (another
 *   container's, or one left behind: we must not adopt or, on failure, stop it).
 * - create: asks systemd its version (the properties depend on it). A missing or refusing systemd
 *   fails here, naming the unit, before the init is spawned. No cgroup is made: a scope cannot
 *   exist without a process.
 * - apply, before the unit exists: the properties are computed (a resource systemd cannot take is a
 *   ConfigError now) and kept for join.
 * - join (the init at its barrier, before it runs anything of the user's): StartTransientUnit with
 *   Delegate=yes, the resources and PIDs=[init], waiting for its job (bounded); a job that does not
 *   end "done" is a CgroupError naming the unit and the result (the unit reset, as runc). Then the
 *   v2 manager writes every knob into the scope's directory (runc's fsMgr.Set: what systemd has no
 *   property for — burst, io, hugetlb, rdma, the device program — and the rest again, so the
 *   kernel and systemd agree).
 * - apply on a live unit (update): SetUnitProperties, then the files.
 * - destroy: StopUnit (bounded; a unit already gone is fine), ResetFailedUnit, then the directories
 *   that may remain. A create that fails after join stops the unit the same way: nothing is left.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer } from "effect"
import type { ResourcesSpec } from "../config/spec.ts"
import { Cgroups, type CgroupPaths, type CgroupsService } from "./cgroups.ts"
import { parseHierarchies } from "./cgroups-fs.ts"
import { detectLayout } from "./cgroups-layout.ts"
import { parseSystemdPath, resourceProperties, unitProperties, type SystemdBus, type SystemdPlacement } from "./cgroups-systemd.ts"
import { CgroupsV2, type CgroupsV2Options } from "./cgroups-v2.ts"
import { busFailure, dbusSystemd } from "./systemd-dbus.ts"
import { CgroupError, ConfigError } from "./errors.ts"

/** The systemd driver's Cgroups service; the lifecycle takes it for a container created with cgroupDriver "systemd". */
export class SystemdCgroups extends Context.Service<SystemdCgroups, CgroupsService>()("xcontainer/SystemdCgroups") {}

export interface SystemdCgroupsOptions extends CgroupsV2Options {
  /** The bus (default: the live one over @particle/dbus-next). */
  readonly bus?: SystemdBus
  /** Present when systemd is the init (default /run/systemd/system, as runc and sd_booted). */
  readonly systemdRunDir?: string
}

/** The unit and its slice back from the directory paths() gave (the record keeps only the directory). */
export function placementOf(mountPoint: string, dir: string): SystemdPlacement {
  const parent = path.dirname(dir)
  return {
    unit: path.basename(dir),
    slice: parent === mountPoint ? "-.slice" : path.basename(parent),
    cgroup: `/${path.relative(mountPoint, dir)}`,
  }
}

export const SystemdCgroupsLive = (opts: SystemdCgroupsOptions = {}) =>
  Layer.effect(
    SystemdCgroups,
    Effect.gen(function* () {
      const v2 = yield* Effect.provide(
        Effect.gen(function* () {
          return yield* Cgroups
        }),
        CgroupsV2(opts),
      )
      const bus = opts.bus ?? dbusSystemd()
      let version: number | undefined
      /** The properties kept between apply and join, by directory (one process makes a unit). */
      const pending = new Map<string, ResourcesSpec | undefined>()
      const mountOf = (paths: CgroupPaths) => Object.keys(paths)[0] ?? "/sys/fs/cgroup"
      const dirOf = (paths: CgroupPaths) => Object.values(paths)[0] ?? ""
      const unitOf = (paths: CgroupPaths) => placementOf(mountOf(paths), dirOf(paths))
      const call = <A>(op: string, unit: string, f: () => Promise<A>) =>
        Effect.tryPromise({ try: f, catch: (e) => new CgroupError({ op, path: unit, reason: busFailure(e) }) })
      const systemdVersion = (unit: string) =>
        version !== undefined
          ? Effect.succeed(version)
          : call("ask systemd for", unit, () => bus.version()).pipe(Effect.tap((v) => Effect.sync(() => void (version = v))))
      const props = (unit: string, r: ResourcesSpec | undefined) =>
        Effect.flatMap(systemdVersion(unit), (v) => {
          const p = resourceProperties(r, v)
          return p instanceof ConfigError ? Effect.fail(p) : Effect.succeed(p)
        })

      const service: CgroupsService = {
        ...v2,
        paths: (cgroupsPath, id) =>
          Effect.gen(function* () {
            const place = parseSystemdPath(cgroupsPath, id)
            if (place instanceof ConfigError) return yield* place
            const refuse = (reason: string) => new CgroupError({ op: "place", path: place.unit, reason })
            let layout = "v1"
            try {
              layout = detectLayout(parseHierarchies(fs.readFileSync(opts.mountinfo ?? "/proc/self/mountinfo", "utf8")))
            } catch {
              /* unreadable: refused below as not v2 */
            }
            if (layout !== "v2") return yield* refuse(`the systemd cgroup driver needs a pure cgroup v2 host; this one is ${layout}`)
            if (!fs.existsSync(opts.systemdRunDir ?? "/run/systemd/system")) return yield* refuse("systemd is not running on this host (no /run/systemd/system)")
            // The fs manager's placement of an absolute path gives the mount point.
            const mountPoint = Object.keys(yield* v2.paths("/", id))[0]!
            const dir = path.join(mountPoint, place.cgroup)
            if (fs.existsSync(dir)) return yield* refuse(`its cgroup ${dir} exists already (another container's unit, or one left behind)`)
            return { [mountPoint]: dir }
          }),
        create: (paths) => systemdVersion(unitOf(paths).unit).pipe(Effect.asVoid),
        apply: (paths, resources, applyOpts) =>
          Effect.gen(function* () {
            const { unit } = unitOf(paths)
            const p = yield* props(unit, resources)
            if (!fs.existsSync(dirOf(paths))) {
              pending.set(dirOf(paths), resources)
              return
            }
            yield* call("set properties of", unit, () => bus.setUnitProperties(unit, p))
            yield* v2.apply(paths, resources, applyOpts)
          }),
        join: (paths, pid) =>
          Effect.gen(function* () {
            const place = unitOf(paths)
            const resources = pending.get(dirOf(paths))
            const v = yield* systemdVersion(place.unit)
            const all = unitProperties(place, place.unit, pid, resources, v)
            if (all instanceof ConfigError) return yield* new CgroupError({ op: "start unit", path: place.unit, reason: all.message })
            const result = yield* call("start unit", place.unit, () => bus.startTransientUnit(place.unit, all))
            if (result !== "done") return yield* new CgroupError({ op: "start unit", path: place.unit, reason: `systemd's job for it ended "${result}"` })
            pending.delete(dirOf(paths))
            // systemd moved the pid as part of the job; should it not have (a pid it could not move), we do.
            const at = (() => {
              try {
                return fs.readFileSync(`/proc/${pid}/cgroup`, "utf8")
              } catch {
                return ""
              }
            })()
            if (!at.split("\n").includes(`0::${place.cgroup}`)) yield* v2.join(paths, pid)
            yield* v2.apply(paths, resources).pipe(Effect.mapError((e) => (e instanceof ConfigError ? new CgroupError({ op: "apply", path: place.unit, reason: e.message }) : e)))
          }),
        destroy: (paths) =>
          Effect.gen(function* () {
            const { unit } = unitOf(paths)
            pending.delete(dirOf(paths))
            const result = yield* call("stop unit", unit, () => bus.stopUnit(unit)).pipe(
              // No systemd to ask and no cgroup: nothing of ours is left (a create that failed before join).
              Effect.catch((e) => (fs.existsSync(dirOf(paths)) ? Effect.fail(e) : Effect.succeed("done"))),
            )
            if (result !== "done") yield* Effect.logWarning(`systemd's stop job for ${unit} ended "${result}"`)
            yield* v2.destroy(paths)
          }),
      }
      return service
    }),
  )
