/**
 * The Kernel service as an in-memory model, for machine and property tests
 * (youki's `syscall/test.rs`). Processes are records; nothing is forked.
 *
 * What the model reads from the plan (the same wire ops KernelLive sends):
 *   CLONE         CLONE_NEWPID in n[0]: the init is PID 1 of its own namespace,
 *                 so only SIGKILL reaches it (signal(7): an ancestor's signal to
 *                 a namespace init is dropped unless it has a handler);
 *   RESOLVE_EXEC  s[0], the program: unknown to `programs` → InitFailed ENOENT,
 *                 as the helper reports a missing binary;
 *   EXEC          s[0], argv: picks the program's behaviour after start.
 *
 * spawnInit:  plan → (failAt: stage "helper" fails here) → pid, beforeGo(ref)
 *             → (resolve, failAt: stage "init" fails here, init killed) → ready
 * start:      the fifo must exist; a dead init → InitExited{stage: "start"};
 *             the program then runs until killed or exits after its `exitAfterMs`.
 * mkfifo:     writes an empty regular file (lifecycle chowns it, `reconcile`
 *             tests its existence) and records the path.
 *
 * Every ProcessRef handed out is "held" (the pidfd KernelLive would open)
 * until `release`; `KernelModelControl` shows live processes, holds and
 * misuse (a release of a ref that is not held: in KernelLive that closes an fd
 * number that may belong to someone else by then).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Deferred, Effect, Exit, Layer } from "effect"
import { CLONE_FLAGS } from "../config/linux-names.ts"
import { Op, type WireOp } from "../native/protocol.ts"
import { InitExited, InitFailed, SyscallError } from "./errors.ts"
import { Kernel, type ExitStatus, type ProcessRef } from "./kernel.ts"

/** What a program does once started: exit after `exitAfterMs` with `code`, or (no exitAfterMs) run until killed. */
export interface ProgramBehaviour {
  readonly exitAfterMs?: number
  readonly code?: number
}

/** Programs by basename of argv[0]. */
export const DEFAULT_PROGRAMS: Readonly<Record<string, ProgramBehaviour>> = {
  true: { exitAfterMs: 0, code: 0 },
  false: { exitAfterMs: 0, code: 1 },
  sleep: {},
  sh: {},
  cat: {},
}

export interface KernelModelOptions {
  readonly programs?: Readonly<Record<string, ProgramBehaviour>>
  /** Fault injection: a failure for this plan (stage "helper": before the clone; "init": after beforeGo). */
  readonly failAt?: (plan: readonly WireOp[]) => InitFailed | undefined
}

/** A model process as tests see it. */
export interface ModelProcess {
  readonly pid: number
  readonly startTime: number
  readonly args: readonly string[]
  readonly phase: "barrier" | "running" | "exited"
  readonly ownPidNs: boolean
  readonly signals: readonly number[]
  readonly exit: ExitStatus | undefined
}

export interface KernelModelControlService {
  /** Processes that have not exited. */
  readonly live: () => ModelProcess[]
  /** Every process ever spawned. */
  readonly all: () => ModelProcess[]
  /** Whether `pid` names a process that has not exited (the cgroups model asks). */
  readonly isAlive: (pid: number) => boolean
  /** How many refs are held (pidfds KernelLive would have open). */
  readonly holds: () => number
  /** Misuse seen so far (e.g. a release of a ref not held). */
  readonly problems: () => string[]
  /** Makes a running process exit now, as if its program ended. */
  readonly exit: (pid: number, status: ExitStatus) => void
}

export class KernelModelControl extends Context.Service<KernelModelControl, KernelModelControlService>()("xcontainer/KernelModelControl") {}

// Signals whose default action terminates the process (signal(7): Term and Core).
const TERMINATING = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 25, 26, 27, 29, 30, 31])

