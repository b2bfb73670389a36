/**
 * Types of the native addon (build/Release/xcontainer.node). The addon is a
 * handful of thin syscall wrappers for the parent side; it decides nothing.
 * Every failure throws (or rejects with) an Error carrying `code` (errno name,
 * e.g. "ENOENT"), `errno` (number), `syscall`, and `path` where one applies.
 */

/** The exit of a process: `code` for a normal exit, `signal` when killed. */
export interface ExitStatus {
  readonly code: number | null
  readonly signal: number | null
}

/** A libuv watch (uv_poll) that keeps the event loop alive until closed or unref'ed. */
export interface Watch {
  close(): void
  ref(): void
  unref(): void
}

export interface SpawnHelperOptions {
  /** The sealed memfd returned by sealHelper. */
  readonly helperFd: number
  /** argv of the helper; argv[0] is its name. */
  readonly argv: readonly string[]
  /** Environment of the helper ("K=V"). */
  readonly env: readonly string[]
  /** Host fds that become the helper's 0, 1 and 2 (O_NONBLOCK cleared, as libuv does). */
  readonly stdio: readonly [number, number, number]
  /** Host fd that becomes the helper's fd 3: its end of the seqpacket socketpair. */
  readonly socketFd: number
  /** Host fds that become the helper's 4, 5, … (preserved for the container; at most 128). */
  readonly extraFds?: readonly number[]
}

