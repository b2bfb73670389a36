/**
 * The Criu service: checkpoint (dump) and restore of a process tree through
 * CRIU's RPC service (effects/criu-swrk.ts), in CRIU's own terms — the
 * container-level policy (which mounts are external, cgroups, the state
 * record) lives in effects/checkpoint.ts.
 *
 * CRIU is found at $XCONTAINER_CRIU, /usr/local/sbin/criu, or on PATH, and is
 * looked for only when a checkpoint or restore is asked for: the rest of the
 * runtime works without it. Debian 12's criu 3.17 fails on kernel 6.x (vdso),
 * so anything older than 4.1 counts as missing.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer } from "effect"
import { criu_cg_mode, criu_req_type, type criu_version } from "../native/criu/rpc_pb.ts"
import { criuErrorCause, readCriuLog } from "./criu-log.ts"
import { swrk, type CriuNotification, type SwrkRequest } from "./criu-swrk.ts"
import { CriuFailed, CriuMissing, type ContainerError } from "./errors.ts"
import { toSyscallError } from "./kernel-live.ts"

export type { CriuNotification } from "./criu-swrk.ts"

/** How to get a working CRIU here (the script builds 4.1.1 from the tarball kept beside it). */
export const CRIU_INSTALL = "bash ../shared/deps/criu/install.sh"
const MIN_VERSION = 40100

export interface CriuVersion {
  readonly path: string
  /** major * 10000 + minor * 100 + sublevel (runc's encoding). */
  readonly version: number
  readonly text: string
}

/** runc's --manage-cgroups-mode values. */
export type ManageCgroupsMode = "soft" | "full" | "strict" | "ignore"

/** A mount CRIU must not dump or restore itself: on dump `key` is its mountpoint in the container and `val` a name; on restore `key` is that name and `val` the host path to bind. */
export interface ExtMount {
  readonly key: string
  readonly val: string
}

/** What dump and restore share. */
export interface CriuCommon {
  readonly imagePath: string
  /** Where CRIU writes its log and work files (default: imagePath). */
  readonly workPath?: string
  /** The root of the tree's mount namespace as the host sees it. */
  readonly root: string
  readonly tcpEstablished?: boolean
  readonly extUnixSk?: boolean
  readonly shellJob?: boolean
  readonly fileLocks?: boolean
  readonly manageCgroupsMode?: ManageCgroupsMode
  readonly extMounts?: readonly ExtMount[]
  /** CLONE_NEW* mask of namespaces whose contents CRIU leaves alone (runc's --empty-ns; CRIU supports network). */
  readonly emptyNs?: number
  /** Dump: punch the parent's pages a new dump supersedes; restore: punch each page once restored. */
  readonly autoDedup?: boolean
  /** Dump: serve pages from memory on request instead of writing them; restore: fault them in through userfaultfd. */
  readonly lazyPages?: boolean
  /** A CRIU configuration file whose settings override the request's (criu_opts.config_file; see criuConfigFile). */
  readonly configFile?: string
  readonly onNotify?: (n: CriuNotification) => Effect.Effect<void, ContainerError>
}

/** Where a dump sends its pages (a `criu page-server`), or, with lazyPages, where it serves them. */
export interface PageServer {
  readonly address: string
  readonly port: number
}

/** CRIU features a request depends on (criu_features; runc's checkCriuFeatures). */
export interface CriuFeatures {
  /** Memory dirty tracking (soft-dirty bits): pre-dump and parent images. */
  readonly memTrack: boolean
  /** userfaultfd: lazy pages. */
  readonly lazyPages: boolean
}

export interface DumpOptions extends CriuCommon {
  readonly pid: number
  readonly leaveRunning?: boolean
  /** The tree's freezer cgroup: CRIU freezes through it instead of stopping each task with ptrace. */
  readonly freezeCgroup?: string
  /** Resources CRIU leaves out of the images ("file[mnt_id:inode]"); a restore passes them back with inheritFds. */
  readonly external?: readonly string[]
  /** A pre-dump: memory only, the tree goes on running (CRIU's PRE_DUMP). */
  readonly preDump?: boolean
  /** The previous (pre-)dump's image directory, relative to imagePath: only pages changed since are dumped (needs memTrack). */
  readonly parentImg?: string
  readonly pageServer?: PageServer
}

