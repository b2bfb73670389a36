/**
 * runc's `checkpoint` and `restore` over Container.checkpoint / Container.restore.
 * As runc: a checkpoint without --leave-running deletes the container once it is
 * dumped (so `restore` may reuse its id), and a restore in the foreground waits
 * for the restored container, forwarding our signals (and proxying our terminal
 * to a restored terminal without a console socket), and deletes it at the end.
 * runc's flags that this build does not implement (--lsm-profile,
 * --lsm-mount-context) are refused by name rather than ignored.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { bool, list, str, UsageError, type FlagSpec, type Parsed } from "./args.ts"
import { exitCode, forwardingSignals, one, orDestroy, parse, proxyTerminal, writePidFile, type Cmd } from "./common.ts"
import { parsePageServer } from "../effects/checkpoint-options.ts"
import type { ManageCgroupsMode } from "../effects/criu.ts"
import { Container } from "../machines/container.ts"

const COMMON: FlagSpec[] = [
  { name: "image-path", value: true },
  { name: "work-path", value: true },
  { name: "tcp-established", value: false },
  { name: "ext-unix-sk", value: false },
  { name: "shell-job", value: false },
  { name: "file-locks", value: false },
  { name: "manage-cgroups-mode", value: true },
  { name: "empty-ns", value: true, multi: true },
  { name: "auto-dedup", value: false },
  { name: "lazy-pages", value: false },
  // podman decides whether a runtime can checkpoint by whether `checkpoint --help` exits 0.
]

const CHECKPOINT_FLAGS: FlagSpec[] = [
  ...COMMON,
  { name: "leave-running", value: false },
  { name: "parent-path", value: true },
  { name: "pre-dump", value: false },
  { name: "page-server", value: true },
  { name: "status-fd", value: true },
]

const RESTORE_FLAGS: FlagSpec[] = [
  ...COMMON,
  { name: "bundle", alias: "b", value: true },
  { name: "detach", alias: "d", value: false },
  { name: "pid-file", value: true },
  { name: "console-socket", value: true },
  { name: "no-subreaper", value: false },
  { name: "no-pivot", value: false },
  { name: "lsm-profile", value: true },
  { name: "lsm-mount-context", value: true },
]

const NOT_YET = ["lsm-profile", "lsm-mount-context"]

const refuseUnimplemented = (p: Parsed) => {
  const asked = NOT_YET.filter((f) => p.flags.has(f))
  return asked.length > 0 ? Effect.fail(new UsageError(`--${asked.join(", --")}: not supported yet by xcontainer's checkpoint/restore`)) : Effect.void
}

const cgMode = (p: Parsed): Effect.Effect<{ manageCgroupsMode?: ManageCgroupsMode }, UsageError> => {
  const m = str(p, "manage-cgroups-mode")
  if (m === undefined) return Effect.succeed({})
  return ["soft", "full", "strict", "ignore"].includes(m)
    ? Effect.succeed({ manageCgroupsMode: m as ManageCgroupsMode })
    : Effect.fail(new UsageError(`invalid --manage-cgroups-mode "${m}" (soft, full, strict or ignore)`))
}

/**
 * The options both commands take; runc's default image path is ./checkpoint. As runc, the network
 * namespace is always left empty (runc "doesn't manage network devices and their configuration":
 * whoever set the network up, CNI or podman, sets it up again), --empty-ns only adds to that.
 */
const criuOptions = (p: Parsed) =>
  Effect.map(cgMode(p), (mode) => ({
    imagePath: path.resolve(str(p, "image-path") ?? "checkpoint"),
    ...(str(p, "work-path") ? { workPath: path.resolve(str(p, "work-path")!) } : {}),
    tcpEstablished: bool(p, "tcp-established"),
    extUnixSk: bool(p, "ext-unix-sk"),
    shellJob: bool(p, "shell-job"),
    fileLocks: bool(p, "file-locks"),
    autoDedup: bool(p, "auto-dedup"),
    lazyPages: bool(p, "lazy-pages"),
    emptyNamespaces: [...new Set(["network", ...list(p, "empty-ns")])],
    ...mode,
  }))

