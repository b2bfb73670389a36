/**
 * Checkpoint and restore of a container: what runc's Checkpoint and Restore
 * (libcontainer/criu_linux.go) decide around CRIU, as Effects over the services.
 * The machine runs them (`checkpointing`, `restoring`); the Criu service only
 * speaks to CRIU.
 *
 * - Mounts: every bind the init plan made from a host path (spec binds, the
 *   container's cgroup dirs under /sys/fs/cgroup, device binds in a user
 *   namespace) is outside what CRIU can dump: it is declared external, keyed by
 *   its mountpoint in the container, and on restore bound again from the
 *   source the restoring container's own plan names (its cgroup dirs differ
 *   under a new id). Masks bind the container's own /dev/null (on its /dev
 *   tmpfs) and /dev, /proc, /sys … live in its mount namespace: CRIU dumps them.
 * - Cgroups: CRIU freezes through the container's freezer; on restore CRIU
 *   itself joins the new container's cgroups first and maps the dumped cgroup
 *   roots onto them (runc's criuApplyCgroups).
 * - The restored init: forked by CRIU with CLONE_PARENT (rst_sibling), it is
 *   our child, held by a pidfd like any init, and its exit status is ours.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { fromSpec, loadBundle, validateId, type Bundle } from "../config/parse.ts"
import { checkResourcesOnHost, type HostFacts } from "../config/resources.ts"
import { buildPlan } from "../config/plan.ts"
import type { ContainerRecord } from "../state/record.ts"
import { StateStore } from "../state/store.ts"
import { cgroupBinds, Cgroups, type CgroupPaths } from "./cgroups.ts"
import { rootlessCriuProblem } from "./rootless.ts"
import { criuService, type CriuNotification, type ExtMount, type ManageCgroupsMode, type PageServer } from "./criu.ts"
import { checkPageServer, checkStatusFd, closeQuietly, emptyNsMask, requireFeatures, signalStatusFd } from "./checkpoint-options.ts"
import { criuConfigFile, inRootfs, prepareRestoreMountpoints, type Bound } from "./criu-mounts.ts"
import { closeFds } from "./criu-swrk.ts"
import { ConfigError, CriuFailed, type ContainerError } from "./errors.ts"
import { runHooks } from "./hooks.ts"
import { Kernel } from "./kernel.ts"
import { readStartTime, toSyscallError } from "./kernel-live.ts"
import { consoleHandler, hookState, provision, type Live, type Services } from "./lifecycle.ts"

/** runc's checkpoint options (the ones implemented so far). */
export interface CheckpointOptions {
  /** Where the images go (created if needed; a container may be checkpointed into it again). */
  readonly imagePath: string
  /** Where CRIU writes dump.log and its work files (default: imagePath). */
  readonly workPath?: string
  /** Dump, and keep the container running. */
  readonly leaveRunning?: boolean
  readonly tcpEstablished?: boolean
  readonly extUnixSk?: boolean
  readonly shellJob?: boolean
  readonly fileLocks?: boolean
  readonly manageCgroupsMode?: ManageCgroupsMode
  /** A pre-dump: memory only, into imagePath; the container goes on running and its state is unchanged. */
  readonly preDump?: boolean
  /** The previous pre-dump's image directory, relative to imagePath (runc's --parent-path): only pages changed since are dumped. */
  readonly parentPath?: string
  /** Send the pages to a `criu page-server` there instead of writing them (with lazyPages: serve them there). */
  readonly pageServer?: PageServer
  /**
   * Post-copy migration: the pages stay in memory and are served (at pageServer) to a `criu lazy-pages`
   * daemon beside the restore, which faults them in through userfaultfd. The checkpoint returns once
   * every page has been fetched.
   */
  readonly lazyPages?: boolean
  /** With lazyPages: a writable fd that gets one \0 byte, then is closed, once the pages can be fetched (runc's --status-fd). */
  readonly statusFd?: number
  /** Namespaces whose contents are not dumped, and come back empty on restore (runc's --empty-ns; "network" only). */
  readonly emptyNamespaces?: readonly string[]
  /** With parentPath: punch the parent's pages this dump supersedes out of its files (runc's --auto-dedup). */
  readonly autoDedup?: boolean
}