export interface RestoreOptions extends CriuCommon {
  /** Runs once CRIU is spawned, before it restores anything (join it to the cgroups the tree goes into). */
  readonly beforeRestore?: (criuPid: number) => Effect.Effect<void, ContainerError>
  readonly stdio?: readonly [number | "ignore", number | "ignore", number | "ignore"]
  /** A dumped resource ("pipe:[1234]", "extRootNetNS") → the fd of CRIU's (0–2: its stdio, 4…: extraFds) that takes its place. */
  readonly inheritFds?: readonly { readonly key: string; readonly fd: number }[]
  /** Our fds that CRIU gets as 4, 5, … */
  readonly extraFds?: readonly number[]
  /** Namespaces (CRIU's names: "ipc", "uts", …) the restored tree joins instead of creating them. */
  readonly joinNs?: readonly { readonly ns: string; readonly nsFile: string }[]
}

export interface CriuService {
  /** Finds CRIU and asks its version; CriuMissing when there is none or it is older than 4.1. */
  readonly check: Effect.Effect<CriuVersion, ContainerError>
  /** Dumps the tree rooted at `pid` into imagePath (killing it unless leaveRunning). */
  readonly dump: (o: DumpOptions) => Effect.Effect<void, ContainerError>
  /** Restores the images as a sibling of CRIU, i.e. our child; returns the restored root's pid. */
  readonly restore: (o: RestoreOptions) => Effect.Effect<number, ContainerError>
  /** What CRIU on this kernel can do (FEATURE_CHECK). */
  readonly features: Effect.Effect<CriuFeatures, ContainerError>
}

export class Criu extends Context.Service<Criu, CriuService>()("xcontainer/Criu") {}

const CG_MODES: Record<ManageCgroupsMode, criu_cg_mode> = {
  soft: criu_cg_mode.SOFT,
  full: criu_cg_mode.FULL,
  strict: criu_cg_mode.STRICT,
  ignore: criu_cg_mode.IGNORE,
}

