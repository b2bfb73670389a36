/** What the command-line commands share: their type, argument helpers, pid files, exit statuses. */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Data, Effect } from "effect"
import type pino from "pino"
import { parseArgs, UsageError, type FlagSpec } from "./args.ts"
import { ConfigError, SyscallError, type ContainerError } from "../effects/errors.ts"
import type { ExitStatus } from "../effects/kernel.ts"
import type { Services } from "../effects/lifecycle.ts"
import { addon } from "../native/addon.ts"
import { signalNumber } from "../promise.ts"

export interface Ctx {
  readonly root: string
  readonly log: pino.Logger
  /** --systemd-cgroup: create and run make the container's cgroup as a systemd scope. */
  readonly systemdCgroup?: boolean
  /** runc's --rootless: "true"/"false" force it, absent or "auto" follows whether we are root. */
  readonly rootless?: boolean
}

/** `-h`/`--help` on a command: main prints its usage (these flags) and exits 0, as runc. */
export class HelpRequested extends Data.TaggedError("HelpRequested")<{ readonly flags: readonly FlagSpec[] }> {}

/** A request runc refuses on the command line's own rules (the message is runc's). */
export class Refused extends Data.TaggedError("Refused")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

/** A command's failure as runc reports it: its prefix ("exec failed") and exit status (255 for exec). */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{ readonly what: string; readonly status: number; readonly error: Error }> {
  override get message() {
    return `${this.what}: ${this.error.message}`
  }
}

export type CmdError = ContainerError | UsageError | HelpRequested | Refused | CommandFailed

/** A command: its arguments after the command name → an exit status. */
export type Cmd = (args: string[], ctx: Ctx) => Effect.Effect<number, CmdError, Services>

/** Every failure of `e` reported as runc does for the command: "<what>: <error>", exit `status`. */
export const failingAs =
  (what: string, status = 1) =>
  <A, R>(e: Effect.Effect<A, CmdError, R>): Effect.Effect<A, CmdError, R> =>
    Effect.mapError(e, (err) => (err instanceof HelpRequested || err instanceof UsageError || err instanceof CommandFailed ? err : new CommandFailed({ what, status, error: err })))

/**
 * runc's checkTerminal (utils_linux.go): a detaching command (create, run -d, exec -d) needs a
 * console socket for a terminal, and a console socket is only for a detaching command with one.
 */
export function checkTerminal(o: { detach: boolean; terminal: boolean; consoleSocket: string | undefined }): Refused | undefined {
  if (o.detach && o.terminal && !o.consoleSocket) return new Refused({ reason: "cannot allocate tty if runc will detach without setting console socket" })
  if ((!o.detach || !o.terminal) && o.consoleSocket) return new Refused({ reason: "cannot use console socket if runc will not detach or allocate tty" })
  return undefined
}

export const one = (positional: string[], what = "container id"): Effect.Effect<string, UsageError> =>
  positional.length === 1 && positional[0]
    ? Effect.succeed(positional[0])
    : Effect.fail(new UsageError(`expected exactly one ${what}, got ${positional.length}`))

const HELP: FlagSpec = { name: "help", alias: "h", value: false }

/** A command's flags (and -h/--help, which every command takes, as runc's). */
export const parse = (args: string[], specs: FlagSpec[], stopAtPositional = false) =>
  Effect.try({
    try: () => parseArgs(args, [...specs, HELP], stopAtPositional),
    catch: (e) => (e instanceof UsageError ? e : new UsageError(String(e))),
  }).pipe(Effect.filterOrFail((p) => p.flags.get("help") !== true, () => new HelpRequested({ flags: specs })))

/**
 * Writes `pid` to `file` atomically, as runc's createPidFile (callers poll for it): a temporary in
 * the same directory, then rename. The temporary's name is random and it is made with
 * O_CREAT|O_EXCL|O_NOFOLLOW: a symlink or file planted at a guessable name would otherwise be
 * followed and truncated. Fails with a SyscallError naming the file; the temporary never stays.
 */
