/**
 * bin/xcontainer: runc's command line over the library. Each command is a
 * short Effect over the same Container API a library user has; state lives in
 * `--root` so that create, start, kill and delete may come from different
 * processes (podman and containerd call the runtime once per operation).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Cause, Effect, Exit, Layer, Logger, ManagedRuntime, References } from "effect"
import { bool, GLOBAL_FLAGS, parseArgs, str, UsageError, type FlagSpec, type Parsed } from "./args.ts"
import { checkTerminal, CommandFailed, exitCode, failingAs, forwardingSignals, HelpRequested, one, orDestroy, parse, preservedFds, proxyTerminal, writePidFile, type Cmd, type Ctx } from "./common.ts"
import { makeLogger, type LogFormat } from "./log.ts"
import { LIST_FLAGS, listText, ownerOf, runcState, stateText } from "./state-json.ts"
import { checkpointCmd, restoreCmd } from "./checkpoint-commands.ts"
import { execCmd } from "./exec-command.ts"
import { pauseCmd, psCmd, resumeCmd } from "./freezer-commands.ts"
import { featuresCmd, specCmd } from "./spec-command.ts"
import { eventsCmd } from "./events-command.ts"
import { updateCmd } from "./update-command.ts"
import { loadBundle } from "../config/parse.ts"
import type { ConfigError } from "../effects/errors.ts"
import { LiveLayer } from "../live.ts"
import { Container } from "../machines/container.ts"
import { signalNumber } from "../promise.ts"
import { defaultRoot, StateStore } from "../state/store.ts"

export { tabwriter } from "./state-json.ts"

const NAME = "xcontainer"
const VERSION = "0.1.0"
const SPEC_VERSION = "1.2.0"
/** The git commit the bundle was built from (cli/bundle.mjs defines it; unset when run from source). */
declare const __XC_COMMIT__: string | undefined
const COMMIT = typeof __XC_COMMIT__ === "string" ? __XC_COMMIT__ : ""


const USAGE = `xcontainer — an OCI runtime (runc-compatible command line)

usage: xcontainer [global options] command [command options] <container-id>

commands:
  create    create a container            (-b/--bundle, --pid-file, --no-pivot)
  start     start a created container
  run       create and start a container  (-b/--bundle, -d/--detach, --pid-file, --no-pivot)
  state     print the OCI state of a container
  list      list containers               (-f/--format table|json, -q/--quiet)
  kill      send a signal to a container  ([signal], -a/--all)
  update    change resources live          (--memory, --pids-limit, --cpu-shares, … or -r file)
  events    resource usage as JSON lines  (--stats: once, --interval 5s)
  spec      write a default config.json    (-b/--bundle, --rootless)
  features  print what this runtime supports (runtime-spec features JSON)
  exec      run a process in a container  (-p process.json, --cwd, -e, -u uid[:gid], --additional-gids,
                                           --cap, --no-new-privs, -d/--detach, --pid-file)
  delete    delete a container            (-f/--force)
  pause     freeze every process of a container
  resume    thaw a paused container
  ps        processes of a container      (-f/--format table|json, then ps(1) options; default -ef)
  checkpoint  dump a running container with CRIU (--image-path, --work-path, --leave-running,
            --tcp-established, --ext-unix-sk, --shell-job, --file-locks, --manage-cgroups-mode)
  restore   restore a checkpoint as a container (the same flags, -b/--bundle, -d/--detach, --pid-file)

global options:
  --root DIR          state directory (default ${defaultRoot()})
  --log FILE          log file (default stderr)
  --log-format FMT    text (default) or json
  --debug             debug logging
  -v, --version       print the version
`

/** Each command's arguments and one line on what it does (its -h/--help). */
const HELP: Record<string, readonly [args: string, summary: string]> = {
  create: ["<container-id>", "create a container"],
  start: ["<container-id>", "executes the user defined process in a created container"],
  run: ["<container-id>", "create and run a container"],
  state: ["<container-id>", "output the state of a container"],
  list: ["", "lists containers started with the given root"],
  kill: ["<container-id> [signal]", "kill sends the specified signal (default: SIGTERM) to the container's init process"],
  update: ["<container-id>", "update container resource constraints"],
  events: ["<container-id>", "display container events such as OOM notifications, cpu, memory, and IO usage statistics"],
  spec: ["", "create a new specification file"],
  features: ["", "show the enabled features"],
  exec: ["<container-id> <command> [command options]  || -p process.json <container-id>", "execute new process inside the container"],
  delete: ["<container-id>", "delete any resources held by the container often used with detached container"],
  pause: ["<container-id>", "pause suspends all processes inside the container"],
  resume: ["<container-id>", "resumes all processes that have been previously paused"],
  ps: ["<container-id> [ps options]", "ps displays the processes running inside a container"],
  checkpoint: ["<container-id>", "checkpoint a running container"],
  restore: ["<container-id>", "restore a container from a previous checkpoint"],
}

