/**
 * The container's cgroup in every mounted hierarchy (v1, v2 or hybrid).
 * Placement follows runc's fs manager: an absolute `linux.cgroupsPath` is
 * taken from each hierarchy's root, a relative one (and the default, the id)
 * is nested under the caller's own cgroup in that hierarchy.
 * Resources are applied on v1 hierarchies (cgroups-v1-resources.ts says what is
 * written where); the freezer is v1's freezer.state, or cgroup.freeze when only
 * cgroup2 carries it.
 */
import * as path from "node:path"
import { Context, type Effect } from "effect"
import type { CgroupBind } from "../config/plan.ts"
import type { HostFacts } from "../config/resources.ts"
import type { ResourcesSpec } from "../config/spec.ts"
import type { CgroupError, ConfigError } from "./errors.ts"

/** A mounted hierarchy: its mount point and the controllers it carries ("" for cgroup2). */
export interface Hierarchy {
  readonly mountPoint: string
  readonly controllers: string
  readonly version: 1 | 2
}

/** The container's cgroup directories, keyed by hierarchy mount point. */
export type CgroupPaths = Readonly<Record<string, string>>

/**
 * The cgroup binds of the init's plan (config/plan.ts mounts them at the spec's cgroup mount). On pure
 * v2 the container's one directory is the whole of what it sees there (name "": bound at the mount
 * itself, as runc does); on v1/hybrid each hierarchy's directory goes under a tmpfs, named by its
 * mount point. create builds the plan from these, and checkpoint/restore tell CRIU which mounts are
 * external from the same: one rule, or a dump names a mount the container does not have.
 */
export const cgroupBinds = (paths: CgroupPaths, layout: HostFacts["layout"]): CgroupBind[] =>
  Object.entries(paths).map(([mp, dir]) => ({ name: layout === "v2" ? "" : path.basename(mp), hostPath: dir }))

export interface CgroupsService {
  /** Where the container's cgroups go (nothing is created); a path the driver cannot parse is a ConfigError. */
  readonly paths: (cgroupsPath: string | undefined, id: string) => Effect.Effect<CgroupPaths, CgroupError | ConfigError>
  /** Creates the directories (and fills cpuset.cpus/mems on v1 so that tasks may join). */
  readonly create: (paths: CgroupPaths) => Effect.Effect<void, CgroupError>
  /**
   * Starts, without waiting, what makes the first join slow: moving a task takes the kernel's
   * global cgroup_threadgroup_rwsem for writing, which waits out an RCU grace period when no
   * migration happened lately (10–30 ms here, paid by runc and crun too). Re-joining our own
   * cgroup on the thread pool pays it while create does its other work. It holds cgroup_mutex
   * meanwhile: call it after the cgroups are made.
   */
  readonly prime: () => void
  /**
   * The directories an exec'd process joins with runc's `exec --cgroup`: `subs` maps a controller ("" for
   * every hierarchy) to a path below the container's cgroup. Fails, naming it, on a controller none of the
   * container's hierarchies carries and on a sub-cgroup that does not exist (it is never created). Absent
   * in layers that cannot place a process below the container's cgroup.
   */
  readonly subPaths?: (paths: CgroupPaths, subs: Readonly<Record<string, string>>) => Effect.Effect<CgroupPaths, CgroupError>
  /** Moves `pid` into every one of them. */
  readonly join: (paths: CgroupPaths, pid: number) => Effect.Effect<void, CgroupError>
  /** Pids in the container's cgroup. */
  readonly pids: (paths: CgroupPaths) => Effect.Effect<number[], CgroupError>
  /**
   * Whether `pid` is (now) in the container's cgroup or one below it: false when it is elsewhere or
   * gone. Asked after a pidfd pins the pid, it tells a member from a process that reused its number.
   */
  readonly holds: (paths: CgroupPaths, pid: number) => Effect.Effect<boolean>
  /** What this host's cgroups offer, for validating linux.resources before anything is created. */
  readonly facts: () => Effect.Effect<HostFacts, CgroupError>
  /**
   * Writes the resources into the cgroups: at create before any task joins, or live (update). The
   * device rules (deny all, then the allowed ones) are rewritten unless `devices` is false: an update
   * that does not name devices must not open a moment where every device is denied.
   */
  readonly apply: (paths: CgroupPaths, resources: ResourcesSpec | undefined, opts?: { readonly devices?: boolean }) => Effect.Effect<void, CgroupError | ConfigError>
  /** Reads one file of the container's cgroup in the hierarchy carrying `controller` ("" for cgroup2). */
  readonly read: (paths: CgroupPaths, controller: string, file: string) => Effect.Effect<string, CgroupError>
  /** Freezes (on) or thaws every task; returns once the kernel reports the new state, or fails after a bound. */
  readonly freeze: (paths: CgroupPaths, on: boolean) => Effect.Effect<void, CgroupError>
  /** Whether the cgroup is frozen (false when it has no freezer or is gone). */
  readonly frozen: (paths: CgroupPaths) => Effect.Effect<boolean, CgroupError>
  /** Removes the directories, retrying a bounded number of times while dying tasks keep them busy. */
  readonly destroy: (paths: CgroupPaths) => Effect.Effect<void, CgroupError>
  /**
   * SIGKILLs every process of the container's cgroup at once through cgroup2's cgroup.kill (Linux 5.14):
   * no pid list to race with forks, and frozen tasks die too. false where there is no cgroup.kill
   * (the caller then kills pid by pid); absent in layers that have no cgroup2.
   */
  readonly killAll?: (paths: CgroupPaths) => Effect.Effect<boolean, CgroupError>
  /**
   * Memory-pressure notifications (libcontainer's NotifyMemoryPressure; pressure.ts): `onEvent(count)`
   * each time the container's memory cgroup reaches `level`, `onEnd()` once when the watch ends.
   * Absent in layers that cannot watch.
   */
  readonly memoryPressure?: (
    paths: CgroupPaths,
    level: "low" | "medium" | "critical",
    onEvent: (count: number) => void,
    onEnd: () => void,
  ) => Effect.Effect<{ readonly close: () => void }, CgroupError>
}

export class Cgroups extends Context.Service<Cgroups, CgroupsService>()("xcontainer/Cgroups") {}
