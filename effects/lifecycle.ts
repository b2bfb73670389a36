/**
 * What each lifecycle transition does, as Effects over the services. The
 * machine (machines/container-machine.ts) decides when they run; these only
 * do the work, and each releases what it took if it fails, in reverse order
 * (a failed create leaves no state dir, cgroup, process or mount behind).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Option } from "effect"
import { fromSpec, loadBundle, noNul, parseSpec, validateId, type Bundle } from "../config/parse.ts"
import { redactPlanOps } from "../config/redact.ts"
import { checkResourcesOnHost, type HostFacts } from "../config/resources.ts"
import { buildPlan } from "../config/plan.ts"
import { planLimitProblem, toWire } from "../config/plan-wire.ts"
import { addon } from "../native/addon.ts"
import type { ContainerRecord, RecordedStatus } from "../state/record.ts"
import { StateStore } from "../state/store.ts"
import { fifoPath } from "../state/files.ts"
import { needsFreezer, reconciledStatus, signalThaws } from "./reconcile.ts"
import { cgroupBinds, Cgroups, type CgroupPaths } from "./cgroups.ts"
import type { Spec } from "../config/spec.ts"
import { SystemdCgroups } from "./cgroups-systemd-live.ts"
import { CgroupError, ConfigError, ContainerExists, type InitFailed, SyscallError, type ContainerError } from "./errors.ts"
import { runHooks, runHooksLogged, runInProcess, type HookState, type InProcessHooks } from "./hooks.ts"
import { Kernel, type ExitStatus, type ProcessRef } from "./kernel.ts"
import { checkRootlessMappings, isRootless, rootlessCgroups, selfMapOnly, subIdRanges } from "./rootless.ts"
import { homeOf } from "./passwd.ts"
import { checkIntelRdtOnHost, joinRdt, removeRdt, resctrlRoot } from "./rdt.ts"
import { compileSeccompCached } from "../config/seccomp-compile.ts"
import { closeListener, containerProcessState, sendListener } from "./seccomp-notify.ts"

/** Where a container comes from: a bundle directory, or a config object (its relative paths relative to `bundle` or the cwd). */
export interface CreateOptions {
  readonly root: string
  readonly id: string
  readonly bundle?: string
  readonly config?: unknown
  /**
   * The init's stdin, stdout, stderr: host fds (default: ours, inherited), or "pipe" for Node streams
   * (Container's stdin/stdout/stderr). A terminal (process.terminal) takes their place.
   */
  readonly stdio?: readonly [number, number, number] | "pipe"
  /** MS_MOVE + chroot instead of pivot_root (runc's --no-pivot). */
  readonly noPivot?: boolean
  /** With process.terminal: a unix socket path the pty master is sent to (runc's --console-socket). */
  readonly consoleSocket?: string
  /** Bound on the console socket's connect and send (default 10 s, or XCONTAINER_CONSOLE_SOCKET_TIMEOUT_MS). */
  readonly consoleSocketTimeoutMs?: number
  /** Host fds the program gets at 3, 4, … (runc's --preserve-fds). */
  readonly preserveFds?: readonly number[]
  /** Added to process.env (LISTEN_FDS/LISTEN_PID for preserved socket-activation fds). */
  readonly extraEnv?: readonly string[]
  /** Effects run in this process at the createRuntime, poststart and poststop points. */
  readonly hooks?: InProcessHooks
  /**
   * Keep the seccomp listener of an SCMP_ACT_NOTIFY profile in this process (Live.seccompListener,
   * Container.notifications()), besides sending it to linux.seccomp.listenerPath if that is set.
   */
  readonly seccompNotify?: boolean
  /**
   * Who makes the container's cgroup (runc's --systemd-cgroup): "cgroupfs" (default) the directories
   * directly; "systemd" a transient scope over D-Bus, linux.cgroupsPath as "slice:prefix:name"
   * (effects/cgroups-systemd-live.ts; pure cgroup v2 hosts with systemd).
   */
  readonly cgroupDriver?: "cgroupfs" | "systemd"
  /**
   * runc's --rootless: true treats cgroups as a rootless manager does (unwritable hierarchies skipped,
   * limits there refused), false never; absent ("auto") is rootless when we are not root.
   */
  readonly rootless?: boolean
}