/** urfave/cli's command help: NAME, USAGE, OPTIONS. */
function commandHelp(name: string, flags: readonly FlagSpec[]): string {
  const [args, summary] = HELP[name] ?? ["", ""]
  const opts = [...flags.filter((f) => f.name !== "help"), { name: "help", alias: "h", value: false }].map((f) => `--${f.name}${f.value ? " value" : ""}${f.alias ? `, -${f.alias}${f.value ? " value" : ""}` : ""}`)
  return `NAME:\n   ${NAME} ${name} - ${summary}\n\nUSAGE:\n   ${NAME} ${name} [command options] ${args}\n\nOPTIONS:\n${opts.map((o) => `   ${o}\n`).join("")}`
}

const CREATE_FLAGS: FlagSpec[] = [
  { name: "bundle", alias: "b", value: true },
  { name: "pid-file", value: true },
  { name: "no-pivot", value: false },
  { name: "console-socket", value: true },
  { name: "no-new-keyring", value: false },
  { name: "preserve-fds", value: true },
]

const createCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    const p = yield* parse(args, CREATE_FLAGS)
    const id = yield* one(p.positional)
    const c = yield* createFor(p, ctx, id, true).pipe(failingAs(`${NAME} create failed`))
    ctx.log.debug({ id, pid: c.pid }, "created")
    // The init exists: a pid file that cannot be written takes the container down with it.
    yield* orDestroy(c)(writePidFile(str(p, "pid-file"), c.pid)).pipe(failingAs(`${NAME} create failed`))
    yield* c.release()
    return 0
  })

/**
 * create from the CLI's flags. A terminal needs somewhere to go: a --console-socket, or, for a
 * `run` in the foreground, our own terminal; and a console socket is only for a detached terminal
 * (runc's checkTerminal), checked on the bundle's config before anything is created. Without a
 * terminal the container gets our stdio, as runc's (inheritStdio when detaching).
 */
const createFor = (p: Parsed, ctx: Ctx, id: string, detaching: boolean) =>
  Effect.gen(function* () {
    const consoleSocket = str(p, "console-socket")
    // LISTEN_FDS reach the program's env through the config: runc adds them the same way.
    const preserved = yield* Effect.try({ try: () => preservedFds(str(p, "preserve-fds")), catch: (e) => e as ConfigError })
    const dir = str(p, "bundle") ?? "."
    const bundle = yield* loadBundle(dir)
    const refused = checkTerminal({ detach: detaching, terminal: bundle.spec.process?.terminal === true, consoleSocket })
    if (refused) return yield* refused
    ctx.log.debug({ id, bundle: bundle.dir, terminal: bundle.spec.process?.terminal === true }, "creating")
    return yield* Container.create({
      root: ctx.root,
      id,
      bundle: dir,
      config: bundle.spec,
      noPivot: bool(p, "no-pivot"),
      ...(ctx.systemdCgroup ? { cgroupDriver: "systemd" as const } : {}),
      preserveFds: preserved.fds,
      ...(ctx.rootless !== undefined ? { rootless: ctx.rootless } : {}),
      ...(preserved.env.length ? { extraEnv: preserved.env } : {}),
      ...(consoleSocket ? { consoleSocket } : {}),
    })
  })

const startCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    const p = yield* parse(args, [])
    const id = yield* one(p.positional)
    const c = yield* Container.load({ root: ctx.root, id })
    yield* c.start().pipe(Effect.ensuring(c.release()))
    ctx.log.debug({ id }, "started")
    return 0
  })


const runCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    const p = yield* parse(args, [...CREATE_FLAGS, { name: "detach", alias: "d", value: false }, { name: "keep", value: false }])
    const id = yield* one(p.positional)
    const c = yield* createFor(p, ctx, id, bool(p, "detach")).pipe(failingAs(`${NAME} run failed`))
    // Until it runs, any failure (the pid file, the terminal, start) takes the container down.
    const stopProxy = yield* orDestroy(c)(
      Effect.gen(function* () {
        yield* writePidFile(str(p, "pid-file"), c.pid)
        // A terminal without a console socket is proxied to ours, sized before the program starts.
        const master = c.console()
        const stop = master !== undefined ? proxyTerminal(master, (rows, cols) => Effect.runSync(c.resize(rows, cols).pipe(Effect.ignore))) : undefined
        yield* c.start()
        return stop
      }),
    ).pipe(failingAs(`${NAME} run failed`))
    if (bool(p, "detach")) {
      yield* c.release()
      return 0
    }
    ctx.log.debug({ id, pid: c.pid }, "started")
    // In the foreground the runtime forwards signals to the container, as runc does.
    const status = yield* forwardingSignals((sig) => c.signal(sig), c.wait()).pipe(Effect.ensuring(stopProxy ?? Effect.void))
    ctx.log.debug({ id, status }, "exited")
    if (!bool(p, "keep")) yield* c.destroy({ force: true })
    return exitCode(status)
  })

/** runc's state JSON of a loaded container. */
const stateJson = (c: Container, owner = "") => runcState(c.state(), c.config()?.root?.path, c.created(), owner)

const stateCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    const p = yield* parse(args, [])
    const id = yield* one(p.positional)
    const c = yield* Container.load({ root: ctx.root, id })
    process.stdout.write(stateText(stateJson(c)))
    yield* c.release()
    return 0
  })

const listCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    const p = yield* parse(args, [...LIST_FLAGS])
    const format = str(p, "format") ?? "table"
    if (format !== "table" && format !== "json") return yield* Effect.fail(new UsageError(`invalid format option`))
    const store = yield* StateStore
    const ids = yield* store.list(ctx.root)
    const rows = []
    for (const id of ids) {
      const c = yield* Container.load({ root: ctx.root, id }).pipe(Effect.option)
      if (c._tag === "None") continue
      rows.push(stateJson(c.value, ownerOf(path.join(ctx.root, id))))
      yield* c.value.release()
    }
    process.stdout.write(listText(rows, format, bool(p, "quiet")))
    return 0
  })

const killCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    const p = yield* parse(args, [{ name: "all", alias: "a", value: false }])
    const [id, sigArg] = p.positional
    if (!id || p.positional.length > 2) return yield* Effect.fail(new UsageError("usage: kill <container-id> [signal]"))
    const sig = yield* Effect.try({ try: () => signalNumber(sigArg ?? "TERM"), catch: (e) => e as ConfigError })
    const c = yield* Container.load({ root: ctx.root, id })
    yield* c.signal(sig, { all: bool(p, "all") }).pipe(Effect.ensuring(c.release()))
    return 0
  })

const deleteCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    const p = yield* parse(args, [{ name: "force", alias: "f", value: false }])
    const id = yield* one(p.positional)
    const force = bool(p, "force")
    const c = yield* Container.load({ root: ctx.root, id }).pipe(
      // As runc: a create killed before it wrote state.json leaves an empty directory; delete removes it,
      // and with --force a missing container is not an error.
      Effect.catchTag("ContainerNotFound", (e) =>
        Effect.flatMap(StateStore, (s) => s.remove(ctx.root, id)).pipe(Effect.andThen(force ? Effect.succeed(undefined) : Effect.fail(e))),
      ),
    )
    if (!c) return 0
    yield* c.destroy({ force }).pipe(Effect.tapError(() => c.release()))
    return 0
  })

const COMMANDS: Record<string, Cmd> = {
  create: createCmd,
  start: startCmd,
  run: runCmd,
  state: stateCmd,
  list: listCmd,
  ps: psCmd,
  pause: pauseCmd,
  resume: resumeCmd,
  kill: killCmd,
  checkpoint: checkpointCmd,
  restore: restoreCmd,
  delete: deleteCmd,
  exec: execCmd,
  spec: specCmd,
  events: eventsCmd,
  update: updateCmd,
  features: featuresCmd,
}

/**
 * A failure as runc reports it (fatalWithCode): the error as a log line (stderr, or the --log
 * file), and, when the log goes to a file, the bare message on stderr too.
 */
function report(log: ReturnType<typeof makeLogger>, toFile: boolean, message: string): void {
  log.error(message)
  if (toFile) process.stderr.write(`${message}\n`)
}

