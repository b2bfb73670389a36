/**
 * Spec → InitPlan: every decision about how a container is set up, made here,
 * in order, as data. The helper (native/init) executes the plan and decides
 * nothing. The ordering rules (mounts before pivot_root, masks after it, the
 * user and capabilities after the start barrier, no_new_privs and seccomp
 * last, exec at the very end) are property-tested in test/config/plan.test.ts.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { CAPABILITIES, CLONE_FLAGS, MOUNT_ATTR, MOUNT_FLAG_OPTIONS, MS, PROPAGATION_OPTIONS, RECURSIVE_OPTIONS, RLIMITS } from "./linux-names.ts"
import { compileSeccompCached } from "./seccomp-compile.ts"
import { lsmHost, lsmOps, mountLabelData } from "./lsm.ts"
import type { MountSpec, NamespaceType, Spec } from "./spec.ts"

/** One step of the plan. `op` names it; protocol.h documents what the helper does. */
export type PlanOp =
  | { readonly op: "joinNamespace"; readonly type: NamespaceType; readonly path: string }
  /** Join every namespace of `types` of the process whose pidfd the helper holds at `fd` (setns(pidfd)). */
  | { readonly op: "joinPidfd"; readonly fd: number; readonly types: readonly NamespaceType[] }
  | { readonly op: "timeOffsets"; readonly text: string }
  | {
      readonly op: "clone"
      readonly namespaces: readonly NamespaceType[]
      readonly uidMap: string
      readonly gidMap: string
      readonly denySetgroups: boolean
      /**
       * The setuid tool (newuidmap/newgidmap) that writes a map the helper may not write itself, "" to
       * write it directly: an unprivileged parent may map only its own id (user_namespaces(7)).
       */
      readonly uidMapTool?: string
      readonly gidMapTool?: string
      /** The helper is unprivileged: it must stay dumpable to open the child's /proc/PID/uid_map. */
      readonly dumpableForMaps?: boolean
    }
  | { readonly op: "setIdRoot" }
  | { readonly op: "unshare"; readonly namespaces: readonly NamespaceType[] }
  /** A pty in the container's devpts as the process's terminal; the master goes to the manager. */
  | { readonly op: "console"; readonly rows: number; readonly columns: number; readonly bindConsole: boolean }
  /** ioprio_set value ((class << 13) | level). */
  | { readonly op: "ioPriority"; readonly value: number }
  | {
      readonly op: "scheduler"
      readonly policy: number
      readonly nice: number
      readonly priority: number
      readonly flags: number
      readonly runtime: number
      readonly deadline: number
      readonly period: number
    }
  | { readonly op: "personality"; readonly persona: number }
  /** Fds the helper got at 4… become the program's 3… (runc's --preserve-fds). */
  | { readonly op: "preserveFds"; readonly count: number }
  /** The init waits while the manager runs the prestart and createRuntime hooks. */
  | { readonly op: "sync" }
  /** A createContainer ("create" state) or startContainer ("start" state) hook, run by the init. */
  | {
      readonly op: "hook"
      readonly path: string
      readonly args: readonly string[]
      readonly env: readonly string[]
      readonly timeoutSec: number
      readonly state: "create" | "start"
      /** Its working directory is the rootfs (runc chdirs there before the createContainer hooks). */
      readonly cwdRootfs?: boolean
    }
  /**
   * A bind source the helper takes as host root in the container's mount namespace (open_tree), right
   * after the clone, for a user namespace whose root could not reach it (runc's mount fds). The k-th
   * (from 1) is the `sourceTree` of a later mount.
   */
  /**
   * `idmap`: id-map the taken tree with the container's user namespace (mount_setattr MOUNT_ATTR_IDMAP),
   * "recursive" for ridmap (every submount), "top" for idmap (the bind's own mount).
   */
  | {
      readonly op: "mountSource"
      readonly path: string
      readonly recursive: boolean
      readonly idmap?: "top" | "recursive"
      /** uid_map/gid_map text of a user namespace made for this mount ("" or absent: the container's own). */
      readonly uidMap?: string
      readonly gidMap?: string
    }
  | { readonly op: "setsid" }
  | { readonly op: "rootPropagation"; readonly flags: number }
  | { readonly op: "rootfs"; readonly path: string; readonly bind?: boolean }
  | {
      readonly op: "mount"
      readonly source: string
      readonly target: string
      readonly fstype: string
      readonly data: string
      readonly flags: number
      readonly propagation: number
      readonly create: "none" | "dir" | "file"
      readonly remountFlags: number
      /** mount_setattr(AT_RECURSIVE) attributes to set / clear on it and every mount below (rro…). */
      readonly recursiveSet?: number
      readonly recursiveClear?: number
      /** proc and sysfs: the target must be a directory no symlink leads to (runc's checkProcMount). */
      readonly plainDir?: boolean
      /** Attach the `mountSource` tree with this number (from 1) instead of mounting `source`. */
      readonly sourceTree?: number
      /** tmpcopyup: the new mount starts with a copy of the directory it covers. */
      readonly copyUp?: boolean
      /** The new mount's root takes the mode of the directory it covers, if one was there (runc's tmpfs). */
      readonly keepMode?: boolean
    }
  | {
      readonly op: "mknod"
      readonly path: string
      readonly kind: "c" | "b" | "p"
      readonly perm: number
      readonly major: number
      readonly minor: number
      readonly uid: number
      readonly gid: number
    }
  | { readonly op: "symlink"; readonly path: string; readonly target: string }
  | { readonly op: "execFifo"; readonly path: string }
  /** `hideHostProcfs` (with noPivot): detach the host's full proc/sysfs mounts first (runc's msMoveRoot). */
  | { readonly op: "pivotRoot"; readonly noPivot: boolean; readonly chrootOnly?: boolean; readonly hideHostProcfs?: boolean }
  | { readonly op: "mask"; readonly path: string }
  | { readonly op: "readonly"; readonly path: string }
  | { readonly op: "remountRootReadonly" }
  /** Remount the mount at `path` read-only, keeping its other flags (a read-only /dev, once populated). */
  | { readonly op: "remountReadonly"; readonly path: string }
  /** fchown the stdio fds that are not /dev/null to `uid` (runc's fixStdioPermissions). */
  | { readonly op: "chownStdio"; readonly uid: number }
  | { readonly op: "hostname"; readonly name: string }
  | { readonly op: "domainname"; readonly name: string }
  | { readonly op: "sysctl"; readonly key: string; readonly value: string }
  | { readonly op: "loopbackUp" }
  | { readonly op: "oomScoreAdj"; readonly value: number }
  | { readonly op: "rlimit"; readonly type: string; readonly resource: number; readonly soft: bigint; readonly hard: bigint }
  | { readonly op: "umask"; readonly mask: number }
  | { readonly op: "resolveExec"; readonly program: string; readonly searchPath: string }
  | { readonly op: "waitStart" }
  | { readonly op: "closeFds"; readonly from: number }
  | { readonly op: "capsBounding"; readonly keep: readonly string[] }
  | { readonly op: "user"; readonly uid: number; readonly gid: number; readonly additionalGids: readonly number[] }
  | {
      readonly op: "caps"
      readonly effective: readonly string[]
      readonly permitted: readonly string[]
      readonly inheritable: readonly string[]
      readonly ambient: readonly string[]
    }
  /**
   * `create`: make what is missing of the cwd (directories, in root) right after the pivot, as runc's
   * MkdirAll; `privileged`: chdir before the user switch, leaving EACCES/EPERM to `final`, which
   * chdirs after it unless `privileged` got there (runc's finalizeNamespace).
   */
  | { readonly op: "chdir"; readonly path: string; readonly mode: "create" | "privileged" | "final" }
  | { readonly op: "noNewPrivs" }
  /** A compiled filter (config/seccomp-compile.ts); `skipped`: syscall names no ABI knows, for the debug log. */
  | { readonly op: "seccomp"; readonly filter: Uint8Array; readonly flags: number; readonly skipped: readonly string[]; readonly listener?: boolean }
  /** Write `text` to the LSM attr file `attrPath` (config/lsm.ts): the label of the next execve. */
  | { readonly op: "lsmExec"; readonly attrPath: string; readonly text: string; readonly testStandIn: boolean }
  | { readonly op: "exec"; readonly args: readonly string[]; readonly env: readonly string[] }

