/**
 * The Kernel service over the addon and the init helper (the exchange is drawn
 * at the top of native/init/protocol.h). The helper runs from a sealed memfd
 * made once per process (CVE-2019-5736); every process is held by a pidfd and
 * its exit arrives through the event loop.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import { Effect, Layer, Queue } from "effect"
import { addon, helperPath } from "../native/addon.ts"
import type { Watch } from "../native/addon.ts"
import { decodeMessage, encodeGo, encodePlan, Op, opName, type HelperMessage } from "../native/protocol.ts"
import { InitExited, InitFailed, SyscallError } from "./errors.ts"
import { Kernel, type ExitStatus, type ProcessRef } from "./kernel.ts"
import { attachPid, readStartTime } from "./proc.ts"

const errnoNames = new Map<number, string>(Object.entries(os.constants.errno).map(([k, v]) => [v, k]))
/** "ENOENT" for 2. */
export const errnoName = (n: number): string => errnoNames.get(n) ?? `errno ${n}`

/** Turns an addon (or fs) exception into the tagged error. */
export const toSyscallError = (syscall: string, path?: string) => (e: unknown): SyscallError => {
  const err = e as NodeJS.ErrnoException
  return new SyscallError({ syscall: err.syscall ?? syscall, errno: err.code ?? String(e), path: err.path ?? path })
}

export { readStartTime } from "./proc.ts"

let sealedFd: number | undefined
/** The helper, copied once into a sealed memfd. */
const sealedHelper = (): number => (sealedFd ??= addon.sealHelper(helperPath()))

/** How long a failed spawn waits for the helper to see EOF and exit before it kills it. */
const HELPER_GRACE_MS = 5000

type Incoming = { readonly kind: "msg"; readonly msg: HelperMessage; readonly fds: number[] } | { readonly kind: "end"; readonly error: Error | null }

/** One helper conversation: the socket, its watch and the messages received so far. */
interface Channel {
  readonly fd: number
  readonly watch: Watch
  readonly inbox: Queue.Queue<Incoming>
}

const openChannel = (fd: number): Effect.Effect<Channel> =>
  Effect.gen(function* () {
    const inbox = yield* Queue.unbounded<Incoming>()
    const watch = addon.receive(
      fd,
      (data, fds) => {
        let msg: HelperMessage
        try {
          msg = decodeMessage(data)
        } catch (e) {
          Queue.offerUnsafe(inbox, { kind: "end", error: e as Error })
          return
        }
        Queue.offerUnsafe(inbox, { kind: "msg", msg, fds })
      },
      (error) => Queue.offerUnsafe(inbox, { kind: "end", error }),
    )
    return { fd, watch, inbox }
  })

const closeChannel = (c: Channel) =>
  Effect.sync(() => {
    c.watch.close()
    try {
      fs.closeSync(c.fd)
    } catch {
      /* already closed */
    }
  })

/** Where in the plan an op index falls: before the clone it ran in the helper. */
const stageOf = (op: number): "helper" | "init" => (op <= Op.CLONE ? "helper" : "init")

const initFailed = (m: Extract<HelperMessage, { type: "error" }>) =>
  new InitFailed({ stage: stageOf(m.op), op: opName(m.op).toLowerCase(), syscall: m.syscall, errno: errnoName(m.errno), path: m.detail })