/** runc's restore options (the ones implemented so far), and where the container comes from. */
export interface RestoreOptions {
  readonly root: string
  readonly id: string
  readonly bundle?: string
  readonly config?: unknown
  readonly imagePath: string
  readonly workPath?: string
  readonly tcpEstablished?: boolean
  readonly extUnixSk?: boolean
  readonly shellJob?: boolean
  readonly fileLocks?: boolean
  readonly manageCgroupsMode?: ManageCgroupsMode
  /** Namespaces the checkpoint left empty (it must name the same ones); "network" only. */
  readonly emptyNamespaces?: readonly string[]
  /** Punch each page out of the images once it is restored (runc's --auto-dedup): the images shrink as the restore goes. */
  readonly autoDedup?: boolean
  /** Fault the pages in from a `criu lazy-pages` daemon running in workPath (or imagePath) instead of reading them. */
  readonly lazyPages?: boolean
  /**
   * For a container with a terminal: CRIU makes a new pty master (orphan-pts-master) and it goes to
   * this unix socket (runc's --console-socket protocol); without one `console()` holds it.
   */
  readonly consoleSocket?: string
  /** CRIU's stdio, which take the place of the dumped stdio pipes and host files (default: ours, as create). */
  readonly stdio?: readonly [number, number, number]
}

/**
 * Mountpoint in the container → host source, for every bind of a host path in the container's plan,
 * the cgroup binds made by create's rule for this host's `layout` (cgroups.ts cgroupBinds).
 */
export function hostBinds(spec: ContainerRecord["spec"], rootfs: string, bundleDir: string, paths: CgroupPaths, layout: HostFacts["layout"]): Map<string, string> {
  const plan = buildPlan({ spec, rootfs, bundleDir, fifoPath: "/nonexistent/exec.fifo", cgroupBinds: cgroupBinds(paths, layout) })
  const binds = new Map<string, string>()
  // The host binds so far: a later destination below one is looked up in its source.
  const bound: Bound[] = []
  for (const op of plan.ops) {
    // MS_BIND = 4096; the plan's targets are relative to the rootfs.
    if (op.op !== "mount" || (op.flags & 4096) === 0) continue
    // Keyed by where the init's mount landed, the destination resolved inside the rootfs (a symlink
    // followed): that is the mountpoint CRIU finds in the mountinfo (runc's securejoin).
    const dest = inRootfs(rootfs, path.posix.join("/", op.target), bound)
    if (!path.isAbsolute(op.source)) continue
    bound.push({ dest, source: op.source })
    binds.set(dest, op.source)
  }
  return binds
}

/** CRIU's names of the namespace types (runc's configs.NsName). */
const CRIU_NS: Record<string, string> = { network: "net", pid: "pid", ipc: "ipc", uts: "uts", mount: "mnt", user: "user", cgroup: "cgroup", time: "time" }
/** runc's key for a joined namespace CRIU leaves out of the images: "extRootNetNS", "extRootPidNS". */
const extKey = (type: "network" | "pid") => (type === "network" ? "extRootNetNS" : "extRootPidNS")
/** Namespaces the config joins by path. */
const joined = (spec: ContainerRecord["spec"]) => (spec.linux?.namespaces ?? []).flatMap((n) => (n.path ? [{ type: n.type, path: n.path }] : []))

/** The container's CRIU configuration file, for both dump and restore (runc's org.criu.config annotation). */
const configFileOf = (spec: ContainerRecord["spec"]): { configFile?: string } => {
  const file = criuConfigFile(spec.annotations)
  return file === undefined ? {} : { configFile: file }
}

/** The hierarchy directory holding the freezer, if the container has one (v1). */
const freezerDir = (paths: CgroupPaths): string | undefined =>
  Object.entries(paths).find(([mp]) => path.basename(mp).split(",").includes("freezer"))?.[1]

/**
 * Where the init's stdio pointed at dump time (runc's descriptors.json): "pipe:[…]" for a pipe, and
 * for a file the container's mount namespace does not show — the host's /dev/null conmon gives,
 * a log file — CRIU's external id "file[mnt_id:inode]" (hex), which it is told to leave out of the
 * images. A restore hands its own stdio in place of both (inherit_fd). runc instead reopens a host
 * /dev/null inside the container at create; this also covers other host files.
 */
const DESCRIPTORS = "descriptors.json"

/** Mount ids of the mounts in the mount namespace of `pid`. */
const mountIds = (pid: number): Set<number> =>
  new Set(
    fs
      .readFileSync(`/proc/${pid}/mountinfo`, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => Number(l.split(" ")[0])),
  )