export type PlanOpName = PlanOp["op"]

/** An ordered init plan. */
export interface InitPlan {
  readonly ops: readonly PlanOp[]
}

/** A cgroup hierarchy the container's cgroup mount shows: `name` under the mount, host dir of our cgroup. */
export interface CgroupBind {
  readonly name: string
  readonly hostPath: string
}

/** What the plan needs besides the spec. */
export interface PlanInput {
  readonly spec: Spec
  readonly rootfs: string
  readonly bundleDir: string
  readonly fifoPath: string
  readonly cgroupBinds: readonly CgroupBind[]
  readonly noPivot?: boolean
  /** How many preserved fds the helper was given (they become the program's 3…). */
  readonly preserveFds?: number
  /** Stop at the createRuntime point even without OCI hooks there (in-process hooks run then). */
  readonly syncForHooks?: boolean
  /** HOME from the container's /etc/passwd for the process's uid, when env has none. */
  readonly home?: string
  /**
   * Rootless (the manager is not root): the newuidmap/newgidmap paths for maps wider than the caller's
   * own id (absent: the maps are only that id, written by the helper, with setgroups denied first).
   */
  readonly idMapTools?: { readonly uid?: string; readonly gid?: string }
}

/** runc's default devices, created when /dev is a fresh mount. */
export const DEFAULT_DEVICES = [
  { path: "/dev/null", major: 1, minor: 3 },
  { path: "/dev/zero", major: 1, minor: 5 },
  { path: "/dev/full", major: 1, minor: 7 },
  { path: "/dev/random", major: 1, minor: 8 },
  { path: "/dev/urandom", major: 1, minor: 9 },
  { path: "/dev/tty", major: 5, minor: 0 },
] as const

const DEV_SYMLINKS = [
  ["/dev/fd", "/proc/self/fd"],
  ["/dev/stdin", "/proc/self/fd/0"],
  ["/dev/stdout", "/proc/self/fd/1"],
  ["/dev/stderr", "/proc/self/fd/2"],
  ["/dev/ptmx", "pts/ptmx"],
] as const

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
const RLIM_INFINITY = (1n << 64n) - 1n

/** Namespaces are joined user first (it decides what the others may do) and mount last. */
const JOIN_ORDER: readonly NamespaceType[] = ["user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount"]