export const KernelLive = Layer.sync(Kernel, () => {
  const exits = new Map<number, { promise: Promise<ExitStatus | null>; watch: Watch }>()
  const channels = new Map<number, Channel>()

  const awaitExitPromise = (p: ProcessRef): Promise<ExitStatus | null> => {
    const known = exits.get(p.fd)
    if (known) return known.promise
    let watch: Watch | undefined
    const promise = new Promise<ExitStatus | null>((resolve) => {
      watch = addon.watchExit(p.fd, resolve)
    })
    if (watch) exits.set(p.fd, { promise, watch })
    return promise
  }

  const kill = (p: ProcessRef) =>
    Effect.promise(async () => {
      try {
        addon.pidfdSendSignal(p.fd, 9)
      } catch {
        /* already gone */
      }
      await awaitExitPromise(p)
    })

  const release = (p: ProcessRef) =>
    Effect.gen(function* () {
      const ch = channels.get(p.fd)
      if (ch) {
        channels.delete(p.fd)
        yield* closeChannel(ch)
      }
      const ex = exits.get(p.fd)
      if (ex) {
        ex.watch.close()
        exits.delete(p.fd)
      }
      try {
        fs.closeSync(p.fd)
      } catch {
        /* already closed */
      }
    })

  /** Waits for the exit of the process behind `fd` (killing it first, in case), collects it and closes fd. */
  const reapOrphan = (fd: number) =>
    Effect.promise(
      () =>
        new Promise<void>((resolve) => {
          try {
            addon.pidfdSendSignal(fd, 9)
          } catch {
            /* dead already */
          }
          try {
            addon.watchExit(fd, () => {
              fs.closeSync(fd)
              resolve()
            })
          } catch {
            // Not a pidfd after all (a confused helper): nothing to reap.
            fs.closeSync(fd)
            resolve()
          }
        }),
    )

  /** The next message, or an InitExited/InitFailed when the conversation ended early. */
  const next = (ch: Channel, stage: string, init?: ProcessRef) =>
    Effect.gen(function* () {
      const item = yield* Queue.take(ch.inbox)
      if (item.kind === "msg") {
        if (item.msg.type === "error") {
          // An fd with the error is the pidfd of the init the helper killed after a failed clone: our
          // child (CLONE_PARENT) that only we can reap.
          yield* Effect.forEach(item.fds, reapOrphan, { discard: true })
          return yield* initFailed(item.msg)
        }
        return item
      }
      const status = init ? yield* Effect.promise(() => awaitExitPromise(init)) : null
      return yield* new InitExited({ stage, code: status?.code ?? null, signal: status?.signal ?? null })
    })

  return {
    spawnInit: (req) =>
      Effect.gen(function* () {
        const [mine, theirs] = yield* Effect.try({ try: () => addon.socketpair(), catch: toSyscallError("socketpair") })
        const ch = yield* openChannel(mine)
        const helper = yield* Effect.try({
          try: () =>
            addon.spawnHelper({ helperFd: sealedHelper(), argv: ["xcontainer-init"], env: [], stdio: req.stdio, socketFd: theirs, extraFds: req.extraFds ?? [] }),
          catch: toSyscallError("spawn", "xcontainer-init"),
        }).pipe(
          Effect.ensuring(Effect.sync(() => fs.closeSync(theirs))),
          Effect.tapError(() => closeChannel(ch)),
        )
        // The helper is our child and exits right after handing over the init (or after reporting a
        // failure, or at EOF on the socket). Its exit status is collected before spawnInit settles,
        // either way: reaped "whenever the loop gets to it", it stayed a zombie for as long as the
        // caller went on without polling (a run of synchronous ConfigErrors: minutes, in the chaos
        // battery's hostile part).
        const helperGone = new Promise<void>((resolve) =>
          addon.watchExit(helper.pidfd, () => {
            fs.closeSync(helper.pidfd)
            resolve()
          }),
        )
        const reapHelper = Effect.promise(() => helperGone)
        // On failure the channel is closed first, which ends a helper still waiting on it; one that
        // has not exited after HELPER_GRACE_MS (stuck in an op) is killed.
        const stopHelper = Effect.promise(async () => {
          let gone = false
          const timer = setTimeout(() => {
            if (gone) return
            try {
              addon.pidfdSendSignal(helper.pidfd, 9)
            } catch {
              /* exited meanwhile */
            }
          }, HELPER_GRACE_MS)
          await helperGone
          gone = true
          clearTimeout(timer)
        })
        let init: ProcessRef | undefined
        const takeConsole = (fds: readonly number[]) => {
          const [master, ...extra] = fds
          extra.forEach((fd) => fs.closeSync(fd))
          if (master === undefined) return Effect.fail(new InitFailed({ stage: "init", op: "console", syscall: "protocol", errno: "EPROTO", path: "no fd" }))
          if (!req.onConsole) return Effect.sync(() => fs.closeSync(master))
          return req.onConsole(master)
        }
        const takeListener = (p: ProcessRef, fds: readonly number[]) => {
          const [listener, ...extra] = fds
          extra.forEach((fd) => fs.closeSync(fd))
          if (listener === undefined) return Effect.fail(new InitFailed({ stage: "init", op: "seccomp", syscall: "protocol", errno: "EPROTO", path: "no listener fd" }))
          if (!req.onSeccomp) return Effect.sync(() => fs.closeSync(listener))
          return req.onSeccomp(p, listener)
        }
        const run = Effect.gen(function* () {
          yield* Effect.try({ try: () => addon.send(mine, encodePlan(req.plan)), catch: toSyscallError("send", "plan") })
          const child = yield* next(ch, "clone")
          const pidfd = child.fds[0]
          if (child.msg.type !== "child" || pidfd === undefined)
            return yield* new InitFailed({ stage: "helper", op: "clone", syscall: "protocol", errno: "EPROTO", path: `unexpected ${child.msg.type}` })
          init = { pid: child.msg.pid, startTime: readStartTime(child.msg.pid) ?? 0, fd: pidfd }
          yield* req.beforeGo(init)
          const go = (states?: { create: string; start: string }) =>
            Effect.try({ try: () => addon.send(mine, encodeGo(states)), catch: toSyscallError("send", "go") })
          yield* go(req.hookStates?.(init))
          if (req.barrier === false) {
            // No start barrier (an exec'd process): EOF means execve went through, a message that it failed.
            let item = yield* Queue.take(ch.inbox)
            while (item.kind === "msg" && (item.msg.type === "console" || item.msg.type === "seccomp")) {
              yield* item.msg.type === "console" ? takeConsole(item.fds) : takeListener(init, item.fds)
              item = yield* Queue.take(ch.inbox)
            }
            yield* closeChannel(ch)
            if (item.kind === "msg" && item.msg.type === "error") return yield* initFailed(item.msg)
            return init
          }
          let ready = yield* next(ch, "init", init)
          // At its sync op the init waits for us to run the runtime-namespace hooks; a console op hands
          // us the terminal's master.
          while (ready.msg.type === "sync" || ready.msg.type === "console" || ready.msg.type === "seccomp") {
            if (ready.msg.type === "console") yield* takeConsole(ready.fds)
            else if (ready.msg.type === "seccomp") yield* takeListener(init, ready.fds)
            else {
              if (req.onSync) yield* req.onSync(init)
              yield* go()
            }
            ready = yield* next(ch, "init", init)
          }
          if (ready.msg.type !== "ready")
            return yield* new InitFailed({ stage: "init", op: "wait_start", syscall: "protocol", errno: "EPROTO", path: `unexpected ${ready.msg.type}` })
          channels.set(init.fd, ch)
          return init
        })
        return yield* run.pipe(
          Effect.tap(() => reapHelper),
          Effect.tapError(() =>
            Effect.gen(function* () {
              if (init) {
                yield* kill(init)
                yield* release(init)
              } else yield* closeChannel(ch)
              yield* stopHelper
              yield* Effect.promise(() => new Promise<void>((r) => setImmediate(r)))
            }),
          ),
        )
      }),

    start: (init, fifo) =>
      Effect.gen(function* () {
        const exited = awaitExitPromise(init)
        // open(O_RDONLY) of a fifo blocks until the init opens it for writing: do it on the thread pool.
        // If the init's exit is seen first, it may have died before the barrier, or started, exec'd and
        // exited already (a /bin/true): open the write side ourselves, which releases a blocked open,
        // and let the byte in the fifo tell which ("0" is written only when the init passed the barrier).
        const opened = fs.promises.open(fifo, "r")
        const first = yield* Effect.promise(() => Promise.race([opened.then(() => "opened" as const, () => "opened" as const), exited.then(() => "exited" as const)]))
        if (first === "exited") {
          try {
            fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK))
          } catch {
            /* no reader blocked: our open has completed */
          }
        }
        const fh = yield* Effect.tryPromise({ try: () => opened, catch: toSyscallError("open", fifo) })
        const buf = Buffer.alloc(1)
        const { bytesRead } = yield* Effect.tryPromise({ try: () => fh.read(buf, 0, 1), catch: toSyscallError("read", fifo) }).pipe(
          Effect.ensuring(Effect.promise(() => fh.close())),
        )
        // In the process that created the container, the socket tells whether execve worked, and why the
        // init died if it did (it reports before it exits).
        const ch = channels.get(init.fd)
        if (ch) channels.delete(init.fd)
        const report = ch
          ? yield* Queue.take(ch.inbox).pipe(Effect.ensuring(closeChannel(ch)))
          : undefined
        if (report?.kind === "msg" && report.msg.type === "error") return yield* initFailed(report.msg)
        if (bytesRead !== 1) {
          const status = yield* Effect.promise(() => exited)
          return yield* new InitExited({ stage: "start", code: status?.code ?? null, signal: status?.signal ?? null })
        }
      }),

    mkfifo: (path) => Effect.try({ try: () => addon.mkfifo(path, 0o600), catch: toSyscallError("mkfifo", path) }),

    attach: (pid, startTime) =>
      Effect.sync(() => {
        const fd = attachPid(pid, startTime)
        return fd === undefined ? undefined : { pid, startTime, fd }
      }),

    signal: (p, signal) => Effect.try({ try: () => addon.pidfdSendSignal(p.fd, signal), catch: toSyscallError("pidfd_send_signal", `pid ${p.pid}`) }),

    signalPid: (pid, signal, stillMember) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          try {
            return addon.pidfdOpen(pid)
          } catch {
            return undefined // gone already
          }
        }),
        (fd) =>
          fd === undefined
            ? Effect.void
            : // The pidfd pins the pid: a membership seen now is this process's.
              (stillMember ? stillMember(pid) : Effect.succeed(true)).pipe(
                Effect.flatMap((member) =>
                  Effect.sync(() => {
                    if (!member) return
                    try {
                      addon.pidfdSendSignal(fd, signal)
                    } catch {
                      /* exited meanwhile */
                    }
                  }),
                ),
              ),
        (fd) => Effect.sync(() => (fd === undefined ? undefined : fs.closeSync(fd))),
      ),

    awaitExit: (p) => Effect.promise(() => awaitExitPromise(p)),
    release,
  }
})
