/** What the command-line commands share: their type, argument helpers, pid files, exit statuses. */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import type pino from "pino"
import { parseArgs, UsageError, type FlagSpec } from "./args.ts"
import { ConfigError, type ContainerError } from "../effects/errors.ts"
import type { ExitStatus } from "../effects/kernel.ts"
import type { Services } from "../effects/lifecycle.ts"
import { signalNumber } from "../promise.ts"

export interface Ctx {
  readonly root: string
  readonly log: pino.Logger
}

/** A command: its arguments after the command name → an exit status. */
export type Cmd = (args: string[], ctx: Ctx) => Effect.Effect<number, ContainerError | UsageError, Services>

export const one = (positional: string[], what = "container id"): Effect.Effect<string, UsageError> =>
  positional.length === 1 && positional[0]
    ? Effect.succeed(positional[0])
    : Effect.fail(new UsageError(`expected exactly one ${what}, got ${positional.length}`))

export const parse = (args: string[], specs: FlagSpec[], stopAtPositional = false) =>
  Effect.try({
    try: () => parseArgs(args, specs, stopAtPositional),
    catch: (e) => (e instanceof UsageError ? e : new UsageError(String(e))),
  })

export const writePidFile = (file: string | undefined, pid: number | undefined) =>
  Effect.sync(() => {
    if (!file || pid === undefined) return
    // Atomically, as runc does: callers poll for this file.
    const abs = path.resolve(file)
    const tmp = `${path.dirname(abs)}/.${path.basename(abs)}.tmp`
    fs.writeFileSync(tmp, `${pid}`)
    fs.renameSync(tmp, abs)
  })

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
  if (stdin.isTTY) stdin.setRawMode(true)
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