/** Relative paths inside the rootfs ("/dev/null" → "dev/null"). */
const inRoot = (p: string): string => path.posix.normalize(p).replace(/^\/+/, "") || "."

/** What a mount's options ask for, as runc's parseMountOptions splits them. */
export interface MountOptions {
  readonly flags: number
  readonly propagation: number
  /** mount_setattr(AT_RECURSIVE) attributes to set and to clear ("rro", "rnosuid"…). */
  readonly recursiveSet: number
  readonly recursiveClear: number
  /** "tmpcopyup" (runc's extension; podman adds it to --tmpfs mounts): fill the tmpfs from the image. */
  readonly copyUp: boolean
  readonly data: string[]
}

/** Flags, propagation, recursive attributes and fs data of a mount's options (unknown ones are fs data, as in runc). */
export function parseMountOptions(options: readonly string[]): MountOptions {
  let flags = 0
  let propagation = 0
  let recursiveSet = 0
  let recursiveClear = 0
  let copyUp = false
  const data: string[] = []
  for (const o of options) {
    if (o === "tmpcopyup") {
      copyUp = true
      continue
    }
    // Not fs data: mountOne makes the bind id-mapped (idMappedProblem checks where it may be).
    if (o === "idmap" || o === "ridmap") continue
    const f = MOUNT_FLAG_OPTIONS.get(o)
    const p = PROPAGATION_OPTIONS.get(o)
    const r = RECURSIVE_OPTIONS.get(o)
    if (f) flags = f.clear ? flags & ~f.flag : flags | f.flag
    else if (p !== undefined) propagation |= p
    else if (r) {
      // mount_setattr(2): an atime mode is set by clearing the whole atime field with it.
      const atime = (r.attr & MOUNT_ATTR.ATIME) === r.attr
      if (r.clear) recursiveClear |= r.attr | (atime ? MOUNT_ATTR.ATIME : 0)
      else {
        recursiveSet |= r.attr
        recursiveClear |= atime ? MOUNT_ATTR.ATIME : 0
      }
    } else data.push(o)
  }
  return { flags, propagation, recursiveSet, recursiveClear, copyUp, data }
}

/** Whether a mount is id-mapped: its mappings or an idmap/ridmap option (runc 1.2: mappings imply idmap). */
export function idMapOf(m: MountSpec): "top" | "recursive" | undefined {
  const o = m.options ?? []
  if (o.includes("ridmap")) return "recursive"
  return o.includes("idmap") || m.uidMappings?.length || m.gidMappings?.length ? "top" : undefined
}

const mapText = (m: readonly { containerID: number; hostID: number; size: number }[] | undefined): string =>
  (m ?? []).map((x) => `${x.containerID} ${x.hostID} ${x.size}`).join("\n")

const sameMaps = (a: readonly { containerID: number; hostID: number; size: number }[] | undefined, b: typeof a): boolean =>
  JSON.stringify(a ?? []) === JSON.stringify(b ?? [])

/**
 * Where an id-mapped mount can be made: a bind, with both mappings, into a container with a new user
 * namespace (the helper takes bind sources as host root only then), by a root manager (the kernel wants
 * CAP_SYS_ADMIN over the filesystem's own user namespace). Maps equal to the container's use its user
 * namespace; others one the helper makes for the mount.
 */
export function idMappedProblem(spec: Spec, euid: number = process.geteuid?.() ?? 0): { path: string; reason: string } | undefined {
  const linux = spec.linux ?? {}
  const userNs = (linux.namespaces ?? []).find((n) => n.type === "user")
  for (const [i, m] of (spec.mounts ?? []).entries()) {
    if (!idMapOf(m)) continue
    const at = `mounts[${i}]`
    const isBind = m.type === "bind" || (m.options ?? []).includes("bind") || (m.options ?? []).includes("rbind")
    if (!isBind) return { path: at, reason: `id-mapped mount of ${m.destination}: only bind mounts can be id-mapped here (type ${m.type ?? "unset"})` }
    if (!m.uidMappings?.length || !m.gidMappings?.length) return { path: `${at}.uidMappings`, reason: `id-mapped mount of ${m.destination}: needs both uidMappings and gidMappings` }
    if (!userNs || userNs.path) return { path: `${at}.uidMappings`, reason: `id-mapped mount of ${m.destination}: needs a new user namespace (linux.namespaces)` }
    if (euid !== 0) return { path: at, reason: `id-mapped mount of ${m.destination}: needs a root manager (CAP_SYS_ADMIN over the filesystem)` }
  }
  return undefined
}

/** Options that would otherwise be fs data although they ask for something this runtime does not do. */
const UNSUPPORTED_OPTIONS: ReadonlyMap<string, string> = new Map([
  ["remount", "remount is not a mount option here"],
])

/**
 * A mount option that looks like a flag this runtime does not implement is refused, never passed on
 * as fs data: the kernel would ignore it on a bind (it failed open: "rro" left submounts writable).
 * Anything else that is not a flag is fs data for the filesystem to judge ("mode=755", "size=…").
 */