interface Proc {
  readonly pid: number
  readonly startTime: number
  readonly args: readonly string[]
  readonly ownPidNs: boolean
  readonly behaviour: ProgramBehaviour
  phase: "barrier" | "running" | "exited"
  signals: number[]
  exit: ExitStatus | undefined
  readonly exited: Deferred.Deferred<ExitStatus>
}

const utf8 = new TextDecoder()
const str = (v: Uint8Array | string | undefined): string => (v === undefined ? "" : typeof v === "string" ? v : utf8.decode(v))
/** A NUL-separated, NUL-terminated list (argv) back into strings. */
const nulSplit = (v: Uint8Array | string | undefined): string[] => str(v).split("\0").slice(0, -1)

/** The kernel model with its control; `KernelModel` is this with the defaults. */
export const kernelModel = (opts: KernelModelOptions = {}): Layer.Layer<Kernel | KernelModelControl> =>
  Layer.effectContext(
    Effect.sync(() => {
      const programs = opts.programs ?? DEFAULT_PROGRAMS
      const procs = new Map<number, Proc>()
      // Refs by identity: the model's stand-in for open pidfds; `parent` refs get exit statuses.
      const held = new Map<ProcessRef, { parent: boolean }>()
      const problems: string[] = []
      let nextPid = 1000
      let clock = 1

      const die = (p: Proc, status: ExitStatus) => {
        if (p.phase === "exited") return
        p.phase = "exited"
        p.exit = status
        Deferred.doneUnsafe(p.exited, Exit.succeed(status))
      }

      const deliver = (p: Proc, sig: number) => {
        if (p.phase === "exited" || sig === 0) return
        p.signals.push(sig)
        // A namespace's init ignores signals from outside it that it has no handler for; SIGKILL is forced.
        if (sig === 9 || (!p.ownPidNs && TERMINATING.has(sig))) die(p, { code: null, signal: sig })
      }

      const hold = (ref: ProcessRef, parent: boolean) => {
        held.set(ref, { parent })
        return ref
      }

      const view = (p: Proc): ModelProcess => ({
        pid: p.pid,
        startTime: p.startTime,
        args: p.args,
        phase: p.phase,
        ownPidNs: p.ownPidNs,
        signals: [...p.signals],
        exit: p.exit,
      })

      const release = (ref: ProcessRef) =>
        Effect.sync(() => {
          if (!held.delete(ref)) problems.push(`release of pid ${ref.pid}, whose ref is not held (already released?)`)
        })

      const kernel = Kernel.of({
        spawnInit: (req) =>
          Effect.gen(function* () {
            const clone = req.plan.find((o) => o.op === Op.CLONE)
            const ownPidNs = ((clone?.n?.[0] ?? 0n) & BigInt(CLONE_FLAGS.pid)) !== 0n
            const args = nulSplit(req.plan.find((o) => o.op === Op.EXEC)?.s?.[0])
            const program = str(req.plan.find((o) => o.op === Op.RESOLVE_EXEC)?.s?.[0]) || (args[0] ?? "")
            const injected = opts.failAt?.(req.plan)
            if (injected?.stage === "helper") return yield* injected

            const proc: Proc = {
              pid: nextPid++,
              startTime: clock++,
              args,
              ownPidNs,
              behaviour: programs[path.posix.basename(program)] ?? {},
              phase: "barrier",
              signals: [],
              exit: undefined,
              exited: yield* Deferred.make<ExitStatus>(),
            }
            procs.set(proc.pid, proc)
            const ref = hold({ pid: proc.pid, startTime: proc.startTime, fd: -1 }, true)
            // As KernelLive: a failure from here on kills and releases the init.
            const undo = Effect.sync(() => die(proc, { code: null, signal: 9 })).pipe(Effect.andThen(release(ref)))
            const rest = Effect.gen(function* () {
              yield* req.beforeGo(ref)
              if (req.onSync && req.plan.some((o) => o.op === Op.SYNC)) yield* req.onSync(ref)
              // A terminal's master: /dev/null stands in (the callee owns and closes it).
              if (req.onConsole && req.plan.some((o) => o.op === Op.CONSOLE)) yield* req.onConsole(fs.openSync("/dev/null", "r+"))
              if (!(path.posix.basename(program) in programs))
                return yield* new InitFailed({ stage: "init", op: "resolve_exec", syscall: "execve", errno: "ENOENT", path: program })
              if (injected) return yield* injected
              if (req.barrier === false) {
                // An exec'd process: no barrier, it runs at once.
                proc.phase = "running"
                const after = proc.behaviour.exitAfterMs
                if (after !== undefined) setTimeout(() => die(proc, { code: proc.behaviour.code ?? 0, signal: null }), after)
              }
              return ref
            })
            return yield* rest.pipe(Effect.tapError(() => undo))
          }),

        start: (init, fifo) =>
          Effect.gen(function* () {
            const p = procs.get(init.pid)
            if (!p || p.phase === "exited") {
              const exit = p?.exit
              return yield* new InitExited({ stage: "start", code: exit?.code ?? null, signal: exit?.signal ?? null })
            }
            if (!fs.existsSync(fifo)) return yield* new SyscallError({ syscall: "open", errno: "ENOENT", path: fifo })
            if (p.phase === "running") return yield* new SyscallError({ syscall: "read", errno: "EAGAIN", path: fifo })
            p.phase = "running"
            const after = p.behaviour.exitAfterMs
            if (after !== undefined) setTimeout(() => die(p, { code: p.behaviour.code ?? 0, signal: null }), after)
          }),

        mkfifo: (file) =>
          Effect.try({
            try: () => fs.writeFileSync(file, "", { flag: "wx", mode: 0o600 }),
            catch: (e) => new SyscallError({ syscall: "mkfifo", errno: (e as NodeJS.ErrnoException).code ?? String(e), path: file }),
          }),

        attach: (pid, startTime) =>
          Effect.sync(() => {
            const p = procs.get(pid)
            if (!p || p.phase === "exited" || p.startTime !== startTime) return undefined
            return hold({ pid, startTime, fd: -1 }, false)
          }),

        signal: (ref, sig) =>
          Effect.gen(function* () {
            if (!held.has(ref)) return yield* new SyscallError({ syscall: "pidfd_send_signal", errno: "EBADF", path: `pid ${ref.pid}` })
            const p = procs.get(ref.pid)
            if (!p || p.phase === "exited") return yield* new SyscallError({ syscall: "pidfd_send_signal", errno: "ESRCH", path: `pid ${ref.pid}` })
            deliver(p, sig)
          }),

        signalPid: (pid, sig, stillMember) =>
          Effect.gen(function* () {
            const p = procs.get(pid)
            if (!p) return
            if (stillMember && !(yield* stillMember(pid))) return
            deliver(p, sig)
          }),

        awaitExit: (ref) =>
          Effect.gen(function* () {
            const p = procs.get(ref.pid)
            if (!p || p.startTime !== ref.startTime) return null
            const status = yield* Deferred.await(p.exited)
            // Only the parent reaps and learns the status (KernelLive: ECHILD → null).
            return held.get(ref)?.parent === false ? null : status
          }),

        release,
      })

      const control = KernelModelControl.of({
        live: () => [...procs.values()].filter((p) => p.phase !== "exited").map(view),
        all: () => [...procs.values()].map(view),
        isAlive: (pid) => {
          const p = procs.get(pid)
          return p !== undefined && p.phase !== "exited"
        },
        holds: () => held.size,
        problems: () => [...problems],
        exit: (pid, status) => {
          const p = procs.get(pid)
          if (p) die(p, status)
        },
      })
      return Context.make(Kernel, kernel).pipe(Context.add(KernelModelControl, control))
    }),
  )

/** The kernel model with the default programs and no injected failures. */
export const KernelModel = kernelModel()
