/**
 * The processes side of the kernel: starting an init from a plan, the start
 * barrier, signals and exits. `KernelLive` (kernel-live.ts) goes through the
 * addon and the helper; `KernelModel` (kernel-model.ts) is an in-memory model
 * for machine and property tests.
 */
import { Context, type Effect } from "effect"
import type { WireOp } from "../native/protocol.ts"
import type { CgroupError, ContainerError, InitExited, InitFailed, SyscallError } from "./errors.ts"

/** How a process ended: `code` for exit(), `signal` when killed; null = not ours to reap. */
export interface ExitStatus {
  readonly code: number | null
  readonly signal: number | null
}

/**
 * A process we hold: its pid is only meaningful with its start time, and every
 * signal goes through the pidfd (`fd`, or -1 in the model), never the bare pid.
 */
export interface ProcessRef {
  readonly pid: number
  readonly startTime: number
  readonly fd: number
}

export interface SpawnRequest {
  readonly plan: readonly WireOp[]
  readonly stdio: readonly [number, number, number]
  /** Fds to preserve for the program (they become its 3…). */
  readonly extraFds?: readonly number[]
  /** false for a process without a start barrier (exec): spawnInit returns once it has exec'd. Default true. */
  readonly barrier?: boolean
  /** Runs between the clone and MSG_GO: join cgroups, record the pid. */
  readonly beforeGo: (init: ProcessRef) => Effect.Effect<void, CgroupError | SyscallError>
  /** The OCI states the init hands to its createContainer and startContainer hooks (they need the pid). */
  readonly hookStates?: (init: ProcessRef) => { readonly create: string; readonly start: string }
  /** Receives the master of the process's terminal (a `console` op); it is the callee's to close. */
  readonly onConsole?: (master: number) => Effect.Effect<void, ContainerError>
  /**
   * Receives the seccomp user-notification listener (a filter with SCMP_ACT_NOTIFY) and the process
   * it filters; it is the callee's to close. The init does not wait for it (queued notifications do).
   */
  readonly onSeccomp?: (init: ProcessRef, listener: number) => Effect.Effect<void, ContainerError>
  /** Runs while the init waits at its `sync` op: the prestart and createRuntime hooks. */
  readonly onSync?: (init: ProcessRef) => Effect.Effect<void, ContainerError>
}

export interface KernelService {
  /** Spawns the helper, sends the plan, and returns once init waits at the start barrier. */
  readonly spawnInit: (req: SpawnRequest) => Effect.Effect<ProcessRef, ContainerError>
  /** Releases the init blocked on the exec fifo at `fifo`, and waits until it has exec'd (or failed). */
  readonly start: (init: ProcessRef, fifo: string) => Effect.Effect<void, InitFailed | InitExited | SyscallError>
  /** Creates the exec fifo. */
  readonly mkfifo: (path: string) => Effect.Effect<void, SyscallError>
  /** Re-acquires a process by pid + start time; undefined when it is gone (or the pid was reused). */
  readonly attach: (pid: number, startTime: number) => Effect.Effect<ProcessRef | undefined>
  readonly signal: (p: ProcessRef, signal: number) => Effect.Effect<void, SyscallError>
  /**
   * Signals a pid found in the container's cgroup. It is opened as a pidfd first, which pins the pid
   * (no reuse while it is open); `stillMember` is then asked whether that pid is still in the
   * container's cgroup: a pid that died and was reused by a process elsewhere between the read of
   * cgroup.procs and the open is skipped. A pid gone already is skipped too.
   */
  readonly signalPid: (pid: number, signal: number, stillMember?: (pid: number) => Effect.Effect<boolean>) => Effect.Effect<void>
  /** Waits, on the event loop, for the process to exit. */
  readonly awaitExit: (p: ProcessRef) => Effect.Effect<ExitStatus | null>
  /** Drops our hold on the process (closes the pidfd). */
  readonly release: (p: ProcessRef) => Effect.Effect<void>
}

export class Kernel extends Context.Service<Kernel, KernelService>()("xcontainer/Kernel") {}