/** A container as the lifecycle sees it: its record and, while it lives, its init. */
export interface Live {
  readonly record: ContainerRecord
  readonly init: ProcessRef | undefined
  /** The master of the init's terminal, when it has one and no console socket took it. */
  readonly console?: number
  /** The in-process hooks given at create (this process only). */
  readonly hooks?: InProcessHooks
  /** The init's seccomp listener, with CreateOptions.seccompNotify (this process only). */
  readonly seccompListener?: number
}

/**
 * What to do with a terminal's master: send it to the console socket (runc's protocol: one
 * message, the name as data, the fd as SCM_RIGHTS) and close ours, or keep it for the caller.
 */
export const consoleHandler = (socketPath: string | undefined, keep: (fd: number) => void, timeoutMs?: number) => (master: number) =>
  Effect.try({
    try: () => {
      if (!socketPath) return keep(master)
      try {
        // Bounded: a listener that never accepts (its backlog full) or a peer whose buffer never drains
        // would otherwise hold create forever (issue 19: no wait on another party is unbounded).
        const sock = addon.connectUnix(socketPath, consoleSocketTimeoutMs(timeoutMs))
        try {
          addon.send(sock, new TextEncoder().encode("/dev/ptmx"), [master])
        } finally {
          fs.closeSync(sock)
        }
      } finally {
        fs.closeSync(master)
      }
    },
    catch: (e) => {
      const err = e as NodeJS.ErrnoException
      const code = err.code ?? String(e)
      const bound = consoleSocketTimeoutMs(timeoutMs)
      return new SyscallError({
        syscall: `${err.syscall ?? "send"} to the console socket`,
        errno: code === "EAGAIN" || code === "EWOULDBLOCK" ? `ETIMEDOUT: no answer within ${bound} ms (${code})` : code,
        path: socketPath,
      })
    },
  })

/** Default bound on the console socket's connect and send. */
export const CONSOLE_SOCKET_TIMEOUT_MS = 10_000

/**
 * The bound: the caller's, else XCONTAINER_CONSOLE_SOCKET_TIMEOUT_MS (read when used: the CLI is a
 * start-up snapshot, its module scope ran at build time), else 10 s.
 */
export function consoleSocketTimeoutMs(given?: number): number {
  if (given !== undefined && given > 0) return given
  const env = Number(process.env["XCONTAINER_CONSOLE_SOCKET_TIMEOUT_MS"])
  return Number.isInteger(env) && env > 0 ? env : CONSOLE_SOCKET_TIMEOUT_MS
}

export type Services = Kernel | Cgroups | StateStore

/**
 * The Cgroups service of a driver: the layer's own, or for "systemd" the SystemdCgroups service
 * (provided by the live layer; a layer without it refuses the driver by name).
 */
export const cgroupsFor = (driver: "cgroupfs" | "systemd" | undefined): Effect.Effect<Cgroups["Service"], CgroupError, Cgroups> =>
  driver === "systemd"
    ? Effect.flatMap(Effect.serviceOption(SystemdCgroups), (o) =>
        Option.isSome(o) ? Effect.succeed(o.value) : Effect.fail(new CgroupError({ op: "use driver", path: "systemd", reason: "this runtime's layer has no systemd cgroup driver" })),
      )
    : Effect.service(Cgroups)

/** The fds the child gets; "pipe" is resolved to pipes' fds by Container before it gets here. */
export const stdioFds = (stdio: readonly [number, number, number] | "pipe" | undefined): readonly [number, number, number] =>
  stdio === undefined || stdio === "pipe" ? [0, 1, 2] : stdio

const bundleOf = (o: CreateOptions): Effect.Effect<Bundle, ContainerError> =>
  o.config !== undefined ? fromSpec(o.config, path.resolve(o.bundle ?? ".")) : loadBundle(o.bundle ?? ".")