export function mountOptionProblem(mounts: readonly MountSpec[]): { path: string; reason: string } | undefined {
  for (const [i, m] of mounts.entries())
    for (const [j, o] of (m.options ?? []).entries()) {
      const known = MOUNT_FLAG_OPTIONS.has(o) || PROPAGATION_OPTIONS.has(o) || RECURSIVE_OPTIONS.has(o)
      const why = UNSUPPORTED_OPTIONS.get(o)
      if (why) return { path: `mounts[${i}].options[${j}]`, reason: `"${o}" on ${m.destination}: ${why}` }
      // runc copies up only into a tmpfs; elsewhere the option would silently do nothing.
      if (o === "tmpcopyup" && m.type !== "tmpfs") return { path: `mounts[${i}].options[${j}]`, reason: `"tmpcopyup" on ${m.destination}: applies to tmpfs mounts only (type is ${m.type ?? "unset"})` }
      // "rsync", "rmand"…: the recursive form of a flag that has no mount_setattr attribute.
      if (!known && o.startsWith("r") && MOUNT_FLAG_OPTIONS.has(o.slice(1)))
        return { path: `mounts[${i}].options[${j}]`, reason: `"${o}" on ${m.destination}: no recursive form of "${o.slice(1)}" is supported (known: ${[...RECURSIVE_OPTIONS.keys()].join(", ")})` }
    }
  return undefined
}

const BIND_REMOUNTABLE = MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.NOATIME | MS.NODIRATIME | MS.RELATIME | MS.STRICTATIME | MS.NOSYMFOLLOW