export function stdioDescriptors(pid: number): string[] {
  const visible = mountIds(pid)
  return [0, 1, 2].map((fd) => {
    try {
      const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`)
      if (!link.startsWith("/")) return link
      const mnt = Number(/^mnt_id:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"))?.[1] ?? NaN)
      if (visible.has(mnt)) return link
      const ino = fs.statSync(`/proc/${pid}/fd/${fd}`, { bigint: true }).ino
      return `file[${mnt.toString(16)}:${ino.toString(16)}]`
    } catch {
      return ""
    }
  })
}

/** The restore's stdio (CRIU's own 0–2) in place of the dumped pipes and external files. */
function inheritedStdio(imagePath: string): { key: string; fd: number }[] {
  let fds: unknown
  try {
    fds = JSON.parse(fs.readFileSync(path.join(imagePath, DESCRIPTORS), "utf8"))
  } catch {
    return []
  }
  const wanted = (key: string) => key.startsWith("file[") || key.startsWith("pipe:")
  return Array.isArray(fds) ? fds.flatMap((key, fd) => (typeof key === "string" && wanted(key) && fd < 3 ? [{ key, fd }] : [])) : []
}

/**
 * Notifications CRIU sends during a dump. status-ready (a lazy dump's page server is listening) is
 * told to the status fd, as runc does; the rest are logged: network-lock/unlock need no action (we
 * configure no host-side network to detach), and the state is recorded once CRIU answers.
 */
const onDumpNotify = (takeStatusFd: () => number | undefined) => (n: CriuNotification) => {
  const fd = n.script === "status-ready" ? takeStatusFd() : undefined
  return Effect.andThen(closeFds(n), fd !== undefined ? signalStatusFd(fd) : Effect.logDebug("criu dump", n.script))
}

/** checkpoint: dump the container's tree; without leaveRunning CRIU kills it and the init is released. */
export const checkpoint = (root: string, live: Live, o: CheckpointOptions): Effect.Effect<Live, ContainerError, Services> =>
  Effect.gen(function* () {
    // Before anything: a rootless manager is refused with the reason (effects/rootless.ts).
    const rootless = rootlessCriuProblem()
    if (rootless) return yield* new CriuFailed({ action: o.preDump ? "pre-dump" : "dump", reason: rootless })
    const criu = yield* criuService
    const kernel = yield* Kernel
    const store = yield* StateStore
    const cgroups = yield* Cgroups
    const { record, init } = live
    const action = o.preDump ? "pre-dump" : "dump"
    if (!init) return yield* new CriuFailed({ action, reason: `container ${record.id} has no init to dump` })
    // Options first: a bad one changes nothing (the status fd is still the caller's).
    const emptyNs = yield* emptyNsMask(o.emptyNamespaces)
    const pageServer = o.pageServer ? yield* checkPageServer(o.pageServer) : undefined
    let statusFd = o.statusFd !== undefined ? yield* checkStatusFd(o.statusFd, o.lazyPages ?? false) : undefined
    const needs = { memTrack: (o.preDump ?? false) || o.parentPath !== undefined, lazyPages: o.lazyPages ?? false }
    if (needs.memTrack || needs.lazyPages) yield* requireFeatures(action, yield* criu.features, needs)
    const binds = hostBinds(record.spec, record.rootfs, record.bundle, record.cgroups, (yield* cgroups.facts()).layout)
    const freeze = freezerDir(record.cgroups)
    const imagePath = path.resolve(o.imagePath)
    const descriptors = stdioDescriptors(init.pid)
    // A joined net or pid namespace is not the container's to dump: CRIU records it by inode, and a
    // restore hands it back (runc's handleCheckpointingExternalNamespaces).
    const nsExternal = yield* Effect.forEach(
      joined(record.spec).filter((n) => n.type === "network" || n.type === "pid"),
      (n) =>
        Effect.try({
          try: () => `${CRIU_NS[n.type]}[${fs.statSync(n.path).ino}]:${extKey(n.type as "network" | "pid")}`,
          catch: toSyscallError("stat", n.path),
        }),
    )
    yield* Effect.try({
      try: () => {
        fs.mkdirSync(imagePath, { recursive: true, mode: 0o700 })
        // A pre-dump holds memory only: what a restore needs comes with the final dump (as runc).
        if (!o.preDump) fs.writeFileSync(path.join(imagePath, DESCRIPTORS), JSON.stringify(descriptors), { mode: 0o600 })
      },
      catch: toSyscallError("write", path.join(imagePath, DESCRIPTORS)),
    })
    // CRIU polls a cgroup that is still FREEZING every 100 ms (its first look nearly always is); our
    // freeze polls every 1–10 ms, so the tree is frozen first and CRIU finds it so. CRIU leaves a
    // cgroup as it found it: thawed again below (a paused container stays frozen).
    const preFreeze = freeze !== undefined && record.status !== "paused"
    const thaw = cgroups.freeze(record.cgroups, false)
    const dump = Effect.andThen(
      preFreeze ? cgroups.freeze(record.cgroups, true) : Effect.void,
      criu.dump({
        pid: init.pid,
        imagePath,
        ...(o.workPath ? { workPath: path.resolve(o.workPath) } : {}),
        root: record.rootfs,
        leaveRunning: o.leaveRunning ?? false,
        tcpEstablished: o.tcpEstablished ?? false,
        extUnixSk: o.extUnixSk ?? false,
        shellJob: o.shellJob ?? false,
        fileLocks: o.fileLocks ?? false,
        ...(o.manageCgroupsMode ? { manageCgroupsMode: o.manageCgroupsMode } : {}),
        extMounts: o.preDump ? [] : [...binds.keys()].map((mp): ExtMount => ({ key: mp, val: mp })),
        ...(freeze ? { freezeCgroup: freeze } : {}),
        external: [...new Set(descriptors.filter((d) => d.startsWith("file["))), ...nsExternal],
        preDump: o.preDump ?? false,
        ...(o.parentPath ? { parentImg: o.parentPath } : {}),
        ...(pageServer ? { pageServer } : {}),
        lazyPages: o.lazyPages ?? false,
        autoDedup: o.autoDedup ?? false,
        emptyNs,
        ...configFileOf(record.spec),
        onNotify: (n) =>
          Effect.andThen(
            onDumpNotify(() => {
              const fd = statusFd
              statusFd = undefined
              return fd
            })(n),
            // runc's post-dump marker: the images are complete and CRIU is about to kill the tree, so
            // the record says so now; a runtime that dies before CRIU answers leaves it checkpointed.
            n.script === "post-dump" && !o.preDump && !o.leaveRunning
              ? store.write(root, { ...record, checkpoint: { imagePath, at: new Date().toISOString() } })
              : Effect.void,
          ),
      }),
    ).pipe(
      Effect.onError(() => (preFreeze ? thaw.pipe(Effect.ignore) : Effect.void)),
      // Whoever waits on the status fd learns of a failure by its end (runc closes it too).
      Effect.ensuring(Effect.sync(() => statusFd !== undefined && closeQuietly(statusFd))),
    )
    yield* store.withLock(root, record.id, dump)
    if (o.preDump) {
      if (preFreeze) yield* thaw
      return live
    }
    const checkpointed = { imagePath, at: new Date().toISOString() }
    if (o.leaveRunning) {
      if (preFreeze) yield* thaw
      const next = { ...record, checkpoint: checkpointed }
      yield* store.write(root, next)
      return { ...live, record: next }
    }
    // CRIU killed the tree once the images were written. The cgroup is left as CRIU found it, frozen,
    // and a frozen task takes no SIGKILL: thaw it so the kill lands.
    if (freeze !== undefined) yield* thaw
    // Collect the init and drop our hold on it.
    const exit = yield* kernel.awaitExit(init)
    yield* kernel.release(init)
    const next: ContainerRecord = { ...record, status: "stopped", checkpoint: checkpointed, ...(exit ? { exit } : {}) }
    yield* store.write(root, next)
    return { record: next, init: undefined }
  })

const bundleOf = (o: RestoreOptions): Effect.Effect<Bundle, ContainerError> =>
  o.config !== undefined ? fromSpec(o.config, path.resolve(o.bundle ?? ".")) : loadBundle(o.bundle ?? ".")

/** restore: a new container (same or new id) whose init is the restored tree's root, running. */
export const restore = (o: RestoreOptions): Effect.Effect<Live, ContainerError, Services> =>
  Effect.gen(function* () {
    const rootless = rootlessCriuProblem()
    if (rootless) return yield* new CriuFailed({ action: "restore", reason: rootless })
    const criu = yield* criuService
    const store = yield* StateStore
    const cgroups = yield* Cgroups
    const kernel = yield* Kernel
    // No CRIU (or too old) fails inside criu.restore below, on the same connection that restores
    // (one CRIU process, not two); what was claimed by then is released like any failed restore.
    cgroups.prime()
    const id = yield* validateId(o.id)
    const bundle = yield* bundleOf(o)
    const spec = bundle.spec
    const paths = yield* cgroups.paths(spec.linux?.cgroupsPath, id)
    const facts = yield* cgroups.facts()
    const problem = checkResourcesOnHost(spec.linux?.resources, facts)
    if (problem) return yield* new ConfigError(problem)
    const imagePath = path.resolve(o.imagePath)
    const emptyNs = yield* emptyNsMask(o.emptyNamespaces)
    yield* store.claim(o.root, id)
    const undoClaim = store.remove(o.root, id).pipe(Effect.ignore)
    let consoleFd: number | undefined
    let nsFds: number[] = []
    const closeConsole = Effect.sync(() => consoleFd !== undefined && fs.closeSync(consoleFd))

    const build = Effect.gen(function* () {
      // As create: the cgroups are recorded before they exist, so delete finds them after a crash.
      let record = yield* provision(o.root, id, bundle, spec, paths)
      const binds = hostBinds(spec, bundle.rootfs, bundle.dir, paths, facts.layout)
      // Joined net and pid namespaces go to CRIU as fds 4, 5, …; the others it joins by path (runc's handleRestoringNamespaces).
      const nsJoined = joined(spec)
      const external = nsJoined.filter((n) => n.type === "network" || n.type === "pid")
      // The mountpoints CRIU will look for in the rootfs and in the bind sources (runc's prepareCriuRestoreMounts).
      yield* prepareRestoreMountpoints(spec, bundle.rootfs, bundle.dir)
      nsFds = yield* Effect.forEach(external, (n) => Effect.try({ try: () => fs.openSync(n.path, "r"), catch: toSyscallError("open", n.path) }))
      const pid = yield* criu.restore({
        imagePath,
        ...(o.workPath ? { workPath: path.resolve(o.workPath) } : {}),
        root: bundle.rootfs,
        tcpEstablished: o.tcpEstablished ?? false,
        extUnixSk: o.extUnixSk ?? false,
        shellJob: o.shellJob ?? false,
        fileLocks: o.fileLocks ?? false,
        ...(o.manageCgroupsMode ? { manageCgroupsMode: o.manageCgroupsMode } : {}),
        emptyNs,
        autoDedup: o.autoDedup ?? false,
        lazyPages: o.lazyPages ?? false,
        ...configFileOf(spec),
        extMounts: [...binds].map(([mp, source]) => ({ key: mp, val: source })),
        // As create, our stdio by default. CRIU checks that each takes the place of one of its kind (a file
        // for a file: its mode, and its size unless it is O_APPEND; /dev/null for /dev/null).
        stdio: o.stdio ?? [0, 1, 2],
        inheritFds: [...inheritedStdio(imagePath), ...external.map((n, i) => ({ key: extKey(n.type as "network" | "pid"), fd: 4 + i }))],
        extraFds: nsFds,
        joinNs: nsJoined.filter((n) => n.type !== "network" && n.type !== "pid").map((n) => ({ ns: CRIU_NS[n.type] ?? n.type, nsFile: n.path })),
        // CRIU puts the restored tasks into its own cgroups, with the dumped roots mapped onto these.
        beforeRestore: (criuPid) => cgroups.join(paths, criuPid),
        onNotify: (n) => {
          switch (n.script) {
            case "setup-namespaces":
              // As runc: the runtime-namespace hooks run once the namespaces exist, before the tree resumes.
              return Effect.andThen(
                closeFds(n),
                Effect.andThen(runHooks(spec, "prestart", hookState(record, "creating", n.pid)), runHooks(spec, "createRuntime", hookState(record, "creating", n.pid))),
              )
            case "orphan-pts-master": {
              // The restored terminal's new master: to the console socket, or kept for console().
              const [master, ...rest] = n.fds
              rest.forEach((fd) => fs.closeSync(fd))
              return master === undefined ? Effect.void : consoleHandler(o.consoleSocket, (fd) => void (consoleFd = fd))(master)
            }
            default:
              return Effect.andThen(closeFds(n), Effect.logDebug("criu restore", n.script))
          }
        },
      })
      nsFds.forEach((fd) => fs.closeSync(fd))
      nsFds = []
      const startTime = readStartTime(pid)
      const init = startTime === undefined ? undefined : yield* kernel.attach(pid, startTime)
      if (!init) return yield* new CriuFailed({ action: "restore", reason: `restored init ${pid} is gone` })
      record = { ...record, status: "running", init: { pid, startTime: init.startTime } }
      yield* store.write(o.root, record).pipe(Effect.onError(() => kernel.signal(init, 9).pipe(Effect.andThen(kernel.awaitExit(init)), Effect.andThen(kernel.release(init)), Effect.ignore)))
      return { record, init, ...(consoleFd !== undefined ? { console: consoleFd } : {}) }
    })
    // A failed restore leaves nothing: CRIU kills what it restored; the cgroups and the claim go.
    const closeNs = Effect.sync(() => nsFds.forEach((fd) => fs.closeSync(fd)))
    return yield* build.pipe(Effect.onError(() => closeConsole.pipe(Effect.andThen(closeNs),Effect.andThen(cgroups.destroy(paths)), Effect.ignore, Effect.andThen(undoClaim))))
  })
