/**
 * Recovery after a manager crash: finds what a killed manager left behind and reaps it.
 *
 * By the state root: a directory without state.json is a create killed between claiming the id and
 * its first write (nothing else exists yet: provision writes the record before it makes cgroups); a
 * record still "creating" is a create that never reached its barrier, whose init, if any, is not
 * trusted to go on. Both are destroyed as delete -f would: every process in the recorded cgroups
 * killed, the cgroups and the state dir removed. Containers that reached "created" or later are
 * real containers (another manager may start or delete them) and are left alone unless `stopped`
 * asks for the stopped ones too.
 *
 * By cgroup: with `cgroupParent` (a cgroupsPath parent that only this root's containers use), every
 * directory under that parent in every hierarchy whose name is no id in the root is an orphan: its
 * processes are killed and it is removed.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { Cgroups, type CgroupPaths } from "./cgroups.ts"
import { Kernel } from "./kernel.ts"
import { StateStore, containerDir } from "../state/store.ts"
import { destroy, killAll, reconcile, type Services } from "./lifecycle.ts"
import type { ContainerError } from "./errors.ts"
import type { ContainerRecord } from "../state/record.ts"

export interface GcOptions {
  readonly root: string
  /** Also reap containers whose init has exited (status stopped). Default false. */
  readonly stopped?: boolean
  /**
   * A state dir without state.json younger than this is a create in progress, not an orphan
   * (default 30 s; a create claims and writes its record within milliseconds).
   */
  readonly graceMs?: number
  /** The cgroupsPath parent only this root's containers use: its unknown children are reaped. */
  readonly cgroupParent?: string
}

export interface GcReport {
  /** Ids whose state dir held no record. */
  readonly incomplete: readonly string[]
  /** Ids destroyed (a create that never finished, or stopped with `stopped`). */
  readonly reaped: readonly string[]
  /** Cgroup directories removed that no id in the root owned. */
  readonly cgroups: readonly string[]
  /** What could not be reaped, with why (the next gc tries again). */
  readonly failed: readonly { readonly id: string; readonly reason: string }[]
}

const dirsIn = (dir: string): string[] => {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
  } catch {
    return []
  }
}

export const gc = (o: GcOptions): Effect.Effect<GcReport, never, Services> =>
  Effect.gen(function* () {
    const store = yield* StateStore
    const cgroups = yield* Cgroups
    const grace = o.graceMs ?? 30_000
    const incomplete: string[] = []
    const reaped: string[] = []
    const removedCgroups: string[] = []
    const failed: { id: string; reason: string }[] = []
    const known = new Set(dirsIn(o.root))
    for (const id of known) {
      const dir = containerDir(o.root, id)
      if (!fs.existsSync(path.join(dir, "state.json"))) {
        const age = Date.now() - (fs.statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? 0)
        if (age < grace) continue
        yield* store.remove(o.root, id).pipe(
          Effect.map(() => incomplete.push(id)),
          Effect.catch((e) => Effect.sync(() => failed.push({ id, reason: e.message }))),
        )
        continue
      }
      const outcome = yield* Effect.result(
        Effect.gen(function* () {
          const live = yield* reconcile(o.root, id)
          const orphan = live.record.status === "creating" || (o.stopped === true && live.status === "stopped")
          if (!orphan) {
            if (live.init) yield* Effect.flatMap(Kernel, (k) => k.release(live.init!))
            return false
          }
          yield* destroy(o.root, live)
          return true
        }),
      )
      if (outcome._tag === "Success") {
        if (outcome.success) reaped.push(id)
      } else failed.push({ id, reason: (outcome.failure as ContainerError).message })
    }
    if (o.cgroupParent !== undefined) {
      // The parent's directory in each hierarchy, as paths() places a child of it.
      const probe = yield* cgroups.paths(path.join(o.cgroupParent, "gc-probe"), "gc-probe").pipe(Effect.orElseSucceed(() => ({}) as CgroupPaths))
      const owners = new Set(dirsIn(o.root))
      const orphans = new Map<string, Record<string, string>>()
      for (const [mp, probeDir] of Object.entries(probe)) {
        const parent = path.dirname(probeDir)
        for (const name of dirsIn(parent))
          if (!owners.has(name)) orphans.set(name, { ...orphans.get(name), [mp]: path.join(parent, name) })
      }
      for (const [name, paths] of orphans) {
        const r = yield* Effect.result(
          // killAll reads only the record's cgroups (no init: it kills by cgroup until the cgroup is empty).
          killAll({ record: { cgroups: paths } as ContainerRecord, init: undefined }).pipe(Effect.andThen(cgroups.destroy(paths))),
        )
        if (r._tag === "Success") removedCgroups.push(...Object.values(paths))
        else failed.push({ id: name, reason: (r.failure as ContainerError).message })
      }
    }
    return { incomplete, reaped, cgroups: removedCgroups, failed }
  })
