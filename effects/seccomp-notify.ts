/**
 * Seccomp user notification, the manager's side (SCMP_ACT_NOTIFY):
 *
 * - `sendListener`: the runtime-spec's way (config-linux.md "seccomp", runtime.md): connect to
 *   linux.seccomp.listenerPath (a unix stream socket) and send, in one sendmsg, the
 *   container-process-state JSON {ociVersion, fds: ["seccompFd"], pid, metadata, state} with the
 *   listener fd as SCM_RIGHTS, as runc's sendContainerProcessState does.
 * - `notifications`: the in-process way, a typed Stream of the filter's notifications, each
 *   answered with `respond`. The listener is watched on the event loop (uv_poll), never polled;
 *   the stream ends when no process uses the filter any more.
 */
import * as fs from "node:fs"
import { Cause, Effect, Queue, Stream } from "effect"
import { AUDIT_ARCH } from "../config/seccomp-spec.ts"
import { SYSCALLS_I386, SYSCALLS_X32, SYSCALLS_X86_64 } from "../config/syscalls-x86.ts"
import { addon } from "../native/addon.ts"
import { SeccompAgentFailed, SyscallError } from "./errors.ts"
import type { HookState } from "./hooks.ts"
import { toSyscallError } from "./kernel-live.ts"

/** runtime-spec's containerProcessState. */
export interface ContainerProcessState {
  readonly ociVersion: string
  readonly fds: readonly string[]
  readonly pid: number
  readonly metadata?: string
  readonly state: HookState
}

/** The message for listenerPath: the filtered process, and the container's state. */
export const containerProcessState = (state: HookState, pid: number, metadata: string | undefined): ContainerProcessState => ({
  ociVersion: state.ociVersion,
  fds: ["seccompFd"],
  pid,
  ...(metadata !== undefined ? { metadata } : {}),
  state,
})

const agentFailed = (listenerPath: string, syscall: "connect" | "sendmsg") => (e: unknown) =>
  new SeccompAgentFailed({ listenerPath, syscall, errno: (e as NodeJS.ErrnoException).code ?? String(e) })

/**
 * Sends the listener and the state to the agent at `listenerPath`; our copy of the fd stays ours.
 * An agent that is not there (no socket, nobody listening) is a SeccompAgentFailed "failed to
 * connect with seccomp agent specified in the seccomp profile", as runc says it.
 */
export const sendListener = (listenerPath: string, listener: number, message: ContainerProcessState): Effect.Effect<void, SeccompAgentFailed> =>
  Effect.acquireUseRelease(
    Effect.try({ try: () => addon.connectUnix(listenerPath), catch: agentFailed(listenerPath, "connect") }),
    (sock) =>
      Effect.try({
        try: () => addon.send(sock, new TextEncoder().encode(JSON.stringify(message)), [listener]),
        catch: agentFailed(listenerPath, "sendmsg"),
      }),
    (sock) => Effect.sync(() => fs.closeSync(sock)),
  )

/** How a notified syscall is answered. */
export type SeccompResponse =
  /** Let the kernel run the syscall as if unfiltered (SECCOMP_USER_NOTIF_FLAG_CONTINUE). */
  | { readonly _tag: "continue" }
  /** Fail it with this errno (positive, e.g. 1 for EPERM). */
  | { readonly _tag: "errno"; readonly errno: number }
  /** Pretend it succeeded, returning `value`. */
  | { readonly _tag: "value"; readonly value: bigint }

/** One notified syscall. */
export interface SeccompNotification {
  readonly id: bigint
  /** The caller, in our pid namespace. */
  readonly pid: number
  readonly arch: "x86_64" | "i386" | "x32" | "unknown"
  readonly nr: number
  /** Its name in the caller's ABI ("mkdir"), or `syscall#N`. */
  readonly syscall: string
  readonly args: readonly bigint[]
  /** Answers it; ENOENT (as a SyscallError) when the caller is gone meanwhile. */
  readonly respond: (r: SeccompResponse) => Effect.Effect<void, SyscallError>
  /** The caller still waits on it (check after reading its memory through /proc/PID/mem, as seccomp_unotify(2) says). */
  readonly valid: Effect.Effect<boolean, SyscallError>
}

