/**
 * `xcontainer exec [flags] <id> <command> [args…]` with runc's flags. As runc,
 * the process starts from the container's config process (user, env, caps,
 * cwd) and the flags override it; `-p` gives a whole process.json instead.
 */
import * as fs from "node:fs"
import { Effect } from "effect"
import { bool, list, str, UsageError, type FlagSpec, type Parsed } from "./args.ts"
import { checkTerminal, exitCode, failingAs, forwardingSignals, parse, preservedFds, proxyTerminal, Refused, writePidFile, type Cmd, type Ctx } from "./common.ts"
import { addon } from "../native/addon.ts"
import { parseSubCgroupArgs } from "../effects/cgroups-sub.ts"
import { ConfigError } from "../effects/errors.ts"
import { Container } from "../machines/container.ts"
import type { ProcessSpec } from "../config/spec.ts"
import { execProcess } from "../config/exec-process.ts"
import { MAX_ID } from "../config/spec-atoms.ts"
import { parseJsonText } from "../config/json-text.ts"
import { readBoundedFile } from "../config/read-file.ts"

const EXEC_FLAGS: FlagSpec[] = [
  { name: "process", alias: "p", value: true },
  { name: "cwd", value: true },
  { name: "env", alias: "e", value: true, multi: true },
  { name: "user", alias: "u", value: true },
  { name: "additional-gids", alias: "g", value: true, multi: true },
  { name: "cap", alias: "c", value: true, multi: true },
  { name: "no-new-privs", value: false },
  { name: "tty", alias: "t", value: false },
  { name: "console-socket", value: true },
  { name: "detach", alias: "d", value: false },
  { name: "pid-file", value: true },
  { name: "ignore-paused", value: false },
  { name: "preserve-fds", value: true },
  { name: "process-label", value: true },
  { name: "apparmor", value: true },
  // runc 1.2's --cgroup [<controller>[,<controller>]:]<path>, repeatable (effects/cgroups-sub.ts).
  { name: "cgroup", value: true, multi: true },
]

/**
 * `-u uid[:gid]`: numbers only, never looked up as names (CVE-2016-3697), and within runc's range:
 * 4294967295 is (uid_t)-1, which setresuid reads as "leave unchanged" (the process would stay root).
 */
function parseUser(u: string): { uid: number; gid?: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(u)
  if (!m) throw new ConfigError({ path: "--user", reason: `"${u}" is not uid[:gid]` })
  const [uid, gid] = [Number(m[1]), m[2] === undefined ? undefined : Number(m[2])]
  if (uid > MAX_ID || (gid ?? 0) > MAX_ID) throw new ConfigError({ path: "--user", reason: `uids and gids must be in range 0-${MAX_ID}` })
  return { uid, ...(gid !== undefined ? { gid } : {}) }
}

const numbers = (flag: string, xs: string[]): number[] =>
  xs.flatMap((x) => x.split(",")).map((x) => {
    if (!/^\d+$/.test(x)) throw new ConfigError({ path: flag, reason: `"${x}" is not a number` })
    return Number(x)
  })

/**
 * A process.json given with -p, as runc decodes it into a Go struct: a missing `user` is the zero
 * value, uid 0 and gid 0. The rest is validated with the container's config (one validator).
 */
export function processFromFile(json: unknown): unknown {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return json
  return "user" in json ? json : { ...json, user: { uid: 0, gid: 0 } }
}

export const execCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    const p = yield* parse(args, EXEC_FLAGS, true)
    const [id, ...command] = p.rest
    if (!id) return yield* Effect.fail(new UsageError("usage: exec [flags] <container-id> <command> [args…]"))
    // As runc: past the arguments' count, every failure is "exec failed: …" with status 255.
    return yield* run(p, id, command, ctx).pipe(failingAs("exec failed", 255))
  })