/** The CRIU binary to use, or undefined. */
function locate(): string | undefined {
  const fromEnv = process.env["XCONTAINER_CRIU"]
  if (fromEnv) return fromEnv
  const candidates = ["/usr/local/sbin/criu", ...(process.env["PATH"] ?? "").split(":").filter(Boolean).map((d) => path.join(d, "criu"))]
  return candidates.find((p) => {
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

const openDir = (dir: string, create: boolean) =>
  Effect.try({
    try: () => {
      // A container may be checkpointed again into the same directory.
      if (create) fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
      return fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
    },
    catch: toSyscallError("open", dir),
  })

/** Opens the image (and work) directories for the request; CRIU reaches them as /proc/<our pid>/fd/N. */
const withDirs = <A>(
  o: CriuCommon,
  createImages: boolean,
  use: (imagesFd: number, workFd: number | undefined, logDir: string) => Effect.Effect<A, ContainerError>,
): Effect.Effect<A, ContainerError> =>
  Effect.acquireUseRelease(
    Effect.gen(function* () {
      const images = yield* openDir(o.imagePath, createImages)
      const work = o.workPath ? yield* openDir(o.workPath, true).pipe(Effect.tapError(() => Effect.sync(() => fs.closeSync(images)))) : undefined
      return { images, work }
    }),
    ({ images, work }) => use(images, work, o.workPath ?? o.imagePath),
    ({ images, work }) =>
      Effect.sync(() => {
        fs.closeSync(images)
        if (work !== undefined) fs.closeSync(work)
      }),
  )

/** [controllers, path] of each hierarchy a process is in, from /proc/PID/cgroup ("" names cgroup2, as CRIU does). */
function cgroupsOf(pid: number): [string, string][] {
  return fs
    .readFileSync(`/proc/${pid}/cgroup`, "utf8")
    .split("\n")
    .flatMap((line) => {
      const m = /^\d+:([^:]*):(.*)$/.exec(line)
      return m ? [[m[1]!, m[2]!] as [string, string]] : []
    })
}

/** The options dump and restore share, as criu_opts fields. */
const commonOpts = (o: CriuCommon, imagesFd: number, workFd: number | undefined, logFile: string) => ({
  imagesDirFd: imagesFd,
  ...(workFd !== undefined ? { workDirFd: workFd } : {}),
  logLevel: 4,
  logFile,
  root: o.root,
  manageCgroups: true,
  manageCgroupsMode: o.manageCgroupsMode ? CG_MODES[o.manageCgroupsMode] : criu_cg_mode.DEFAULT,
  notifyScripts: true,
  shellJob: o.shellJob ?? false,
  tcpEstablished: o.tcpEstablished ?? false,
  extUnixSk: o.extUnixSk ?? false,
  fileLocks: o.fileLocks ?? false,
  orphanPtsMaster: true,
  extMnt: (o.extMounts ?? []).map((m) => ({ key: m.key, val: m.val })),
  emptyNs: o.emptyNs ?? 0,
  autoDedup: o.autoDedup ?? false,
  lazyPages: o.lazyPages ?? false,
  ...(o.configFile !== undefined ? { configFile: o.configFile } : {}),
})

/** Puts the log's error lines into a CriuFailed (a spawn or protocol failure has no log to add). */
const withLog =
  (logDir: string, logFile: string) =>
  (e: ContainerError): Effect.Effect<never, ContainerError> => {
    if (e._tag !== "CriuFailed") return Effect.fail(e)
    const file = path.join(logDir, logFile)
    const log = readCriuLog(file)
    if (!log) return Effect.fail(e)
    // CRIU's cr_errmsg is its first error line, on this host a harmless one (no CAP_SYS_RESOURCE for
    // RLIMIT_NOFILE): name the first one that is not noise instead.
    const last = criuErrorCause(log)
    const reason = last ? `${e.reason.replace(/ \(.*\)$/s, "")}: ${last}` : e.reason
    return Effect.fail(new CriuFailed({ action: e.action, reason, logFile: file, log }))
  }

/** The live service: CRIU over swrk, its version asked once per service. */
export const makeCriu: Effect.Effect<CriuService> = Effect.sync(() => {
  // Asked once per service: CRIU does not change under a running manager.
  let known: CriuVersion | undefined
  const find = Effect.suspend(() => {
    const found = known?.path ?? locate()
    return found ? Effect.succeed(found) : Effect.fail(new CriuMissing({ found: "nothing (no $XCONTAINER_CRIU, /usr/local/sbin/criu, or criu on PATH)", install: CRIU_INSTALL }))
  })
  const judge = (found: string, v: criu_version | undefined): Effect.Effect<CriuVersion, CriuMissing> => {
    const version = (v?.majorNumber ?? 0) * 10000 + (v?.minorNumber ?? 0) * 100 + (v?.sublevel ?? 0)
    const text = `${v?.majorNumber ?? 0}.${v?.minorNumber ?? 0}${v?.sublevel ? `.${v.sublevel}` : ""}`
    if (version < MIN_VERSION) return Effect.fail(new CriuMissing({ found: `criu ${text} at ${found}`, install: CRIU_INSTALL }))
    known = { path: found, version, text }
    return Effect.succeed(known)
  }
  /** CRIU failing before its version is known: this binary is no CRIU we can use (our own failures stay as they are). */
  const notAnswering =
    (found: string) =>
    <E extends ContainerError>(e: E): E | CriuMissing =>
      e._tag === "CriuFailed" ? new CriuMissing({ found: `${found}, which does not answer (${e.message})`, install: CRIU_INSTALL }) : e
  const check: Effect.Effect<CriuVersion, ContainerError> = Effect.suspend(() =>
    known
      ? Effect.succeed(known)
      : Effect.flatMap(find, (found) =>
          swrk({ criuPath: found, action: "version", request: { type: criu_req_type.VERSION } }).pipe(
            Effect.mapError(notAnswering(found)),
            Effect.flatMap((resp) => judge(found, resp.version)),
          ),
        ),
  )
  /**
   * What a dump or restore conversation needs: CRIU's path and, when its version is not known yet,
   * a version round on the same connection (one CRIU process instead of two, ~30 ms less).
   */
  const session = <A>(run: (criuPath: string, version: Pick<SwrkRequest, "version">) => Effect.Effect<A, ContainerError>): Effect.Effect<A, ContainerError> =>
    Effect.flatMap(find, (found) => {
      const unknown = known === undefined
      return run(found, unknown ? { version: (v) => Effect.asVoid(judge(found, v)) } : {}).pipe(
        // Anything that fails before the version is known means this is no CRIU we can use.
        Effect.mapError((e) => (unknown && known === undefined ? notAnswering(found)(e) : e)),
      )
    })
  const features: Effect.Effect<CriuFeatures, ContainerError> = session((criuPath, version) =>
    swrk({
      criuPath,
      ...version,
      action: "feature check",
      request: { type: criu_req_type.FEATURE_CHECK, features: { memTrack: true, lazyPages: true } },
    }),
  ).pipe(Effect.map((resp) => ({ memTrack: resp.features?.memTrack ?? false, lazyPages: resp.features?.lazyPages ?? false })))
  return {
    check,
    features,
    // The directories are opened first: a missing one is our error to report, not a CRIU that does not answer.
    dump: (o) =>
      withDirs(o, true, (imagesFd, workFd, logDir) =>
        session((criuPath, version) =>
          swrk({
            criuPath,
            ...version,
            action: o.preDump ? "pre-dump" : "dump",
            request: {
              type: o.preDump ? criu_req_type.PRE_DUMP : criu_req_type.DUMP,
              opts: {
                ...commonOpts(o, imagesFd, workFd, "dump.log"),
                pid: o.pid,
                leaveRunning: o.leaveRunning ?? false,
                ...(o.freezeCgroup ? { freezeCgroup: o.freezeCgroup } : {}),
                external: [...(o.external ?? [])],
                // As runc: a parent means tracking memory, so that CRIU can tell which pages changed since.
                ...(o.parentImg ? { parentImg: o.parentImg, trackMem: true } : {}),
                ...(o.pageServer ? { ps: { address: o.pageServer.address, port: o.pageServer.port } } : {}),
              },
            },
            ...(o.onNotify ? { onNotify: o.onNotify } : {}),
          }),
        ).pipe(Effect.asVoid, Effect.catch(withLog(logDir, "dump.log"))),
      ),
    restore: (o) =>
      withDirs(o, false, (imagesFd, workFd, logDir) =>
        session((criuPath, version) =>
          swrk({
            criuPath,
            ...version,
            action: "restore",
            request: (criuPid) => ({
              type: criu_req_type.RESTORE,
              opts: {
                ...commonOpts(o, imagesFd, workFd, "restore.log"),
                // The restored root is forked with CLONE_PARENT: it becomes our child, so its exit status is ours to reap.
                rstSibling: true,
                evasiveDevices: true,
                // The dumped cgroup roots go where CRIU itself now is: beforeRestore put it into the new
                // container's cgroups (runc's criuApplyCgroups). Without this a restore under a new id
                // would recreate the old id's cgroups.
                cgRoot: cgroupsOf(criuPid).map(([ctrl, p]) => ({ ctrl, path: p })),
                inheritFd: (o.inheritFds ?? []).map((f) => ({ key: f.key, fd: f.fd })),
                joinNs: (o.joinNs ?? []).map((j) => ({ ns: j.ns, nsFile: j.nsFile })),
              },
            }),
            ...(o.stdio ? { stdio: o.stdio } : {}),
            ...(o.extraFds ? { extraFds: o.extraFds } : {}),
            ...(o.beforeRestore ? { beforeRequest: o.beforeRestore } : {}),
            ...(o.onNotify ? { onNotify: o.onNotify } : {}),
          }),
        ).pipe(
          Effect.flatMap((resp) =>
            resp.restore?.pid ? Effect.succeed(resp.restore.pid) : Effect.fail(new CriuFailed({ action: "restore", reason: "answer without the restored pid" })),
          ),
          Effect.catch(withLog(logDir, "restore.log")),
        ),
      ),
  }
})

export const CriuLive = Layer.effect(Criu, makeCriu)

let shared: CriuService | undefined
/**
 * The Criu service from the context if one is provided (a test's), else one live service per process:
 * CRIU is optional, so it is not among the runtime's required services.
 */
export const criuService: Effect.Effect<CriuService> = Effect.flatMap(Effect.serviceOption(Criu), (o) =>
  o._tag === "Some" ? Effect.succeed(o.value) : Effect.sync(() => (shared ??= Effect.runSync(makeCriu))),
)