/** Runs the command line; resolves to the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  let g
  try {
    g = parseArgs(argv, GLOBAL_FLAGS, true)
  } catch (e) {
    report(makeLogger(undefined, "text", false), false, (e as Error).message)
    return 1
  }
  if (bool(g, "version")) {
    // urfave/cli's "NAME version X" then runc's lines: go-runc's Version() reads commit: and spec:.
    process.stdout.write(`${NAME} version ${VERSION}\n${COMMIT ? `commit: ${COMMIT}\n` : ""}spec: ${SPEC_VERSION}\n`)
    return 0
  }
  const format = str(g, "log-format") ?? "text"
  const logFile = str(g, "log")
  if (format !== "text" && format !== "json") {
    report(makeLogger(undefined, "text", false), false, `invalid log-format: ${format}`)
    return 1
  }
  const debug = bool(g, "debug")
  let log
  try {
    log = makeLogger(logFile, format as LogFormat, debug)
  } catch (e) {
    report(makeLogger(undefined, format as LogFormat, false), false, (e as Error).message)
    return 1
  }
  let [name, ...rest] = g.rest
  // urfave/cli's `help [command]`: the command's own help, as `command -h`.
  if (name === "help" && rest[0] !== undefined) [name, rest] = [rest[0], ["--help"]]
  // As runc (urfave/cli): no command prints the usage and exits 0; an unknown one exits 3.
  if (bool(g, "help") || !name || name === "help") {
    process.stdout.write(USAGE)
    return 0
  }
  const cmd = COMMANDS[name]
  if (!cmd) {
    report(log, logFile !== undefined, `No help topic for '${name}'`)
    return 3
  }
  // Only the commands that make cgroups need the manager, as runc: `--systemd-cgroup list` works.
  const makesCgroups = name === "create" || name === "run" || name === "restore"
  // runc's check (IsRunningSystemd) and message; the driver itself refuses a host that is not pure v2.
  const systemdCgroup = bool(g, "systemd-cgroup")
  if (makesCgroups && systemdCgroup && !fs.existsSync("/run/systemd/system")) {
    report(log, logFile !== undefined, "systemd not running on this host, cannot use systemd cgroups manager")
    return 1
  }
  // CRIU restores the tree into the cgroups it dumped; the scope would need the restored init's pid first.
  if (name === "restore" && systemdCgroup) {
    report(log, logFile !== undefined, "restore with --systemd-cgroup is not supported yet")
    return 1
  }
  // runc's --rootless true|false|auto: whether cgroups are handled as a rootless manager does
  // (effects/rootless.ts); auto (the default) is rootless when we are not root.
  const rootless = str(g, "rootless")
  if (makesCgroups && rootless !== undefined && !["true", "false", "auto"].includes(rootless)) {
    report(log, logFile !== undefined, `--rootless: invalid value "${rootless}" (true, false or auto)`)
    return 1
  }
  const root = path.resolve(str(g, "root") ?? defaultRoot())
  // runc's --criu: the CRIU binary checkpoint and restore use.
  const criu = str(g, "criu")
  if (criu) process.env["XCONTAINER_CRIU"] = criu
  log.debug({ command: name, args: rest, root }, "command")
  // Effect's own log lines (the init plan at debug level …) go to the same logger.
  const toPino = Logger.make<unknown, void>(({ logLevel, message }) => {
    const show = (m: unknown) => (typeof m === "string" ? m : JSON.stringify(m, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)))
    const text = Array.isArray(message) ? message.map(show).join(" ") : show(message)
    if (logLevel === "Debug" || logLevel === "Trace") log.debug(text)
    else if (logLevel === "Error" || logLevel === "Fatal") log.error(text)
    else if (logLevel === "Warn") log.warn(text)
    else log.info(text)
  })
  const layer = Layer.mergeAll(LiveLayer, Logger.layer([toPino]), Layer.succeed(References.MinimumLogLevel, debug ? "Debug" : "Info"))
  const rt = ManagedRuntime.make(layer)
  const rootlessFlag = rootless === "true" ? true : rootless === "false" ? false : undefined
  const exit = await rt.runPromiseExit(
    cmd(rest, { root, log, ...(systemdCgroup ? { systemdCgroup } : {}), ...(rootlessFlag !== undefined ? { rootless: rootlessFlag } : {}) }),
  )
  await rt.dispose()
  if (Exit.isSuccess(exit)) return exit.value
  const err = Cause.squash(exit.cause) as Error
  if (err instanceof HelpRequested) {
    process.stdout.write(commandHelp(name, err.flags))
    return 0
  }
  // runc prints the error whatever --log says: callers (podman, containerd) show it to the user.
  if (debug) log.debug({ error: (err as { _tag?: string })._tag ?? err.name }, err.stack ?? err.message)
  report(log, logFile !== undefined, err.message)
  return err instanceof CommandFailed ? err.status : 1
}