const X32_BIT = 0x40000000
const byNumber = (t: Readonly<Record<string, number>>) => new Map(Object.entries(t).map(([k, v]) => [v, k]))
const NAMES = { x86_64: byNumber(SYSCALLS_X86_64), i386: byNumber(SYSCALLS_I386), x32: byNumber(SYSCALLS_X32) }

function archOf(arch: number, nr: number): SeccompNotification["arch"] {
  if (arch === AUDIT_ARCH.X86_64) return nr & X32_BIT ? "x32" : "x86_64"
  return arch === AUDIT_ARCH.I386 ? "i386" : "unknown"
}

const CONTINUE = 1

/** Answers notification `id` on `listener`. */
export const respond = (listener: number, id: bigint, r: SeccompResponse): Effect.Effect<void, SyscallError> =>
  Effect.try({
    try: () =>
      r._tag === "continue"
        ? addon.seccompNotifyRespond(listener, id, 0, 0n, CONTINUE)
        : r._tag === "errno"
          ? addon.seccompNotifyRespond(listener, id, -Math.abs(r.errno), 0n, 0)
          : addon.seccompNotifyRespond(listener, id, 0, r.value, 0),
    catch: toSyscallError("SECCOMP_IOCTL_NOTIF_SEND"),
  })

/** Listeners a running `notifications` stream watches: closed when it ends, not under its poll. */
const watched = new Map<number, { closeAfter: boolean }>()

/** Closes a listener (destroy), or has the stream watching it close it once it ends. */
export const closeListener = (listener: number): Effect.Effect<void> =>
  Effect.sync(() => {
    const w = watched.get(listener)
    if (w) w.closeAfter = true
    else fs.closeSync(listener)
  })

function watchOrForget<A>(listener: number, start: () => A): A {
  try {
    return start()
  } catch (e) {
    watched.delete(listener)
    throw e
  }
}

/**
 * The notifications of the filter behind `listener`, in order. The stream ends when no process
 * uses the filter (the container is gone); ending it early stops the watch. The fd stays the
 * container's (closed at destroy, or when this stream ends if it runs then); one stream per
 * listener at a time (EBUSY). Until a notification is answered its caller waits.
 */
export const notifications = (listener: number): Stream.Stream<SeccompNotification, SyscallError> =>
  Stream.callback<SeccompNotification, SyscallError>((queue) =>
    Effect.acquireRelease(
      Effect.try({
        try: () => {
          if (watched.has(listener)) throw Object.assign(new Error("already watched"), { code: "EBUSY" })
          watched.set(listener, { closeAfter: false })
          return watchOrForget(listener, () => addon.seccompNotifyWatch(
            listener,
            (n) => {
              const arch = archOf(n.arch, n.nr)
              const name = arch === "unknown" ? undefined : NAMES[arch].get(n.nr)
              Queue.offerUnsafe(queue, {
                id: n.id,
                pid: n.pid,
                arch,
                nr: n.nr,
                syscall: name ?? `syscall#${n.nr}`,
                args: n.args,
                respond: (r) => respond(listener, n.id, r),
                valid: Effect.try({ try: () => addon.seccompNotifyIdValid(listener, n.id), catch: toSyscallError("SECCOMP_IOCTL_NOTIF_ID_VALID") }),
              })
            },
            (error) =>
              void (error ? Queue.failCauseUnsafe(queue, Cause.fail(toSyscallError("SECCOMP_IOCTL_NOTIF_RECV")(error))) : Queue.endUnsafe(queue)),
          ))
        },
        catch: toSyscallError("uv_poll_start", "seccomp listener"),
      }),
      (watch) =>
        Effect.sync(() => {
          watch.close()
          if (watched.get(listener)?.closeAfter) fs.closeSync(listener)
          watched.delete(listener)
        }),
    ),
  )