/** checkpoint's own flags: --pre-dump, --parent-path (relative to the image path, an existing directory), --page-server, --status-fd. */
const dumpOptions = (p: Parsed, imagePath: string) =>
  Effect.gen(function* () {
    const parent = str(p, "parent-path")
    if (parent !== undefined) {
      if (path.isAbsolute(parent)) return yield* Effect.fail(new UsageError("--parent-path must be relative"))
      if (!fs.statSync(path.join(imagePath, parent), { throwIfNoEntry: false })?.isDirectory())
        return yield* Effect.fail(new UsageError(`invalid --parent-path: ${path.join(imagePath, parent)} is not a directory`))
    }
    const psText = str(p, "page-server")
    const pageServer = psText !== undefined ? parsePageServer(psText) : undefined
    if (psText !== undefined && !pageServer) return yield* Effect.fail(new UsageError("use --page-server ADDRESS:PORT to specify page server"))
    const fdText = str(p, "status-fd")
    const statusFd = fdText === undefined ? -1 : Number(fdText)
    if (!Number.isInteger(statusFd)) return yield* Effect.fail(new UsageError(`invalid --status-fd "${fdText}"`))
    return {
      preDump: bool(p, "pre-dump"),
      ...(parent !== undefined ? { parentPath: parent } : {}),
      ...(pageServer ? { pageServer } : {}),
      // runc's default -1 is "none".
      ...(statusFd >= 0 ? { statusFd } : {}),
    }
  })

export const checkpointCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    const p = yield* parse(args, CHECKPOINT_FLAGS)
    const id = yield* one(p.positional)
    yield* refuseUnimplemented(p)
    const common = yield* criuOptions(p)
    const options = { ...common, ...(yield* dumpOptions(p, common.imagePath)), leaveRunning: bool(p, "leave-running") }
    if (options.parentPath !== undefined) fs.mkdirSync(options.imagePath, { recursive: true, mode: 0o700 })
    const c = yield* Container.load({ root: ctx.root, id })
    yield* c.checkpoint(options).pipe(Effect.tapError(() => c.release()))
    ctx.log.debug({ id, imagePath: options.imagePath }, options.preDump ? "pre-dumped" : "checkpointed")
    // As runc: the container is destroyed unless CRIU was told to keep it.
    if (options.leaveRunning || options.preDump) yield* c.release()
    else yield* c.destroy()
    return 0
  })

export const restoreCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    const p = yield* parse(args, RESTORE_FLAGS)
    const id = yield* one(p.positional)
    yield* refuseUnimplemented(p)
    const options = yield* criuOptions(p)
    // Our stdio become CRIU's, and so the restored container's where it had pipes (descriptors.json).
    const consoleSocket = str(p, "console-socket")
    const c = yield* Container.restore({ root: ctx.root, id, bundle: str(p, "bundle") ?? ".", stdio: [0, 1, 2], ...options, ...(consoleSocket ? { consoleSocket } : {}) })
    // A restored terminal without a console socket: its master is ours. Detached, we are about to
    // exit and nobody could use it; in the foreground it is proxied to our terminal, as run does.
    const master = c.console()
    const detach = bool(p, "detach")
    if (master !== undefined && detach) fs.closeSync(master)
    ctx.log.debug({ id, pid: c.pid }, "restored")
    // The restored init exists: a pid file that cannot be written takes the container down with it.
    yield* orDestroy(c)(writePidFile(str(p, "pid-file"), c.pid))
    if (detach) {
      yield* c.release()
      return 0
    }
    const stopProxy = master !== undefined ? proxyTerminal(master, (rows, cols) => Effect.runSync(c.resize(rows, cols).pipe(Effect.ignore))) : undefined
    const status = yield* forwardingSignals((sig) => c.signal(sig), c.wait()).pipe(Effect.ensuring(stopProxy ?? Effect.void))
    yield* c.destroy({ force: true })
    return exitCode(status)
  })