export interface Addon {
  /**
   * Copies the helper binary at `path` into a memfd and seals it
   * (F_SEAL_SEAL|SHRINK|GROW|WRITE) so that no container can rewrite what we exec
   * (CVE-2019-5736). Returns the memfd (O_CLOEXEC).
   */
  sealHelper(path: string): number
  /**
   * Starts the helper: clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD) whose child resets
   * its signal mask and dispositions, dup2's stdio and the socket to 0–3, and
   * execveat(helperFd, "", AT_EMPTY_PATH). Returns its pid and pidfd (O_CLOEXEC).
   */
  spawnHelper(opts: SpawnHelperOptions): { pid: number; pidfd: number }
  /** socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC). */
  socketpair(): [number, number]
  /** Sends one datagram with `fds` attached as SCM_RIGHTS (MSG_NOSIGNAL). */
  send(fd: number, data: Uint8Array, fds?: readonly number[]): void
  /**
   * Watches a seqpacket socket on the event loop: `onMessage` for each datagram
   * (received fds are O_CLOEXEC and owned by the caller), then `onEnd(null)` at
   * EOF or `onEnd(error)`; the watch is closed after onEnd.
   */
  receive(
    fd: number,
    onMessage: (data: Buffer, fds: number[]) => void,
    onEnd: (error: Error | null) => void,
  ): Watch
  /** pidfd_open(pid, 0), returned O_CLOEXEC. */
  pidfdOpen(pid: number): number
  /** pidfd_send_signal(pidfd, signal, NULL, 0). */
  pidfdSendSignal(pidfd: number, signal: number): void
  /**
   * Calls `onExit` once when the process behind `pidfd` has exited. If we are
   * its parent it is reaped (waitid(P_PIDFD, WEXITED|__WALL)) and the status is
   * passed; otherwise (ECHILD) `null`.
   */
  watchExit(pidfd: number, onExit: (status: ExitStatus | null) => void): Watch
  /** Non-blocking waitid(P_PIDFD, WEXITED|WNOHANG|__WALL): the status if it exited (reaped), else null. */
  tryReap(pidfd: number): ExitStatus | null
  /** mkfifo(path, mode). */
  mkfifo(path: string, mode: number): void
  /** flock(fd, op) on the thread pool (it may block); op is LOCK_SH=1, LOCK_EX=2, LOCK_UN=8, optionally | LOCK_NB=4. */
  flock(fd: number, op: number): Promise<void>
  /**
   * A unix stream socket connected to `path` (O_CLOEXEC): runc's --console-socket, to `send` the pty master on.
   * With `timeoutMs`, SO_SNDTIMEO bounds the connect and each send on it (EAGAIN when it expires).
   */
  connectUnix(path: string, timeoutMs?: number): number
  /** ioctl(fd, TIOCSWINSZ) on a terminal. */
  setWinsize(fd: number, rows: number, columns: number): void
  /** Clears OPOST in a terminal's c_oflag (what cfmakeraw does and libuv's raw mode does not). */
  clearOpost(fd: number): void
  /** openat2(open(root), path, { flags: flags|O_CLOEXEC, resolve: RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS }). */
  openInRoot(root: string, path: string, flags: number): number
  /**
   * bpf(BPF_PROG_LOAD) of a BPF_PROG_TYPE_CGROUP_DEVICE program (8-byte struct bpf_insn each).
   * Returns its fd (O_CLOEXEC). A refusal carries the verifier's `log` on the error.
   */
  bpfLoadDeviceProgram(insns: Uint8Array, license: string): number
  /** The kernel's id of the program behind `fd` (BPF_OBJ_GET_INFO_BY_FD). */
  bpfProgramId(fd: number): number
  /** Ids of the device programs attached to the cgroup directory itself (BPF_PROG_QUERY, BPF_CGROUP_DEVICE). */
  bpfQueryDevicePrograms(cgroupDir: string): number[]
  /** An fd (O_CLOEXEC) for the program with `id` (BPF_PROG_GET_FD_BY_ID). */
  bpfProgramFdById(id: number): number
  /** BPF_PROG_ATTACH (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI); with `replaceFd`, BPF_F_REPLACE swaps that program atomically. */
  bpfAttachDeviceProgram(cgroupDir: string, progFd: number, replaceFd?: number): void
  /** BPF_PROG_DETACH of that program from the cgroup directory. */
  bpfDetachDeviceProgram(cgroupDir: string, progFd: number): void
  /** eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK): what cgroup v1's cgroup.event_control signals (memory.oom_control). */
  eventfd(): number
  /** Reads and resets an eventfd's counter without blocking: the signals pending, 0 if none. */
  readEventfd(fd: number): number
  /**
   * Watches an eventfd on the event loop: each time it is signalled the counter is read (and reset) and
   * `onEvent(null, count)` called; a read error calls `onEvent(error)` once and closes the watch. The
   * caller closes the fd after closing the watch.
   */
  watchEventfd(fd: number, onEvent: (error: Error | null, count?: number) => void): Watch
  /**
   * Watches an fd for POLLPRI (a cgroup v2 PSI trigger): `onEvent(null)` each time it is raised (also
   * for kernfs's POLLERR|POLLPRI once the cgroup is gone: the caller checks, and closes the watch);
   * a failed poll calls `onEvent(error)` once and closes it. The fd stays the caller's.
   */
  watchPriority(fd: number, onEvent: (error: Error | null) => void): Watch
  /**
   * Watches a seccomp listener fd: `onNotification` for each SECCOMP_IOCTL_NOTIF_RECV, then
   * `onEnd(null)` once no task uses the filter (POLLHUP) or `onEnd(error)`. The fd stays the caller's.
   */
  seccompNotifyWatch(fd: number, onNotification: (n: SeccompNotif) => void, onEnd: (error: Error | null) => void): Watch
  /** SECCOMP_IOCTL_NOTIF_SEND {id, error (negative errno or 0), val, flags (1 = CONTINUE)}; ENOENT: the task is gone. */
  seccompNotifyRespond(fd: number, id: bigint, error: number, val: bigint, flags: number): void
  /** SECCOMP_IOCTL_NOTIF_ID_VALID: does the task still wait on notification `id`? */
  seccompNotifyIdValid(fd: number, id: bigint): boolean
}

/** struct seccomp_notif as the addon hands it over. */
export interface SeccompNotif {
  readonly id: bigint
  readonly pid: number
  readonly arch: number
  readonly nr: number
  readonly instructionPointer: bigint
  readonly args: readonly bigint[]
}