/** Builds the plan. Pure but for reading the host (bind sources' types). */
export function buildPlan(input: PlanInput): InitPlan {
  const { spec } = input
  const proc = spec.process
  if (!proc) throw new Error("buildPlan: spec.process is required (parseSpec checks it)")
  const linux = spec.linux ?? {}
  const namespaces = linux.namespaces ?? []
  const isNew = (t: NamespaceType) => namespaces.some((n) => n.type === t && !n.path)
  const ops: PlanOp[] = []

  // ── helper, before the clone ──
  for (const t of JOIN_ORDER)
    for (const n of namespaces) if (n.type === t && n.path) ops.push({ op: "joinNamespace", type: t, path: n.path })
  if (isNew("time")) {
    const offs: Readonly<Record<string, { secs?: number; nanosecs?: number }>> = linux.timeOffsets ?? {}
    const text = Object.entries(offs)
      .map(([clock, o]) => `${clock} ${o.secs ?? 0} ${o.nanosecs ?? 0}`)
      .join("\n")
    ops.push({ op: "timeOffsets", text })
  }
  // Inherited across the clone, and set here because the init cannot: a non-dumpable process in a new
  // user namespace may not write its oom_score_adj, and rlimits above the namespace's need the parent's.
  ops.push(...limitOps(proc))
  // In a new user namespace its root may not reach a bind's source (a root-only directory on the host):
  // the helper takes each as host root, inside the new mount namespace, right after the clone (runc's
  // mount fds). Only a new one: a joined user namespace is entered before the clone; and only for a
  // root manager, as runc (an unprivileged one could not join the container's mount namespace).
  const sources: PlanOp[] = []
  const hostRoot = process.geteuid?.() === 0
  const mounts = isNew("mount") ? mountOps(input, isNew, isNew("user") && hostRoot ? sources : undefined) : []
  ops.push(...sources)
  const idMap = (m: readonly { containerID: number; hostID: number; size: number }[] | undefined) =>
    (m ?? []).map((x) => `${x.containerID} ${x.hostID} ${x.size}`).join("\n")
  ops.push({
    op: "clone",
    // time is made by timeOffsets, cgroup by `unshare` once the init sits in its cgroups.
    namespaces: (Object.keys(CLONE_FLAGS) as NamespaceType[]).filter((t) => t !== "time" && t !== "cgroup" && isNew(t)),
    uidMap: isNew("user") ? idMap(linux.uidMappings) : "",
    gidMap: isNew("user") ? idMap(linux.gidMappings) : "",
    // An unprivileged writer of gid_map must deny setgroups first (the kernel refuses it otherwise);
    // newgidmap decides that itself from /etc/subgid (runc's nsexec.c: deny only without the tool).
    denySetgroups: isNew("user") && !hostRoot && !input.idMapTools?.gid,
    ...(isNew("user") && !hostRoot ? { dumpableForMaps: true } : {}),
    ...(isNew("user") && input.idMapTools?.uid ? { uidMapTool: input.idMapTools.uid } : {}),
    ...(isNew("user") && input.idMapTools?.gid ? { gidMapTool: input.idMapTools.gid } : {}),
  })

  // ── init, in the new namespaces ──
  if (isNew("user")) ops.push({ op: "setIdRoot" })
  // The root of a cgroup namespace is the cgroup its creator is in: the manager joined them before MSG_GO.
  if (isNew("cgroup")) ops.push({ op: "unshare", namespaces: ["cgroup"] })
  // A session of its own, as runc's init (nsexec.c): CRIU refuses to dump a tree whose session leader is
  // outside its pid namespace. A terminal's setsid comes with its console op.
  if (!proc.terminal) ops.push({ op: "setsid" })
  const newMountNs = isNew("mount")
  if (newMountNs) {
    const prop = linux.rootfsPropagation ? PROPAGATION_OPTIONS.get(linux.rootfsPropagation) : undefined
    // Before the rootfs bind, only slave or private: a shared parent makes pivot_root fail (EINVAL)
    // and an unbindable one the bind itself. The requested propagation goes on the new "/" after pivot_root.
    const early = prop !== undefined && (prop & (MS.SLAVE | MS.PRIVATE)) !== 0
    ops.push({ op: "rootPropagation", flags: early ? prop : MS.SLAVE | MS.REC })
    ops.push({ op: "rootfs", path: input.rootfs })
    ops.push(...mounts)
    ops.push(...deviceOps(input, isNew("user")))
  } else {
    // No mount namespace: nothing is mounted (it would land in the host's), but the process still
    // runs in root.path, by chroot as runc does.
    ops.push({ op: "rootfs", path: input.rootfs, bind: false })
  }
  // runtime-spec: prestart and createRuntime run in the runtime namespace, createContainer in ours,
  // all after the environment is made and before pivot_root (so createContainer's path is a host path).
  const hooks = spec.hooks ?? {}
  if ((hooks.prestart?.length ?? 0) + (hooks.createRuntime?.length ?? 0) > 0 || input.syncForHooks) ops.push({ op: "sync" })
  ops.push(...hookOps(hooks.createContainer, "create").map((h) => ({ ...h, cwdRootfs: true })))
  ops.push({ op: "execFifo", path: input.fifoPath })
  // --no-pivot keeps the host's mounts under the chroot: its full procfs/sysfs would let a user
  // namespace in the container mount a fresh, unmasked procfs. They go first (runc 1.1.5+).
  if (newMountNs) ops.push({ op: "pivotRoot", noPivot: input.noPivot ?? false, ...(input.noPivot ? { hideHostProcfs: true } : {}) })
  // runc makes a missing cwd (MkdirAll in the jail) before the rootfs may become read-only.
  if (newMountNs) ops.push({ op: "chdir", path: proc.cwd, mode: "create" })
  if (newMountNs && linux.rootfsPropagation) {
    const prop = PROPAGATION_OPTIONS.get(linux.rootfsPropagation)
    if (prop !== undefined) ops.push({ op: "rootPropagation", flags: prop })
  }
  // After pivot_root: the pty comes from the container's own devpts instance.
  if (proc.terminal) ops.push(consoleOp(proc, true))

  for (const [key, value] of Object.entries(linux.sysctl ?? {})) ops.push({ op: "sysctl", key: key.replaceAll(".", "/"), value })
  if (spec.hostname !== undefined) ops.push({ op: "hostname", name: spec.hostname })
  if (spec.domainname !== undefined) ops.push({ op: "domainname", name: spec.domainname })
  if (newMountNs) {
    for (const p of linux.readonlyPaths ?? []) ops.push({ op: "readonly", path: p })
    for (const p of linux.maskedPaths ?? []) ops.push({ op: "mask", path: p })
    for (const m of spec.mounts ?? []) if (m.type === "cgroup" && (m.options ?? []).includes("ro")) ops.push({ op: "readonly", path: m.destination })
    // A read-only /dev or tmpfs was mounted writable so that what goes in or under it (devices, links,
    // pts, shm, the console, a copy-up, nested mountpoints) could be made; it becomes read-only now, in
    // mount order (runc's finalizeRootfs).
    for (const m of spec.mounts ?? []) if (readonlyLater(m)) ops.push({ op: "remountReadonly", path: path.posix.normalize(m.destination) })
    if (spec.root?.readonly) ops.push({ op: "remountRootReadonly" })
  }
  if (isNew("network")) ops.push({ op: "loopbackUp" })
  ops.push({ op: "umask", mask: proc.user.umask ?? 0o022 })

  const { env, resolveExec } = programOf(proc, input.home)
  // The cwd is entered before the start barrier, after the masks (so it cannot sit under one), while
  // still privileged: a bad cwd fails create, as in runc; EACCES/EPERM is retried after the user switch.
  if (newMountNs) ops.push({ op: "chdir", path: proc.cwd, mode: "privileged" }, resolveExec, { op: "waitStart" })
  // Without a mount namespace, chroot into root.path (as runc does) once start has opened the fifo
  // (waitStart reopens it through /proc/self/fd, which the rootfs may not have); the program is then
  // looked up inside, so a missing one fails start instead of create.
  else ops.push({ op: "waitStart" }, { op: "pivotRoot", noPivot: true, chrootOnly: true }, resolveExec)
  ops.push(...schedulingOps(proc, linux.personality))
  ops.push({ op: "closeFds", from: 3 })
  const final = finalOps(proc, spec, env, input.preserveFds ?? 0, { privilegedChdir: !newMountNs })
  // startContainer: after start, in the container, right before execve: as the process's user, with
  // its capabilities, no_new_privs and seccomp filter (runc's standard_init_linux.go), never as the
  // privileged init.
  ops.push(...final.slice(0, -1), ...hookOps(hooks.startContainer, "start"), ...final.slice(-1))
  return { ops: hoistListener(ops) }
}

/**
 * A filter with a listener goes in right before the start barrier, as runc installs every filter
 * before its exec.fifo: the listener fd must reach the manager of `create`, which is gone by
 * `start` in the CLI. The init's own calls after it (the barrier's sendmsg/openat/write, the user
 * and capability changes, execve) then pass through the filter: a profile that notifies them is
 * answered by the listener, which has the fd by then (runc has the same window).
 */
function hoistListener(ops: PlanOp[]): PlanOp[] {
  const at = ops.findIndex((o) => o.op === "seccomp" && o.listener === true)
  const barrier = ops.findIndex((o) => o.op === "waitStart")
  if (at < 0 || barrier < 0 || at < barrier) return ops
  const rest = ops.filter((_, i) => i !== at)
  return [...rest.slice(0, barrier), ops[at] as PlanOp, ...rest.slice(barrier)]
}

