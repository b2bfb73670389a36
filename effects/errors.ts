/**
 * Every failure the runtime reports, as a tagged error. An error names the
 * action, the object and the reason; callers `Effect.catchTag` on `_tag`.
 */
import { Data } from "effect"

/** How many characters of a value an error message repeats. */
export const ECHO_MAX = 200

/**
 * A value as an error message repeats it: at most ECHO_MAX characters, its head and tail kept. The
 * fields an error carries come from the config (a 200 MB hostname, a path), and every message
 * passes its echoed fields through here, so no message is much longer than what it explains.
 */
export function clip(value: string, max = ECHO_MAX): string {
  if (value.length <= max) return value
  const tail = Math.floor(max / 4)
  return `${value.slice(0, max - tail)}…[${value.length - max} characters cut]…${value.slice(value.length - tail)}`
}

/** The config (or a CLI argument) is invalid: `path` is the JSON path of the field. */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `config ${clip(this.path)}: ${clip(this.reason, 2 * ECHO_MAX)}`
  }
}

/** A syscall made by the manager failed. */
export class SyscallError extends Data.TaggedError("SyscallError")<{
  readonly syscall: string
  readonly errno: string
  readonly path?: string
}> {
  override get message() {
    return `${this.syscall}${this.path ? ` ${clip(this.path)}` : ""}: ${this.errno}`
  }
}

/** A step of the init plan failed inside the helper (stage "helper" or "init"). */
export class InitFailed extends Data.TaggedError("InitFailed")<{
  readonly stage: "helper" | "init"
  readonly op: string
  readonly syscall: string
  readonly errno: string
  readonly path: string
}> {
  override get message() {
    return `${this.stage} ${this.op}: ${this.syscall}${this.path ? ` ${clip(this.path)}` : ""}: ${this.errno}`
  }
}

/** The init process went away before it reported (killed, or crashed). */
export class InitExited extends Data.TaggedError("InitExited")<{
  readonly stage: string
  readonly code: number | null
  readonly signal: number | null
}> {
  override get message() {
    return `init exited during ${this.stage} (code ${this.code}, signal ${this.signal})`
  }
}

/** The container's current state forbids the operation; nothing was touched. */
export class InvalidTransition extends Data.TaggedError("InvalidTransition")<{
  readonly id: string
  readonly from: string
  readonly operation: string
}> {
  override get message() {
    return `container ${this.id} is ${this.from}: cannot ${this.operation}`
  }
}

/** No container with this id under this root. */
export class ContainerNotFound extends Data.TaggedError("ContainerNotFound")<{
  readonly id: string
  readonly root: string
}> {
  override get message() {
    return `container ${this.id} does not exist (root ${this.root})`
  }
}

/** A container with this id already exists under this root. */
export class ContainerExists extends Data.TaggedError("ContainerExists")<{
  readonly id: string
  readonly root: string
}> {
  override get message() {
    return `container ${this.id} already exists (root ${this.root})`
  }
}

/** state.json could not be read or written. */
export class StateError extends Data.TaggedError("StateError")<{
  readonly id: string
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `state of ${this.id} (${clip(this.path)}): ${clip(this.reason, 2 * ECHO_MAX)}`
  }
}

/** A cgroup operation failed. */
export class CgroupError extends Data.TaggedError("CgroupError")<{
  readonly op: string
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `cgroup ${this.op} ${clip(this.path)}: ${clip(this.reason, 2 * ECHO_MAX)}`
  }
}

/** An OCI hook failed (exit status, signal, timeout, or it could not be run). */
export class HookFailed extends Data.TaggedError("HookFailed")<{
  readonly hook: string
  readonly index: number
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `${this.hook} hook ${this.index} (${clip(this.path)}): ${clip(this.reason, 2 * ECHO_MAX)}`
  }
}

/** No usable CRIU (checkpoint/restore only; the rest of the runtime works without it). */
export class CriuMissing extends Data.TaggedError("CriuMissing")<{
  /** What was found ("nothing at /usr/local/sbin/criu or on PATH", "criu 3.17.1 at /usr/sbin/criu"). */
  readonly found: string
  readonly install: string
}> {
  override get message() {
    return `criu: need CRIU >= 4.1, found ${this.found}; install it with: ${this.install}`
  }
}

/** CRIU refused or failed a request; `log` holds the error lines of its log with the lines before them. */
export class CriuFailed extends Data.TaggedError("CriuFailed")<{
  readonly action: string
  readonly reason: string
  readonly logFile?: string
  readonly log?: string
}> {
  override get message() {
    return `criu ${this.action}: ${this.reason}${this.log ? `\n--- ${this.logFile ?? "criu log"}\n${this.log}\n---` : ""}`
  }
}

/**
 * The seccomp agent at linux.seccomp.listenerPath could not be reached (connect) or handed the
 * listener (sendmsg); the messages are runc's (libcontainer/process_linux.go, sendContainerProcessState).
 */
export class SeccompAgentFailed extends Data.TaggedError("SeccompAgentFailed")<{
  readonly listenerPath: string
  readonly syscall: "connect" | "sendmsg"
  readonly errno: string
}> {
  override get message() {
    return this.syscall === "connect"
      ? `failed to connect with seccomp agent specified in the seccomp profile: connect ${this.listenerPath}: ${this.errno}`
      : `cannot send seccomp fd to ${this.listenerPath}: ${this.errno}`
  }
}

/** Anything the runtime can fail with. */
export type ContainerError =
  | ConfigError
  | SyscallError
  | InitFailed
  | InitExited
  | InvalidTransition
  | ContainerNotFound
  | ContainerExists
  | StateError
  | CgroupError
  | HookFailed
  | CriuMissing
  | CriuFailed
  | SeccompAgentFailed