const run = (p: Parsed, id: string, command: string[], ctx: Ctx) =>
  Effect.gen(function* () {
    const preserved = yield* Effect.try({ try: () => preservedFds(str(p, "preserve-fds")), catch: (e) => e as ConfigError })
    const c = yield* Container.load({ root: ctx.root, id })
    // runc's execProcess, in its order and words.
    const status = c.status()
    const refusal =
      status === "stopped"
        ? "cannot exec in a stopped container"
        : status === "paused" && !bool(p, "ignore-paused")
          ? "cannot exec in a paused container (use --ignore-paused to override)"
          : !str(p, "process") && command.length === 0
            ? "process args cannot be empty"
            : undefined
    if (refusal) return yield* new Refused({ reason: refusal }).pipe(Effect.ensuring(c.release()))
    const process_ = yield* Effect.try({
      try: (): unknown => {
        const file = str(p, "process")
        // Bounded, regular files only, no symlink (config/read-file.ts).
        if (file) return processFromFile(parseJsonText(readBoundedFile(file, { field: "--process", noFollow: true }), "--process", file))
        const base = c.config()?.process
        if (!base) throw new ConfigError({ path: "process", reason: "the container has no process to start from" })
        const user = str(p, "user") ? parseUser(str(p, "user")!) : undefined
        const apparmor = str(p, "apparmor")
        const label = str(p, "process-label")
        const cwd = str(p, "cwd")
        // The library's rule (config/exec-process.ts): the config's process with the flags on top.
        const proc: ProcessSpec = execProcess(base, {
          args: command,
          terminal: bool(p, "tty"),
          ...(cwd !== undefined ? { cwd } : {}),
          env: [...list(p, "env"), ...preserved.env],
          ...(user ? { user } : {}),
          additionalGids: numbers("--additional-gids", list(p, "additional-gids")),
          capabilities: list(p, "cap"),
          noNewPrivileges: bool(p, "no-new-privs"),
          ...(apparmor ? { apparmorProfile: apparmor } : {}),
          ...(label ? { selinuxLabel: label } : {}),
        })
        return proc
      },
      catch: (e) => (e instanceof ConfigError || e instanceof UsageError ? e : new ConfigError({ path: "--process", reason: (e as Error).message })),
    }).pipe(Effect.tapError(() => c.release()))
    const subCgroups = list(p, "cgroup").length > 0 ? parseSubCgroupArgs(list(p, "cgroup")) : undefined
    if (subCgroups instanceof ConfigError) return yield* subCgroups.pipe(Effect.ensuring(c.release()))
    const consoleSocket = str(p, "console-socket")
    const terminal = typeof process_ === "object" && process_ !== null && (process_ as { terminal?: unknown }).terminal === true
    const refused = checkTerminal({ detach: bool(p, "detach"), terminal, consoleSocket })
    if (refused) return yield* refused.pipe(Effect.ensuring(c.release()))
    const proc = yield* c.exec({ process: process_, preserveFds: preserved.fds, ignorePaused: bool(p, "ignore-paused"), ...(consoleSocket ? { consoleSocket } : {}), ...(subCgroups ? { subCgroups } : {}) }).pipe(Effect.tapError(() => c.release()))
    // The process runs: a pid file that cannot be written kills it (nobody could track it), as runc.
    yield* writePidFile(str(p, "pid-file"), proc.pid).pipe(
      Effect.tapError(() =>
        Effect.sync(() => (proc.console !== undefined ? fs.closeSync(proc.console) : undefined)).pipe(
          Effect.andThen(proc.signal(9).pipe(Effect.ignore)),
          Effect.andThen(proc.wait()),
          Effect.ensuring(c.release()),
        ),
      ),
    )
    ctx.log.debug({ id, pid: proc.pid }, "exec")
    if (bool(p, "detach")) {
      if (proc.console !== undefined) fs.closeSync(proc.console)
      yield* c.release()
      return 0
    }
    const master = proc.console
    const stopProxy = master !== undefined ? proxyTerminal(master, (rows, cols) => void addon.setWinsize(master, rows, cols)) : undefined
    const status_ = yield* forwardingSignals((sig) => proc.signal(sig), proc.wait()).pipe(Effect.ensuring(stopProxy ?? Effect.void))
    yield* c.release()
    return exitCode(status_)
  })