export const writePidFile = (file: string | undefined, pid: number | undefined): Effect.Effect<void, SyscallError> =>
  Effect.suspend(() => {
    if (!file || pid === undefined) return Effect.void
    const abs = path.resolve(file)
    const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.${randomBytes(8).toString("hex")}`)
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants
    let step = "open"
    let at = tmp
    let made = false
    try {
      const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644)
      made = true
      try {
        step = "write"
        fs.writeSync(fd, `${pid}`)
      } finally {
        fs.closeSync(fd)
      }
      step = "rename"
      at = abs
      fs.renameSync(tmp, abs)
      return Effect.void
    } catch (e) {
      if (made) fs.rmSync(tmp, { force: true })
      return Effect.fail(new SyscallError({ syscall: `${step} (--pid-file)`, errno: (e as NodeJS.ErrnoException).code ?? String(e), path: at }))
    }
  })

/**
 * Runs `step` (what a command does once the container's init exists); if it fails in any way (an
 * error, a defect, an interruption) the container is destroyed first: nothing stays behind.
 */
export const orDestroy =
  (c: { destroy(opts: { readonly force?: boolean }): Effect.Effect<void, unknown> }) =>
  <A, E, R>(step: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    step.pipe(Effect.onError(() => c.destroy({ force: true }).pipe(Effect.ignore)))

/** The exit status runc gives for a process status: the code, or 128 + signal. */
export const exitCode = (s: ExitStatus | null): number => (s === null ? 0 : s.signal !== null ? 128 + s.signal : (s.code ?? 0))

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH"] as const

/** Runs `wait` with our signals forwarded through `send`, as runc does for a process in the foreground. */
export const forwardingSignals = <A, E>(send: (sig: number) => Effect.Effect<void, unknown>, wait: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const forward = (sig: NodeJS.Signals) => void Effect.runPromise(send(signalNumber(sig)).pipe(Effect.ignore))
      for (const s of FORWARDED) process.on(s, forward)
      return forward
    }),
    () => wait,
    (forward) => Effect.sync(() => FORWARDED.forEach((s) => process.off(s, forward))),
  )

/**
 * Proxies our terminal to a container's pty master: stdin raw, bytes both ways, window size on
 * SIGWINCH. Returns the Effect that undoes it once the container's output is drained (the read
 * ends with EIO when the last process holding the pty is gone; at most a second's wait).
 */
export function proxyTerminal(master: number, resize: (rows: number, columns: number) => void): Effect.Effect<void> {
  const stdin = process.stdin
  const wasRaw = stdin.isTTY ? stdin.isRaw : false
  if (stdin.isTTY) {
    stdin.setRawMode(true)
    // As runc's console.SetRaw (cfmakeraw) on its stdin: no output processing either. libuv's raw mode
    // keeps ONLCR, and the container's pty has already made each \n a \r\n: lines would end \r\r\n.
    // Leaving raw mode restores the terminal as it was (libuv saved it), OPOST included.
    addon.clearOpost(0)
  }
  // The read stream owns the fd (it closes it when destroyed); a close of our own could hit the
  // same number reused by then for another file.
  const fromPty = fs.createReadStream("", { fd: master, autoClose: true })
  const toPty = fs.createWriteStream("", { fd: master, autoClose: false })
  fromPty.on("error", () => undefined) // EIO once the container side is gone
  toPty.on("error", () => undefined)
  fromPty.pipe(process.stdout, { end: false })
  stdin.pipe(toPty)
  const onWinch = () => {
    if (process.stdout.isTTY) resize(process.stdout.rows, process.stdout.columns)
  }
  onWinch()
  process.on("SIGWINCH", onWinch)
  const drained = new Promise<void>((resolve) => fromPty.once("close", resolve))
  return Effect.promise(async () => {
    await Promise.race([drained, new Promise((r) => setTimeout(r, 1000))])
    process.off("SIGWINCH", onWinch)
    stdin.unpipe(toPty)
    if (stdin.isTTY) stdin.setRawMode(wasRaw)
    stdin.pause()
    fromPty.destroy()
  })
}

/** The most fds --preserve-fds may pass: the kernel's default fs.nr_open. */
export const MAX_PRESERVED_FDS = 2 ** 20

/**
 * The fds a command passes on, as runc: 3 … 3+N-1 for --preserve-fds N, and those systemd socket
 * activation gave us (LISTEN_FDS) before them. Returns the fds and the env the program then needs.
 */
export function preservedFds(flag: string | undefined): { fds: number[]; env: string[] } {
  const n = flag === undefined ? 0 : /^\d{1,8}$/.test(flag) ? Number(flag) : NaN
  // No process can hold more fds than the kernel's nr_open ceiling (2^20 by default).
  if (!Number.isInteger(n) || n > MAX_PRESERVED_FDS)
    throw new ConfigError({ path: "--preserve-fds", reason: `"${flag}" is not a count of fds from 0 to ${MAX_PRESERVED_FDS}` })
  const listen = Number(process.env.LISTEN_FDS ?? "0")
  const fromSystemd = Number.isInteger(listen) && listen > 0 ? listen : 0
  const total = fromSystemd + n
  if (total > MAX_PRESERVED_FDS)
    throw new ConfigError({ path: "LISTEN_FDS", reason: `${fromSystemd} socket-activation fds and --preserve-fds ${n} are more than ${MAX_PRESERVED_FDS} fds` })
  return {
    fds: Array.from({ length: total }, (_, i) => 3 + i),
    env: fromSystemd > 0 ? [`LISTEN_FDS=${fromSystemd}`, "LISTEN_PID=1"] : [],
  }
}