/** The program's environment (HOME from /etc/passwd when missing) and the op that finds it on PATH. */
export function programOf(proc: NonNullable<Spec["process"]>, home: string | undefined): { env: string[]; resolveExec: PlanOp } {
  const env = [...(proc.env ?? [])]
  if (!env.some((e) => e.startsWith("HOME="))) env.push(`HOME=${home ?? "/"}`)
  const envPath = env.find((e) => e.startsWith("PATH="))?.slice(5)
  return { env, resolveExec: { op: "resolveExec", program: proc.args[0] ?? "", searchPath: envPath ?? DEFAULT_PATH } }
}

/**
 * What every process (the init, an exec'd one) does last: its seccomp filter, identity,
 * capabilities, cwd, preserved fds, no_new_privs, and the execve.
 */
export function finalOps(
  proc: NonNullable<Spec["process"]>,
  spec: Spec,
  env: readonly string[],
  preserveFds: number,
  opts: { readonly privilegedChdir?: boolean } = {},
): PlanOp[] {
  // The label first: its openat/write on /proc must not meet the filter.
  const ops: PlanOp[] = [...lsmOps(proc, lsmHost())]
  const seccomp = seccompOp(spec)
  // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it as runc does
  // (standard_init_linux.go), before the capabilities and the user change, so the
  // filter must allow what those steps call (setgroups, setres[ug]id, prctl, capset,
  // chdir, execve). With no_new_privs it goes last, so that only execve is filtered.
  if (seccomp && !proc.noNewPrivileges) ops.push(seccomp)
  const caps = proc.capabilities
  if (caps) ops.push({ op: "capsBounding", keep: caps.bounding ?? [] })
  if (opts.privilegedChdir !== false) ops.push({ op: "chdir", path: proc.cwd, mode: "privileged" })
  // Before the switch, while we may: the process's user gets its terminal or pipes (runc's setupUser).
  ops.push({ op: "chownStdio", uid: proc.user.uid })
  ops.push({ op: "user", uid: proc.user.uid, gid: proc.user.gid, additionalGids: proc.user.additionalGids ?? [] })
  if (caps)
    ops.push({
      op: "caps",
      effective: caps.effective ?? [],
      permitted: caps.permitted ?? [],
      inheritable: caps.inheritable ?? [],
      // The kernel raises an ambient cap only if it is permitted and inheritable; runc warns and skips
      // the others (an empty inheritable set is the default since CVE-2022-29162).
      ambient: (caps.ambient ?? []).filter((c) => caps.inheritable?.includes(c) && caps.permitted?.includes(c)),
    })
  ops.push({ op: "chdir", path: proc.cwd, mode: "final" })
  if (preserveFds) ops.push({ op: "preserveFds", count: preserveFds })
  if (proc.noNewPrivileges) ops.push({ op: "noNewPrivs" })
  if (seccomp && proc.noNewPrivileges) ops.push(seccomp)
  ops.push({ op: "exec", args: proc.args, env })
  return ops
}

/** The seccomp op of linux.seccomp, compiled once per distinct profile. */
function seccompOp(spec: Spec): PlanOp | undefined {
  const profile = spec.linux?.seccomp
  if (!profile) return undefined
  const compiled = compileSeccompCached(profile)
  if (compiled._tag === "Failure") throw new Error(`buildPlan: ${compiled.failure.message} (parseSpec checks it)`)
  const { filter, flags, skipped, notify } = compiled.success
  // The kernel refuses TSYNC with NEW_LISTENER unless TSYNC_ESRCH says how to report a thread
  // that could not sync (the init has one thread: nothing to report).
  const TSYNC = 1, TSYNC_ESRCH = 16
  return { op: "seccomp", filter, flags: notify && flags & TSYNC ? flags | TSYNC_ESRCH : flags, skipped, ...(notify ? { listener: true } : {}) }
}

const IOPRIO_CLASS = { IOPRIO_CLASS_RT: 1, IOPRIO_CLASS_BE: 2, IOPRIO_CLASS_IDLE: 3 } as const
const SCHED_POLICY = { SCHED_OTHER: 0, SCHED_FIFO: 1, SCHED_RR: 2, SCHED_BATCH: 3, SCHED_ISO: 4, SCHED_IDLE: 5, SCHED_DEADLINE: 6 } as const
/** sched_attr.sched_flags by the names the runtime-spec uses. */
export const SCHED_FLAGS: ReadonlyMap<string, number> = new Map([
  ["SCHED_FLAG_RESET_ON_FORK", 0x01],
  ["SCHED_FLAG_RECLAIM", 0x02],
  ["SCHED_FLAG_DL_OVERRUN", 0x04],
  ["SCHED_FLAG_KEEP_POLICY", 0x08],
  ["SCHED_FLAG_KEEP_PARAMS", 0x10],
  ["SCHED_FLAG_UTIL_CLAMP_MIN", 0x20],
  ["SCHED_FLAG_UTIL_CLAMP_MAX", 0x40],
])
const PER_LINUX32 = 0x0008