/** create: validate, claim the state dir, cgroups, the init at its start barrier. */
export const create = (o: CreateOptions): Effect.Effect<Live, ContainerError, Services> =>
  Effect.gen(function* () {
    const store = yield* StateStore
    const cgroups = yield* cgroupsFor(o.cgroupDriver)
    const kernel = yield* Kernel
    const id = yield* validateId(o.id)
    yield* noNul("consoleSocket", o.consoleSocket)
    const bundle = yield* bundleOf(o)
    // runc's factory Create: the config is validated, then the id checked, before any cgroup is looked
    // at: an existing container is ContainerExists whatever its cgroup looks like (a paused one's is
    // frozen, a systemd unit exists). The claim below still settles a race between two creates.
    // One record read, not a listing of the root: create stays flat with many containers. A record that
    // exists but does not parse is still a taken id.
    const taken = yield* store.read(o.root, id).pipe(
      Effect.as(true),
      Effect.catch((e) => Effect.succeed(e._tag !== "ContainerNotFound")),
    )
    if (taken) return yield* new ContainerExists({ id, root: o.root })
    // Extra env (socket activation) goes into the config's process, as runc does.
    const spec =
      o.extraEnv?.length && bundle.spec.process
        ? { ...bundle.spec, process: { ...bundle.spec.process, env: [...(bundle.spec.process.env ?? []), ...o.extraEnv] } }
        : bundle.spec
    const facts = yield* cgroups.facts()
    const rootless = isRootless(o.rootless)
    const rl = rootless ? yield* rootlessChecks(spec, bundle.rootfs) : undefined
    const all = yield* cgroups.paths(spec.linux?.cgroupsPath, id)
    const rc = rootless ? rootlessCgroups(all, spec, Object.keys(all).filter((mp) => facts.layout === "v2" || path.basename(mp) === "unified")) : undefined
    if (rc?.problem) return yield* new ConfigError(rc.problem)
    const paths = rc?.paths ?? all
    // Resources the host cannot honour are refused here, before anything exists (nothing half-applied).
    const problem = checkResourcesOnHost(spec.linux?.resources, facts) ?? notifyProblem(spec, o.seccompNotify === true)
    if (problem) return yield* new ConfigError(problem)
    const rdtProblem = checkIntelRdtOnHost(spec.linux?.intelRdt, resctrlRoot())
    if (rdtProblem) return yield* new ConfigError(rdtProblem)
    // Before anything exists: a /etc/passwd the runtime refuses to read leaves nothing behind.
    const home = spec.process ? yield* homeOf(bundle.rootfs, spec.process) : undefined
    // The claim first, as runc checks the id before the cgroup: an existing container is
    // ContainerExists, whatever its cgroup looks like (paused: frozen).
    yield* store.claim(o.root, id)
    const undoClaim = store.remove(o.root, id).pipe(Effect.ignore)
    yield* checkExistingCgroup(paths).pipe(Effect.tapError(() => undoClaim))

    const build = Effect.gen(function* () {
      // Rootless, device rules are not written (runc ignores the devices controller then): a user
      // cannot write them, and without CAP_MKNOD on the host no device node can be made anyway.
      let record = yield* provision(o.root, id, bundle, spec, paths, o.cgroupDriver, rootless && process.geteuid?.() !== 0 ? { devices: false } : undefined)
      const fifo = fifoPath(o.root, id)
      yield* kernel.mkfifo(fifo)
      // The init opens the fifo as the container's root: in a user namespace that is another host uid (runc does the same).
      const rootId = (maps: readonly { containerID: number; hostID: number; size: number }[] | undefined) =>
        maps?.find((m) => m.containerID === 0)?.hostID ?? 0
      yield* Effect.try({
        try: () => fs.chownSync(fifo, rootId(spec.linux?.uidMappings), rootId(spec.linux?.gidMappings)),
        catch: (e) => new SyscallError({ syscall: "chown", errno: (e as NodeJS.ErrnoException).code ?? String(e), path: fifo }),
      })
      const plan = buildPlan({
        spec,
        rootfs: bundle.rootfs,
        bundleDir: bundle.dir,
        fifoPath: fifo,
        cgroupBinds: cgroupBinds(paths, facts.layout),
        noPivot: o.noPivot ?? false,
        home,
        syncForHooks: o.hooks?.createRuntime !== undefined,
        preserveFds: o.preserveFds?.length ?? 0,
        ...(rl?.idMapTools ? { idMapTools: rl.idMapTools } : {}),
      })
      const tooBig = planLimitProblem(plan, spec)
      if (tooBig) return yield* new ConfigError(tooBig)
      // The plan is data: with --debug (or any Effect logger at Debug) it is logged before it runs.
      yield* Effect.logDebug("init plan", { id, ops: redactPlanOps(plan.ops) })
      let consoleFd: number | undefined
      let listenerFd: number | undefined
      const init = yield* kernel
        .spawnInit({
          onSeccomp: (p, fd) =>
            Effect.gen(function* () {
              const sc = spec.linux?.seccomp
              const keep = () => void (listenerFd = fd)
              // runc sends the state as "creating": the init has not reached its barrier yet.
              if (sc?.listenerPath)
                yield* sendListener(sc.listenerPath, fd, containerProcessState(hookState(record, "creating", p.pid), p.pid, sc.listenerMetadata)).pipe(
                  Effect.tapError(() => Effect.sync(() => fs.closeSync(fd))),
                )
              if (o.seccompNotify) keep()
              else fs.closeSync(fd)
            }),
          onConsole: consoleHandler(o.consoleSocket, (fd) => void (consoleFd = fd), o.consoleSocketTimeoutMs),
          plan: toWire(plan),
          stdio: stdioFds(o.stdio),
          extraFds: o.preserveFds ?? [],
          beforeGo: (p) =>
            Effect.gen(function* () {
              record = { ...record, init: { pid: p.pid, startTime: p.startTime } }
              yield* store.write(o.root, record).pipe(Effect.orDie)
              yield* cgroups.join(paths, p.pid)
              if (spec.linux?.intelRdt) yield* joinRdt(resctrlRoot() ?? "", spec.linux.intelRdt, id, p.pid)
            }),
          hookStates: (p) => ({
            create: JSON.stringify(hookState(record, "creating", p.pid)),
            start: JSON.stringify(hookState(record, "created", p.pid)),
          }),
          onSync: (p) =>
            Effect.all([
              runHooks(spec, "prestart", hookState(record, "creating", p.pid)),
              runHooks(spec, "createRuntime", hookState(record, "creating", p.pid)),
              runInProcess("createRuntime", o.hooks?.createRuntime, hookState(record, "creating", p.pid)),
            ]),
        })
        .pipe(Effect.catchTag("InitFailed", (e) => Effect.fail(idMapRefusal(spec, bundle.dir, e) ?? e)))
      record = { ...record, status: "created" }
      yield* store.write(o.root, record).pipe(
        Effect.onError(() => kernel.signal(init, 9).pipe(Effect.andThen(kernel.awaitExit(init)), Effect.andThen(kernel.release(init)), Effect.ignore)),
      )
      return {
        record,
        init,
        ...(consoleFd !== undefined ? { console: consoleFd } : {}),
        ...(o.hooks ? { hooks: o.hooks } : {}),
        ...(listenerFd !== undefined ? { seccompListener: listenerFd } : {}),
      }
    })
    // spawnInit kills its own init on failure; what is left to undo is the cgroups and the claim.
    // onError, not tapError: an interrupted create (the actor stopped meanwhile) is undone too.
    return yield* build.pipe(Effect.onError(() => cgroups.destroy(paths).pipe(Effect.ignore, Effect.andThen(dropRdt(spec, id)), Effect.andThen(undoClaim))))
  })