/** personality, I/O priority and CPU scheduling of a process, while it is still privileged. */
export function schedulingOps(proc: NonNullable<Spec["process"]>, personality: NonNullable<Spec["linux"]>["personality"]): PlanOp[] {
  const ops: PlanOp[] = []
  if (personality) ops.push({ op: "personality", persona: personality.domain === "LINUX32" ? PER_LINUX32 : 0 })
  if (proc.ioPriority) ops.push({ op: "ioPriority", value: (IOPRIO_CLASS[proc.ioPriority.class] << 13) | proc.ioPriority.priority })
  const s = proc.scheduler
  if (s)
    ops.push({
      op: "scheduler",
      policy: SCHED_POLICY[s.policy],
      nice: s.nice ?? 0,
      priority: s.priority ?? 0,
      flags: (s.flags ?? []).reduce((f, n) => f | (SCHED_FLAGS.get(n) ?? 0), 0),
      runtime: s.runtime ?? 0,
      deadline: s.deadline ?? 0,
      period: s.period ?? 0,
    })
  return ops
}

/** The terminal op of a process (`bindConsole`: the init's pty also becomes /dev/console). */
export const consoleOp = (proc: NonNullable<Spec["process"]>, bindConsole: boolean): PlanOp => ({
  op: "console",
  rows: proc.consoleSize?.height ?? 0,
  columns: proc.consoleSize?.width ?? 0,
  bindConsole,
})

type HookSpec = NonNullable<Spec["hooks"]>[string][number]
const hookOps = (list: readonly HookSpec[] | undefined, state: "create" | "start"): PlanOp[] =>
  (list ?? []).map((h) => ({ op: "hook", path: h.path, args: h.args ?? [h.path], env: h.env ?? [], timeoutSec: h.timeout ?? 0, state }))

/** oom_score_adj and rlimits of a process: set by the helper before the clone, inherited across it. */
export function limitOps(proc: NonNullable<Spec["process"]>): PlanOp[] {
  const ops: PlanOp[] = []
  if (proc.oomScoreAdj !== undefined) ops.push({ op: "oomScoreAdj", value: proc.oomScoreAdj })
  for (const r of proc.rlimits ?? [])
    ops.push({ op: "rlimit", type: r.type, resource: RLIMITS.get(r.type) ?? -1, soft: rlim(r.soft), hard: rlim(r.hard) })
  return ops
}

const rlim = (v: number): bigint => (v >= 2 ** 64 - 1 ? RLIM_INFINITY : BigInt(Math.trunc(v)))

/** A read-only /dev or tmpfs: mounted writable, remounted read-only at the end (runc's mountPropagate). */
const readonlyLater = (m: MountSpec): boolean =>
  (m.type === "tmpfs" || path.posix.normalize(m.destination) === "/dev") && (parseMountOptions(m.options ?? []).flags & MS.RDONLY) !== 0

/** The mounts' ops; with `sources`, each bind's source becomes a `mountSource` op pushed there. */
function mountOps(input: PlanInput, isNew: (t: NamespaceType) => boolean, sources?: PlanOp[]): PlanOp[] {
  const ops: PlanOp[] = []
  const take = sources
    ? (p: string, recursive: boolean, idmap?: { readonly kind: "top" | "recursive"; readonly uidMap: string; readonly gidMap: string }) => {
        sources.push({ op: "mountSource", path: p, recursive, ...(idmap ? { idmap: idmap.kind, uidMap: idmap.uidMap, gidMap: idmap.gidMap } : {}) })
        return sources.length
      }
    : undefined
  for (const m of input.spec.mounts ?? []) ops.push(...mountOne(m, input, isNew, take))
  return ops
}

function mountOne(
  m: MountSpec,
  input: PlanInput,
  isNew: (t: NamespaceType) => boolean,
  take?: (source: string, recursive: boolean, idmap?: { readonly kind: "top" | "recursive"; readonly uidMap: string; readonly gidMap: string }) => number,
): PlanOp[] {
  const parsed = parseMountOptions(m.options ?? [])
  // /dev and a tmpfs stay writable until populated (`remountReadonly` at the end), as in runc.
  const opts = readonlyLater(m) ? { ...parsed, flags: parsed.flags & ~MS.RDONLY } : parsed
  const target = inRoot(m.destination)
  const recursive = {
    ...(opts.recursiveSet || opts.recursiveClear ? { recursiveSet: opts.recursiveSet, recursiveClear: opts.recursiveClear } : {}),
    ...(m.type === "proc" || m.type === "sysfs" ? { plainDir: true } : {}),
  }
  const isBind = m.type === "bind" || (opts.flags & MS.BIND) !== 0
  if (isBind) {
    const source = path.resolve(input.bundleDir, m.source ?? "")
    const st = fs.statSync(source, { throwIfNoEntry: false })
    const remount = opts.flags & BIND_REMOUNTABLE
    const kind = idMapOf(m)
    const linux = input.spec.linux ?? {}
    // The container's own namespace when the maps are its own; otherwise the helper makes one for the mount.
    const own = sameMaps(m.uidMappings, linux.uidMappings) && sameMaps(m.gidMappings, linux.gidMappings)
    const tree = take?.(source, (opts.flags & MS.REC) !== 0, kind ? { kind, uidMap: own ? "" : mapText(m.uidMappings), gidMap: own ? "" : mapText(m.gidMappings) } : undefined)
    return [
      {
        op: "mount",
        source,
        target,
        fstype: "",
        data: "",
        flags: MS.BIND | (opts.flags & MS.REC),
        propagation: opts.propagation,
        create: st && !st.isDirectory() ? "file" : "dir",
        remountFlags: remount,
        ...recursive,
        ...(tree ? { sourceTree: tree } : {}),
      },
    ]
  }
  if (m.type === "cgroup") return cgroupMount(m, input, opts.flags)
  if (m.type === "sysfs" && isNew("user") && !isNew("network")) {
    // A user namespace that does not own the net namespace may not mount sysfs: show the host's, read-only.
    return [
      { op: "mount", source: "/sys", target, fstype: "", data: "", flags: MS.BIND | MS.REC, propagation: MS.SLAVE | MS.REC, create: "dir", remountFlags: MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC, ...recursive },
    ]
  }
  // tmpcopyup (a read-only tmpfs is made read-only once everything is mounted).
  const copyUp = opts.copyUp && m.type === "tmpfs"
  return [
    {
      op: "mount",
      source: m.source ?? m.type ?? "none",
      target,
      fstype: m.type ?? "none",
      data: mountLabelData(opts.data.join(","), m.type, input.spec.linux?.mountLabel, input.spec.linux?.mountLabel !== undefined && lsmHost().selinux),
      flags: opts.flags,
      propagation: opts.propagation,
      create: "dir",
      remountFlags: 0,
      ...recursive,
      ...(copyUp ? { copyUp: true } : {}),
      // runc chmods a tmpfs to the mode of the directory it covers (a tmpfs over /etc stays 0755, not 1777).
      ...(m.type === "tmpfs" ? { keepMode: true } : {}),
    },
  ]
}

/**
 * A "cgroup" mount on cgroup v1/hybrid hosts: a tmpfs holding a bind of the
 * container's own cgroup in each hierarchy (what runc does on v1), read-only
 * when asked (remounted after pivot_root by a `readonly` op).
 */
function cgroupMount(m: MountSpec, input: PlanInput, flags: number): PlanOp[] {
  const base = inRoot(m.destination)
  const ro = (flags & MS.RDONLY) !== 0
  // Pure cgroup v2 (a bind named ""): the container's one cgroup directory IS its /sys/fs/cgroup (runc, no cgroupns).
  const whole = input.cgroupBinds.find((b) => b.name === "")
  if (whole)
    return [{ op: "mount", source: whole.hostPath, target: base, fstype: "", data: "", flags: MS.BIND, propagation: 0, create: "dir", remountFlags: MS.NOSUID | MS.NODEV | MS.NOEXEC | (ro ? MS.RDONLY : 0) }]
  const ops: PlanOp[] = [
    { op: "mount", source: "tmpfs", target: base, fstype: "tmpfs", data: "mode=755", flags: (flags & ~MS.RDONLY) | MS.NOSUID | MS.NODEV | MS.NOEXEC, propagation: 0, create: "dir", remountFlags: 0 },
  ]
  for (const b of input.cgroupBinds) {
    ops.push({
      op: "mount",
      source: b.hostPath,
      target: `${base}/${b.name}`,
      fstype: "",
      data: "",
      flags: MS.BIND,
      propagation: 0,
      create: "dir",
      remountFlags: MS.NOSUID | MS.NODEV | MS.NOEXEC | (ro ? MS.RDONLY : 0),
    })
    for (const ctrl of b.name.split(",")) if (ctrl !== b.name) ops.push({ op: "symlink", path: `${base}/${ctrl}`, target: b.name })
  }
  return ops
}

/** Device nodes and /dev symlinks, when /dev is a fresh (non-bind) mount; in a user namespace, binds of the host's. */
function deviceOps(input: PlanInput, userNs: boolean): PlanOp[] {
  const devMount = (input.spec.mounts ?? []).find((m) => path.posix.normalize(m.destination) === "/dev")
  const freshDev = devMount !== undefined && devMount.type !== "bind" && !(devMount.options ?? []).some((o) => o === "bind" || o === "rbind")
  const devices = [
    ...(freshDev ? DEFAULT_DEVICES.map((d) => ({ ...d, type: "c" as const, fileMode: 0o666, uid: 0, gid: 0 })) : []),
    ...(input.spec.linux?.devices ?? []),
  ]
  const ops: PlanOp[] = []
  const seen = new Set<string>()
  for (const d of devices) {
    if (seen.has(d.path)) continue
    seen.add(d.path)
    if (userNs || d.type === "u") {
      // mknod is refused in a user namespace: bind the host's node instead (runc does the same).
      ops.push({ op: "mount", source: d.path, target: inRoot(d.path), fstype: "", data: "", flags: MS.BIND, propagation: 0, create: "file", remountFlags: 0 })
    } else {
      ops.push({
        op: "mknod",
        path: inRoot(d.path),
        kind: d.type,
        perm: (d.fileMode ?? 0o666) & 0o7777,
        major: d.major ?? 0,
        minor: d.minor ?? 0,
        uid: d.uid ?? 0,
        gid: d.gid ?? 0,
      })
    }
  }
  if (freshDev) for (const [link, target] of DEV_SYMLINKS) ops.push({ op: "symlink", path: inRoot(link), target })
  return ops
}

/** The capability bit mask of a list of names (names were validated by parseSpec). */
export const capMask = (names: readonly string[]): bigint =>
  names.reduce((m, n) => m | (1n << BigInt(CAPABILITIES.get(n) ?? 0)), 0n)