/**
 * A filesystem that cannot be id-mapped (mount_setattr MOUNT_ATTR_IDMAP: EINVAL, e.g. procfs, or a
 * kernel without FS_ALLOW_IDMAP for it) is the config's mistake: a ConfigError naming the mount.
 */
function idMapRefusal(spec: Spec, bundleDir: string, e: InitFailed): ConfigError | undefined {
  if (e.syscall !== "mount_setattr MOUNT_ATTR_IDMAP" || e.errno !== "EINVAL") return undefined
  const i = (spec.mounts ?? []).findIndex((m) => m.source !== undefined && path.resolve(bundleDir, m.source) === e.path)
  return new ConfigError({
    path: i >= 0 ? `mounts[${i}]` : "mounts",
    reason: `id-mapped mount of ${e.path}${i >= 0 ? ` on ${spec.mounts![i]!.destination}` : ""}: its filesystem cannot be id-mapped (mount_setattr: EINVAL)`,
  })
}

/** Where a setuid id-map tool is: PATH's first, then /usr/bin (a manager's PATH may be minimal). */
function findTool(name: string): string | undefined {
  const dirs = [...(process.env["PATH"] ?? "").split(":").filter((d) => d.startsWith("/")), "/usr/bin", "/bin"]
  return dirs.map((d) => path.join(d, name)).find((f) => {
    try {
      fs.accessSync(f, fs.constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

/**
 * What a manager that is not root must check before anything exists: a user namespace (nothing else
 * makes it root of anything), a rootfs it can reach, id maps that /etc/subuid and /etc/subgid grant
 * (newuidmap would refuse them only after the clone), and the tools for maps wider than its own id.
 */
const rootlessChecks = (spec: Spec, rootfs: string): Effect.Effect<{ idMapTools?: { uid?: string; gid?: string } }, ConfigError> =>
  Effect.gen(function* () {
    const euid = process.geteuid?.() ?? 0
    if (euid === 0) return {}
    const linux = spec.linux ?? {}
    const userNs = (linux.namespaces ?? []).find((n) => n.type === "user")
    if (!userNs) return yield* new ConfigError({ path: "linux.namespaces", reason: `rootless (uid ${euid}): a container needs a user namespace` })
    try {
      fs.accessSync(rootfs, fs.constants.R_OK | fs.constants.X_OK)
    } catch (e) {
      return yield* new ConfigError({ path: "root.path", reason: `rootless (uid ${euid}): ${rootfs} cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` })
    }
    if (userNs.path) return {}
    // /etc/subuid lines name the user or its uid; a uid without a passwd entry has no name.
    const name = (() => {
      try {
        return os.userInfo().username
      } catch {
        return undefined
      }
    })()
    const tools: { uid?: string; gid?: string } = {}
    for (const [field, file, own, tool, key] of [
      ["linux.uidMappings", "/etc/subuid", euid, "newuidmap", "uid"],
      ["linux.gidMappings", "/etc/subgid", process.getegid?.() ?? 0, "newgidmap", "gid"],
    ] as const) {
      const maps = linux[field === "linux.uidMappings" ? "uidMappings" : "gidMappings"]
      if (selfMapOnly(maps, own)) continue
      const text = (() => {
        try {
          return fs.readFileSync(file, "utf8")
        } catch {
          return ""
        }
      })()
      const problem = checkRootlessMappings(field, maps, own, subIdRanges(text, { name, id: euid }), file)
      if (problem) return yield* new ConfigError(problem)
      const found = findTool(tool)
      if (!found) return yield* new ConfigError({ path: field, reason: `rootless: a map wider than this user's own id needs ${tool} (Debian's uidmap package), not found in PATH` })
      tools[key] = found
    }
    return tools.uid || tools.gid ? { idMapTools: tools } : {}
  })

/** Removes the container's resctrl group(s), if it asked for Intel RDT (failures logged: the group is not ours alone). */
const dropRdt = (spec: Spec, id: string): Effect.Effect<void> => {
  const rdt = spec.linux?.intelRdt
  const root = resctrlRoot()
  return rdt && root ? removeRdt(root, rdt, id).pipe(Effect.catch((e) => Effect.logWarning(e.message))) : Effect.void
}

/** SCMP_ACT_NOTIFY needs someone to answer: listenerPath, or the in-process listener. */
function notifyProblem(spec: Spec, inProcess: boolean): { path: string; reason: string } | undefined {
  const sc = spec.linux?.seccomp
  if (!sc || sc.listenerPath || inProcess) return undefined
  const compiled = compileSeccompCached(sc)
  if (compiled._tag === "Success" && compiled.success.notify)
    return { path: "linux.seccomp.listenerPath", reason: "SCMP_ACT_NOTIFY needs a listener: set listenerPath (or, in-process, the seccompNotify option)" }
  return undefined
}

/** The directory a freeze shows in, for the error: the v1 freezer hierarchy's, else the cgroup2 one; one that exists first. */
const freezerDir = (paths: CgroupPaths): string => {
  const entries = Object.entries(paths)
  const candidates = [entries.find(([mp]) => path.basename(mp).split(",").includes("freezer")), entries.find(([mp]) => mp.endsWith("/unified")), entries[0]]
    .filter((e): e is [string, string] => e !== undefined)
    .map(([, dir]) => dir)
  return candidates.find((d) => fs.existsSync(d)) ?? candidates[0] ?? ""
}

const unexpectedlyFrozen = (paths: CgroupPaths) =>
  Effect.fail(new CgroupError({ op: "create", path: freezerDir(paths), reason: "container's cgroup unexpectedly frozen" }))

/**
 * runc's checks of a cgroup that exists before create (libcontainer/factory_linux.go): one that holds
 * processes is used, with a warning, as runc 1.1 does; a frozen one is refused, since the init would
 * freeze at its first step and create would wait for it forever. Before anything is made.
 */
const checkExistingCgroup = (paths: CgroupPaths): Effect.Effect<void, CgroupError, Cgroups> =>
  Effect.gen(function* () {
    const cgroups = yield* Cgroups
    // Reading pids races with someone removing the cgroup: what cannot be read holds nothing.
    const pids = yield* cgroups.pids(paths).pipe(Effect.orElseSucceed(() => [] as number[]))
    if (pids.length > 0) yield* Effect.logWarning(`container's cgroup is not empty: ${pids.length} process(es) found`)
    if (yield* cgroups.frozen(paths)) return yield* unexpectedlyFrozen(paths)
  })

/** The runtime-spec state handed to hooks. */
export const hookState = (record: ContainerRecord, status: HookState["status"], pid?: number): HookState => ({
  ociVersion: record.spec.ociVersion,
  id: record.id,
  status,
  ...(pid !== undefined ? { pid } : {}),
  bundle: record.bundle,
  ...(record.spec.annotations ? { annotations: record.spec.annotations } : {}),
})

/**
 * The first record of a container and its cgroups, for create and restore alike: the record is
 * written before the cgroups exist, so that a crash from here on leaves nothing delete cannot find,
 * and limits and device rules are in place before any process joins (it never runs unconstrained).
 */
export const provision = (
  root: string,
  id: string,
  bundle: Bundle,
  spec: Spec,
  paths: CgroupPaths,
  driver?: "cgroupfs" | "systemd",
  applyOpts?: { readonly devices?: boolean },
): Effect.Effect<ContainerRecord, ContainerError, Services> =>
  Effect.gen(function* () {
    const store = yield* StateStore
    const cgroups = yield* cgroupsFor(driver)
    const record: ContainerRecord = {
      version: 1,
      id,
      bundle: bundle.dir,
      rootfs: bundle.rootfs,
      created: new Date().toISOString(),
      status: "creating",
      cgroups: paths,
      ...(driver === "systemd" ? { cgroupDriver: "systemd" as const } : {}),
      ownPidNs: (spec.linux?.namespaces ?? []).some((n) => n.type === "pid" && !n.path),
      spec,
    }
    yield* store.write(root, record)
    yield* cgroups.create(paths)
    // A new cgroup under a frozen parent is born frozen: the init would stop at its first step.
    if (yield* cgroups.frozen(paths)) return yield* unexpectedlyFrozen(paths)
    // Now, not earlier: the primed write holds cgroup_mutex through its RCU wait, which would stall
    // the mkdirs above; from here the wait overlaps the plan, the helper's spawn and its clone.
    cgroups.prime()
    yield* cgroups.apply(paths, spec.linux?.resources, applyOpts)
    return record
  })

/** start: release the init from its barrier; it execs the user's program. */
export const start = (root: string, live: Live): Effect.Effect<Live, ContainerError, Services> =>
  Effect.gen(function* () {
    const kernel = yield* Kernel
    const store = yield* StateStore
    if (!live.init) return live
    const fifo = fifoPath(root, live.record.id)
    const record = { ...live.record, status: "running" as const }
    yield* store.withLock(
      root,
      live.record.id,
      kernel.start(live.init, fifo).pipe(
        Effect.ensuring(Effect.sync(() => fs.rmSync(fifo, { force: true }))),
        Effect.andThen(store.write(root, record)),
      ),
    )
    // poststart: the program runs; a failing hook is logged and changes nothing (runtime-spec).
    yield* runHooksLogged(record.spec, "poststart", hookState(record, "running", live.init.pid))
    yield* runInProcess("poststart", live.hooks?.poststart, hookState(record, "running", live.init.pid)).pipe(Effect.catch((e) => Effect.logWarning(e.message)))
    return { ...live, record }
  })

/** Thaws the container's cgroup if it is frozen. */
const thawIfFrozen = (live: Live) =>
  Effect.flatMap(Cgroups, (c) => Effect.flatMap(c.frozen(live.record.cgroups), (frozen) => (frozen ? c.freeze(live.record.cgroups, false) : Effect.void)))

/**
 * Signals every pid of the container's cgroup, pid by pid, as runc's signalAllProcesses: the cgroup
 * frozen meanwhile (where it has a freezer and is not paused already), so that none forks or exits
 * and frees its pid between the read of cgroup.procs and the signal; and each pid checked again,
 * once its pidfd pins it, to be in the container's cgroup (a pid reused elsewhere is skipped: a
 * freezer cannot stop a member that died before the freeze).
 */
const signalEach = (live: Live, sig: number): Effect.Effect<void, ContainerError, Services> =>
  Effect.gen(function* () {
    const kernel = yield* Kernel
    const cgroups = yield* Cgroups
    const paths = live.record.cgroups
    const wasFrozen = yield* cgroups.frozen(paths).pipe(Effect.orElseSucceed(() => true))
    // No freezer (or it fails): the membership check alone.
    const froze = wasFrozen ? false : yield* cgroups.freeze(paths, true).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
    const thaw = froze ? cgroups.freeze(paths, false).pipe(Effect.ignore) : Effect.void
    yield* Effect.gen(function* () {
      const pids = yield* cgroups.pids(paths)
      yield* Effect.forEach(pids, (p) => kernel.signalPid(p, sig, (pinned) => cgroups.holds(paths, pinned)))
    }).pipe(Effect.ensuring(thaw))
  })

/**
 * Signals the init, or with `all` every process in the container's cgroup. A frozen task takes no
 * signal until thawed, so SIGKILL to a paused container thaws it to deliver (runc's Signal: "only
 * thaw the cgroup for SIGKILL"); other signals stay pending until resume.
 */
export const signal = (live: Live, sig: number, all: boolean): Effect.Effect<void, ContainerError, Services> =>
  Effect.gen(function* () {
    const kernel = yield* Kernel
    const cgroups = yield* Cgroups
    if (all) {
      // SIGKILL: one write to cgroup2's cgroup.kill where there is one (no pid list to race with forks).
      const viaKill = sig === 9 && cgroups.killAll ? yield* cgroups.killAll(live.record.cgroups) : false
      if (!viaKill) yield* signalEach(live, sig)
    } else if (live.init) yield* kernel.signal(live.init, sig)
    if (signalThaws(sig)) yield* thawIfFrozen(live)
  })

/** Kills everything in the container and waits for the init; with a pid namespace the kernel kills the rest with it. */
export const killAll = (live: Live): Effect.Effect<ExitStatus | null, ContainerError, Services> =>
  Effect.gen(function* () {
    const kernel = yield* Kernel
    const cgroups = yield* Cgroups
    let status: ExitStatus | null = null
    if (live.init) {
      yield* kernel.signal(live.init, 9).pipe(Effect.ignore)
      // A paused container's init cannot die frozen.
      yield* thawIfFrozen(live).pipe(Effect.ignore)
      status = yield* kernel.awaitExit(live.init)
    }
    // Without a pid namespace (or after a crash) stragglers may remain in the cgroup: kill until it is empty.
    for (let round = 0; round < 50; round++) {
      const pids = yield* cgroups.pids(live.record.cgroups).pipe(Effect.orElseSucceed(() => [] as number[]))
      if (pids.length === 0) break
      const viaKill = cgroups.killAll ? yield* cgroups.killAll(live.record.cgroups).pipe(Effect.orElseSucceed(() => false)) : false
      // On hybrid cgroup.kill reaches the cgroup2 tree only: a task put into a v1 directory alone (a process
      // that was there before create, with its warning) is still listed after a round, and is killed by pid.
      if (!viaKill || round > 0) yield* Effect.forEach(pids, (p) => kernel.signalPid(p, 9, (pinned) => cgroups.holds(live.record.cgroups, pinned)))
      yield* thawIfFrozen(live).pipe(Effect.ignore)
      yield* Effect.sleep("10 millis")
    }
    return status
  })

/** pause (on) or resume: the freezer, then the recorded status, under the container's lock. */
export const setPaused = (root: string, live: Live, on: boolean): Effect.Effect<Live, ContainerError, Services> =>
  Effect.gen(function* () {
    const cgroups = yield* Cgroups
    const store = yield* StateStore
    const record = { ...live.record, status: on ? ("paused" as const) : ("running" as const) }
    yield* store.withLock(root, live.record.id, cgroups.freeze(live.record.cgroups, on).pipe(Effect.andThen(store.write(root, record))))
    return { ...live, record }
  })

/** destroy: kill what is left, remove cgroups and the state dir. */
export const destroy = (root: string, live: Live): Effect.Effect<void, ContainerError, Services> =>
  Effect.gen(function* () {
    const kernel = yield* Kernel
    const cgroups = yield* cgroupsFor(live.record.cgroupDriver)
    const store = yield* StateStore
    // Under the container's lock: a concurrent start or delete from another process waits for us.
    yield* store.withLock(
      root,
      live.record.id,
      Effect.gen(function* () {
        yield* killAll(live)
        if (live.init) yield* kernel.release(live.init)
        if (live.seccompListener !== undefined) yield* closeListener(live.seccompListener)
        yield* cgroups.destroy(live.record.cgroups)
        yield* dropRdt(live.record.spec, live.record.id)
        yield* store.remove(root, live.record.id)
      }),
    )
    // poststop: after the container is gone; failures are logged and do not block delete.
    yield* runHooksLogged(live.record.spec, "poststop", hookState(live.record, "stopped"))
    yield* runInProcess("poststop", live.hooks?.poststop, hookState(live.record, "stopped")).pipe(Effect.catch((e) => Effect.logWarning(e.message)))
  })

/** The status a record has in reality (runc's refreshState): init alive at the barrier → created, frozen → paused, alive → running, else stopped. */
export const reconcile = (root: string, id: string): Effect.Effect<Live & { status: RecordedStatus }, ContainerError, Services> =>
  Effect.gen(function* () {
    const kernel = yield* Kernel
    const store = yield* StateStore
    const record = yield* store.read(root, id)
    const init = record.init ? yield* kernel.attach(record.init.pid, record.init.startTime) : undefined
    const initAlive = init !== undefined
    const atBarrier = initAlive && record.status !== "creating" && fs.existsSync(fifoPath(root, id))
    const frozen = needsFreezer(record.status, initAlive, atBarrier) ? yield* Effect.flatMap(Cgroups, (c) => c.frozen(record.cgroups)) : false
    const status = reconciledStatus(record.status, { initAlive, atBarrier, frozen })
    if (status === "stopped") {
      if (init) yield* kernel.release(init)
      return { record, init: undefined, status }
    }
    return { record, init, status }
  })

/** Reads a record without touching the kernel (for `list`). */
export const peek = (root: string, id: string) =>
  Effect.flatMap(StateStore, (s) => s.read(root, id)).pipe(Effect.option, Effect.map(Option.getOrUndefined))

type ResourcesInput = Readonly<Record<string, unknown>>
const isObject = (v: unknown): v is ResourcesInput => typeof v === "object" && v !== null && !Array.isArray(v)

/** runc update's merge: each group (memory, cpu, pids, blockIO) field by field, lists replaced whole. */
export function mergeResources(current: unknown, change: unknown): ResourcesInput {
  const base = isObject(current) ? current : {}
  const next = isObject(change) ? change : {}
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(next)) out[k] = isObject(v) && isObject(base[k]) ? { ...base[k], ...v } : v
  return out
}

/**
 * runc's setMemoryAndSwap: a memory limit lifted to -1 with no swap named lifts swap too (where the host
 * accounts swap: memory.memsw on v1, memory.swap.max on v2), else the old memory+swap limit would stay
 * below the new memory limit and the kernel refuse it.
 */
export function liftSwapWithMemory(merged: ResourcesInput, change: unknown, facts: HostFacts): ResourcesInput {
  const asked = isObject(change) && isObject(change["memory"]) ? change["memory"] : undefined
  if (asked?.["limit"] !== -1 || (asked["swap"] !== undefined && asked["swap"] !== 0)) return merged
  if (facts.layout !== "v2" && !facts.v1Files.has("memory.memsw.limit_in_bytes")) return merged
  return { ...merged, memory: { ...(isObject(merged["memory"]) ? merged["memory"] : {}), swap: -1 } }
}

/** update: validate the merged resources (naming the field), write them live, record them. */
export const update = (root: string, live: Live, change: unknown): Effect.Effect<Live, ContainerError, Services> =>
  Effect.gen(function* () {
    const cgroups = yield* cgroupsFor(live.record.cgroupDriver)
    const store = yield* StateStore
    const facts = yield* cgroups.facts()
    const merged = liftSwapWithMemory(mergeResources(live.record.spec.linux?.resources, change), change, facts)
    const spec = yield* parseSpec({ ...live.record.spec, linux: { ...live.record.spec.linux, resources: merged } })
    const resources = spec.linux?.resources
    const problem = checkResourcesOnHost(resources, facts)
    if (problem) return yield* new ConfigError(problem)
    const paths = live.record.cgroups
    const record: ContainerRecord = { ...live.record, spec }
    yield* store.withLock(
      root,
      live.record.id,
      Effect.gen(function* () {
        // The order of the memory and swap writes (swap first when it grows) is the manager's (runc's setMemoryAndSwap).
        yield* cgroups.apply(paths, resources, { devices: isObject(change) && "devices" in change })
        yield* store.write(root, record)
      }),
    )
    return { ...live, record }
  })
