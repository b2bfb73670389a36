/**
 * The Effect API: a Container is an XState actor of containerMachine plus the
 * runtime its effects run on. Every operation first asks the machine whether
 * the current state allows it (InvalidTransition otherwise, touching nothing),
 * then sends the event and waits for the machine to settle.
 */
import { Context, Effect, Logger, References, Stream } from "effect"
import { notifications as seccompNotifications, type SeccompNotification } from "../effects/seccomp-notify.ts"
import { createActor, waitFor, type Actor, type InspectionEvent as XStateInspectionEvent } from "xstate"
import { Cgroups } from "../effects/cgroups.ts"
import { CgroupError, ConfigError, InvalidTransition, SyscallError, type ContainerError } from "../effects/errors.ts"
import { exec as execIn, type ExecOptions } from "../effects/exec.ts"
import { Kernel, type ExitStatus } from "../effects/kernel.ts"
import type { Spec } from "../config/spec.ts"
import { addon } from "../native/addon.ts"
import { toSyscallError } from "../effects/kernel-live.ts"
import { readStats, type Stats } from "../effects/stats.ts"
import { openPipes, type PipedStdio, type Pipes } from "../effects/pipes.ts"
import type { Readable, Writable } from "node:stream"
import { watchOom } from "../effects/oom.ts"
import { memoryPressureStream, PRESSURE_LEVELS, type PressureLevel } from "../effects/pressure.ts"
import { update as updateResources } from "../effects/lifecycle.ts"
import { signal as signalContainer, type CreateOptions, type Services } from "../effects/lifecycle.ts"
import type { CheckpointOptions, RestoreOptions } from "../effects/checkpoint.ts"
import { gc as gcEffect, type GcOptions, type GcReport } from "../effects/gc.ts"
import { containerMachine, type ContainerEvent, type ContainerMachine, type MachineInput } from "./container-machine.ts"
import { redactEnv, statusOf, type InspectionEvent, type Inspector, type Status } from "./status.ts"
import { ociState, type OciState } from "../state/oci-state.ts"

export type { OciState } from "../state/oci-state.ts"

/** A process exec'd into a container. */
export interface ExecProcess {
  readonly pid: number
  /** The master of its terminal (process.terminal without a console socket); the caller closes it. */
  readonly console?: number
  /** Its exit (we are its parent: a known status), after which its pidfd is closed. */
  wait(): Effect.Effect<WaitStatus>
  /** A signal through its pidfd. */
  signal(sig: number): Effect.Effect<void, SyscallError>
  /** With `stdio: "pipe"`: our ends of its stdin (Writable), stdout and stderr (Readable). */
  readonly stdin?: Writable
  readonly stdout?: Readable
  readonly stderr?: Readable
}

/**
 * A transition, as subscribers receive it. The first event a subscriber gets is the status at
 * subscription (`initial: true`, `from` equal to `to`), so a late subscriber never misses `created`.
 * It carries no configuration (no environment values).
 */
export interface StateEvent {
  readonly id: string
  readonly from: Status
  readonly to: Status
  readonly at: Date
  /** Only on the first event: the status when subscribe() was called, not a transition. */
  readonly initial?: true
}

/**
 * What wait() resolves to: the init's exit status when this process is its parent (created, run or
 * restored it here); for a container loaded from another process (or destroyed before it ran) the
 * status is not knowable (only the parent can reap it): `{ code: null, signal: null, known: false }`.
 */
export type WaitStatus = (ExitStatus & { readonly known?: true }) | UnknownExit
export interface UnknownExit {
  readonly code: null
  readonly signal: null
  readonly known: false
}

/** The kernel's OOM killer acted in the container's memory cgroup (runc events' {"type":"oom"}). */
export interface OomEvent {
  readonly type: "oom"
  readonly id: string
  readonly at: Date
}


/** The levels of the library's messages (pino's names); "silent" for none. */
export type LogLevelName = "silent" | "fatal" | "error" | "warn" | "info" | "debug" | "trace"

/** A pino-like logger (a pino instance, or anything with these methods): `logger.warn({ id }, message)`. */
export interface LoggerLike {
  readonly level?: string
  error(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

export interface ActorOptions {
  /**
   * Receives the machine's inspection events as plain data (`(e) => events.push(e)`, or an observer
   * with `next`). Environment values (process.env, hooks' env, extraEnv) are redacted unless `secrets`.
   */
  readonly inspect?: Inspector
  /** Inspection events carry environment values as they are (default: `NAME=<redacted>`). */
  readonly secrets?: boolean
  /**
   * Where the library's messages go (a failed poststart/poststop hook, a cgroup fallback …): a pino
   * instance (or any LoggerLike; its `level` sets the minimum), or a level for Effect's own logger
   * ("silent": none). Without it they go to the logger of the Effect runtime the container runs on.
   */
  readonly logger?: LoggerLike | LogLevelName
}

const EFFECT_LEVEL = {
  silent: "None",
  fatal: "Fatal",
  error: "Error",
  warn: "Warn",
  info: "Info",
  debug: "Debug",
  trace: "Trace",
} as const satisfies Record<LogLevelName, string>
const isLevelName = (l: unknown): l is LogLevelName => typeof l === "string" && l in EFFECT_LEVEL

/** The services with the `logger` option's logger in place of the runtime's. */
function withLogger<R>(rt: Context.Context<R>, logger: ActorOptions["logger"]): Context.Context<R> {
  if (logger === undefined) return rt
  if (typeof logger === "string") return Context.add(rt, References.MinimumLogLevel, EFFECT_LEVEL[logger])
  const forward = Logger.make(({ message, logLevel }) => {
    const parts = Array.isArray(message) ? (message as unknown[]) : [message]
    const text = parts.filter((p) => typeof p !== "object" || p === null).map(String).join(" ")
    const obj = Object.assign({}, ...parts.filter((p): p is object => typeof p === "object" && p !== null)) as object
    const method = logLevel === "Fatal" || logLevel === "Error" ? "error" : logLevel === "Warn" ? "warn" : logLevel === "Info" ? "info" : "debug"
    logger[method](obj, text)
  })
  const withLoggers = Context.add(rt, References.CurrentLoggers, new Set([forward]))
  return isLevelName(logger.level) ? Context.add(withLoggers, References.MinimumLogLevel, EFFECT_LEVEL[logger.level]) : withLoggers
}

/** XState's inspection event as our plain data, environment values redacted unless `secrets`. */
function toInspection(e: XStateInspectionEvent, secrets: boolean): InspectionEvent {
  const clean = secrets ? (v: unknown) => v : redactEnv
  const raw = e as {
    readonly sourceRef?: { readonly sessionId: string }
    readonly event?: { readonly type: string }
    readonly snapshot?: { readonly status?: string; readonly value?: unknown; readonly context?: unknown } }
  const snap = raw.snapshot
  return {
    type: e.type,
    rootId: e.rootId,
    actorId: e.actorRef.sessionId,
    actorRef: e.actorRef,
    ...(raw.sourceRef ? { sourceId: raw.sourceRef.sessionId, sourceRef: raw.sourceRef } : {}),
    ...(raw.event ? { event: clean(raw.event) as InspectionEvent["event"] & object } : {}),
    ...(snap
      ? {
          snapshot: {
            ...(snap.status !== undefined ? { status: snap.status } : {}),
            ...("value" in snap ? { value: snap.value } : {}),
            ...("context" in snap ? { context: clean(snap.context) } : {}),
          },
        }
      : {}),
  }
}

const ociStatus = (s: Status): OciState["status"] => {
  switch (s) {
    case "loading":
    case "creating":
      return "creating"
    case "created":
    case "starting":
      return "created"
    case "running":
    case "pausing":
    case "checkpointing":
      return "running"
    case "paused":
    case "resuming":
      return "paused"
    default:
      return "stopped"
  }
}

export class Container {
  private constructor(
    readonly id: string,
    readonly root: string,
    private readonly actor: Actor<ContainerMachine>,
    private readonly rt: Context.Context<Services>,
    private readonly pipes: PipedStdio | undefined,
  ) {}

  /** With `stdio: "pipe"`: our end of the init's stdin (end() it to give the program EOF). */
  get stdin(): Writable | undefined {
    return this.pipes?.stdin
  }
  /** With `stdio: "pipe"`: the init's stdout. */
  get stdout(): Readable | undefined {
    return this.pipes?.stdout
  }
  /** With `stdio: "pipe"`: the init's stderr. */
  get stderr(): Readable | undefined {
    return this.pipes?.stderr
  }

  private static boot(
    id: string,
    root: string,
    input: MachineInput,
    opts: ActorOptions,
  ): Effect.Effect<Container, ContainerError, Services> {
    return Effect.gen(function* () {
      const rt = withLogger(yield* Effect.context<Services>(), opts.logger)
      const inspector = opts.inspect
      const inspect = inspector
        ? (e: XStateInspectionEvent) => {
            const ours = toInspection(e, opts.secrets === true)
            if (typeof inspector === "function") inspector(ours)
            else inspector.next(ours)
          }
        : undefined
      // stdio: "pipe": the child's ends go in as fds and are closed once the machine settled (the init holds its own).
      const pipes = input.mode === "create" && input.options.stdio === "pipe" ? yield* openPipes() : undefined
      const withFds: MachineInput = pipes && input.mode === "create" ? { ...input, options: { ...input.options, stdio: pipes.child } } : input
      const actor = createActor(containerMachine(rt), { input: withFds, ...(inspect ? { inspect } : {}) })
      actor.start()
      const settled = yield* Effect.promise(() => waitFor(actor, (s) => !s.hasTag("busy") && !s.matches("boot")))
      pipes?.closeChild()
      if (settled.matches("failed")) {
        actor.stop()
        pipes?.destroy()
        return yield* Effect.fail(settled.context.error as ContainerError)
      }
      return new Container(id, root, actor, rt, pipes?.ours)
    })
  }

  /** Creates a container: its init waits at the start barrier (status "created"). */
  static create(options: CreateOptions & ActorOptions): Effect.Effect<Container, ContainerError, Services> {
    return Container.boot(options.id, options.root, { mode: "create", root: options.root, options }, options)
  }

  /** Re-attaches to a container created by any process, with its status taken from the kernel. */
  static load(options: { readonly root: string; readonly id: string } & ActorOptions): Effect.Effect<Container, ContainerError, Services> {
    return Container.boot(options.id, options.root, { mode: "load", root: options.root, id: options.id }, options)
  }

  /** Restores a checkpoint as a new running container (same or new id); its init is our child again. */
  static restore(options: RestoreOptions & ActorOptions): Effect.Effect<Container, ContainerError, Services> {
    return Container.boot(options.id, options.root, { mode: "restore", root: options.root, options }, options)
  }

  /** Recovery after a manager crash: reaps the orphans of `root` (effects/gc.ts says which). */
  static gc(options: GcOptions): Effect.Effect<GcReport, never, Services> {
    return gcEffect(options)
  }

  /** create + start. */
  static run(options: CreateOptions & ActorOptions): Effect.Effect<Container, ContainerError, Services> {
    // As `runc run`: a container that cannot start is not left behind.
    return Effect.tap(Container.create(options), (c) => c.start().pipe(Effect.tapError(() => c.destroy({ force: true }).pipe(Effect.ignore))))
  }

  /** The machine's status. */
  status(): Status {
    return statusOf(this.actor.getSnapshot().value)
  }

  /** The init's pid in our pid namespace, while it lives. */
  get pid(): number | undefined {
    return this.actor.getSnapshot().context.live?.init?.pid
  }

  /** The OCI state (`runc state`). */
  state(): OciState {
    return ociState(this.id, ociStatus(this.status()), this.pid, this.actor.getSnapshot().context.live?.record)
  }

  /**
   * The notifications of the init's SCMP_ACT_NOTIFY filter (created with `seccompNotify: true`), to
   * be answered with `respond`; empty without one. It ends when no process uses the filter.
   */
  notifications(): Stream.Stream<SeccompNotification, SyscallError> {
    const fd = this.actor.getSnapshot().context.live?.seccompListener
    return fd === undefined ? Stream.empty : seccompNotifications(fd)
  }

  /**
   * The master of the init's terminal (process.terminal, created without a console socket): read
   * and write it (e.g. `new tty.ReadStream(fd)`), resize it with `resize()`. The caller closes it.
   */
  console(): number | undefined {
    return this.actor.getSnapshot().context.live?.console
  }

  /** Sets the terminal's window size. */
  resize(rows: number, columns: number): Effect.Effect<void, SyscallError> {
    const fd = this.console()
    if (fd === undefined) return Effect.fail(new SyscallError({ syscall: "ioctl", errno: "ENOTTY", path: "the container has no terminal" }))
    return Effect.try({ try: () => addon.setWinsize(fd, rows, columns), catch: toSyscallError("ioctl", "TIOCSWINSZ") })
  }

  /** The container's config, as validated at create. */
  config(): Spec | undefined {
    return this.actor.getSnapshot().context.live?.record.spec
  }

  /** The container's cgroup directories (hierarchy mount point → directory). */
  cgroupPaths(): Readonly<Record<string, string>> {
    return this.actor.getSnapshot().context.live?.record.cgroups ?? {}
  }

  /** When the container was created (ISO 8601). */
  created(): string | undefined {
    return this.actor.getSnapshot().context.live?.record.created
  }

  private dispatch(event: ContainerEvent, operation: string): Effect.Effect<void, ContainerError> {
    return Effect.gen({ self: this }, function* () {
      if (!this.actor.getSnapshot().can(event))
        return yield* new InvalidTransition({ id: this.id, from: this.status(), operation })
      this.actor.send(event)
      const settled = yield* Effect.promise(() => waitFor(this.actor, (s) => !s.hasTag("busy")))
      if (settled.context.error) return yield* Effect.fail(settled.context.error)
    })
  }

  /** Releases the init from its barrier: it execs the program. */
  start(): Effect.Effect<void, ContainerError> {
    return this.dispatch({ type: "START" }, "start")
  }

  /** Freezes every process in the container (running → paused). */
  pause(): Effect.Effect<void, ContainerError> {
    return this.dispatch({ type: "PAUSE" }, "pause")
  }

  /** Thaws a paused container (paused → running). */
  resume(): Effect.Effect<void, ContainerError> {
    return this.dispatch({ type: "RESUME" }, "resume")
  }

  /** Dumps the container with CRIU (running → checkpointed, or still running with leaveRunning). */
  checkpoint(options: CheckpointOptions): Effect.Effect<void, ContainerError> {
    return this.dispatch({ type: "CHECKPOINT", options }, "checkpoint")
  }

  /**
   * Sends a signal to the init (by pidfd) or, with `all`, to every process in the container. As
   * runc's Signal, `all` is allowed on a stopped container too: what is left in its cgroup (a
   * process that escaped the init's death without a pid namespace) is signalled, and a cgroup
   * already gone is nothing to signal (containerd's shim kills with --all after the init exits).
   */
  signal(sig: number, opts: { readonly all?: boolean } = {}): Effect.Effect<void, ContainerError> {
    return Effect.gen({ self: this }, function* () {
      const event = { type: "SIGNAL", signal: sig } as const
      const stoppedLive = this.status() === "stopped" ? this.actor.getSnapshot().context.live : undefined
      if (opts.all && stoppedLive)
        return yield* Effect.provide(signalContainer(stoppedLive, sig, true), this.rt).pipe(
          Effect.catchIf((e) => e._tag === "SyscallError" && e.errno === "ENOENT", () => Effect.void),
        )
      if (!this.actor.getSnapshot().can(event))
        return yield* new InvalidTransition({ id: this.id, from: this.status(), operation: "signal" })
      const live = this.actor.getSnapshot().context.live
      if (!live) return
      this.actor.send(event)
      yield* Effect.provide(signalContainer(live, sig, opts.all ?? false), this.rt)
    })
  }

  /**
   * Runs another process in the container (created or running; not paused, as runc). Resolves once
   * it has exec'd; the handle waits for it and signals it through its pidfd.
   */
  exec(options: ExecOptions): Effect.Effect<ExecProcess, ContainerError> {
    return Effect.gen({ self: this }, function* () {
      const snap = this.actor.getSnapshot()
      const live = snap.context.live
      const pausedOk = options.ignorePaused === true && this.status() === "paused"
      if (!live || !(snap.can({ type: "EXEC", pid: 0 }) || pausedOk))
        return yield* new InvalidTransition({ id: this.id, from: this.status(), operation: "exec" })
      const pipes: Pipes | undefined = options.stdio === "pipe" ? yield* openPipes() : undefined
      const { ref, console } = yield* Effect.provide(execIn(live, pipes ? { ...options, stdio: pipes.child } : options), this.rt).pipe(
        Effect.tapError(() => Effect.sync(() => pipes?.destroy())),
        Effect.ensuring(Effect.sync(() => pipes?.closeChild())),
      )
      this.actor.send({ type: "EXEC", pid: ref.pid })
      const rt = this.rt
      const kernel = (f: (k: Kernel["Service"]) => Effect.Effect<void, SyscallError>) => Effect.provide(Effect.flatMap(Kernel, f), rt)
      return {
        pid: ref.pid,
        ...(console !== undefined ? { console } : {}),
        ...(pipes ? pipes.ours : {}),
        wait: () =>
          Effect.provide(
            Effect.flatMap(Kernel, (k) =>
              Effect.tap(
                Effect.map(k.awaitExit(ref), (e): WaitStatus => e ?? { code: null, signal: null, known: false }),
                () => k.release(ref),
              ),
            ),
            rt,
          ),
        signal: (sig: number) => kernel((k) => k.signal(ref, sig)),
      }
    })
  }

  /** Kills what is left and removes every trace; a running container needs `force`. */
  destroy(opts: { readonly force?: boolean } = {}): Effect.Effect<void, ContainerError> {
    return this.dispatch({ type: "DESTROY", force: opts.force ?? false }, opts.force ? "destroy (forced)" : "destroy")
  }

  /**
   * Waits until the init has exited (or the container is destroyed or failed): its exit status when
   * this process is its parent, else `{ code: null, signal: null, known: false }` (see WaitStatus).
   */
  wait(): Effect.Effect<WaitStatus> {
    return Effect.promise(async () => {
      const s = await waitFor(this.actor, (s) => ["stopped", "destroyed", "failed"].includes(statusOf(s.value)), { timeout: Infinity })
      return s.context.exit ?? { code: null, signal: null, known: false }
    })
  }

  /**
   * Changes linux.resources live (runc update): merged into the current ones, validated as at create
   * (ConfigError naming the field, nothing written), written to the cgroups and to state.json.
   * Allowed while the container lives (created, running, paused), as signals are.
   */
  update(resources: unknown): Effect.Effect<void, ContainerError> {
    return Effect.gen({ self: this }, function* () {
      const snap = this.actor.getSnapshot()
      const live = snap.context.live
      if (!live || !snap.can({ type: "SIGNAL", signal: 0 }))
        return yield* new InvalidTransition({ id: this.id, from: this.status(), operation: "update" })
      const next = yield* Effect.provide(updateResources(this.root, live, resources), this.rt)
      // The machine keeps the live record: later reads (state, config()) see the new resources.
      this.actor.send({ type: "UPDATED", live: next })
    })
  }

  /** Resource usage from the container's cgroups and its network namespace (runc's Stats shape). */
  stats(): Effect.Effect<Stats> {
    const live = this.actor.getSnapshot().context.live
    if (!live) return Effect.succeed({ network: [] })
    const alive = ["created", "running", "paused"].includes(ociStatus(this.status()))
    return Effect.provide(readStats(live.record.cgroups, alive ? live.init?.pid : undefined), this.rt)
  }

  /** Pids of the processes in the container (from its cgroup). */
  processes(): Effect.Effect<number[], ContainerError> {
    const live = this.actor.getSnapshot().context.live
    if (!live) return Effect.succeed([])
    return Effect.provide(
      Effect.flatMap(Cgroups, (c) => c.pids(live.record.cgroups)),
      this.rt,
    )
  }

  /**
   * Calls `listener` with the current status at once (`initial: true`), then on every status change;
   * returns the unsubscribe function.
   */
  subscribe(listener: (event: StateEvent) => void): () => void {
    let last = this.status()
    listener({ id: this.id, from: last, to: last, at: new Date(), initial: true })
    const sub = this.actor.subscribe((snap) => {
      const to = statusOf(snap.value)
      if (to !== last) {
        const from = last
        last = to
        listener({ id: this.id, from, to, at: new Date() })
      }
    })
    return () => sub.unsubscribe()
  }

  /**
   * Calls `listener` for every OOM kill in the container's memory cgroup from now on (v1's
   * memory.oom_control eventfd, v2's memory.events), on the event loop; the machine counts them
   * (context.oomKills). Once the init is seen to exit, a kill the kernel counted before it died is still
   * reported, and the watch ends. Returns the unsubscribe function (which reports what is pending first).
   */
  onOom(listener: (event: OomEvent) => void): Effect.Effect<() => void, ContainerError> {
    return Effect.gen({ self: this }, function* () {
      const live = this.actor.getSnapshot().context.live
      if (!live || !["created", "running", "paused"].includes(ociStatus(this.status())))
        return yield* new InvalidTransition({ id: this.id, from: this.status(), operation: "watch OOM" })
      const watch = yield* watchOom(live.record.cgroups, (count) => {
        this.actor.send({ type: "OOM", count })
        for (let i = 0; i < count; i++) listener({ type: "oom", id: this.id, at: new Date() })
      })
      let sub: { unsubscribe(): void } | undefined
      const end = () => {
        sub?.unsubscribe()
        sub = undefined
        watch.close()
      }
      sub = this.actor.subscribe((snap) => {
        if (["stopped", "destroying", "destroyed", "checkpointed"].includes(statusOf(snap.value))) end()
      })
      return end
    })
  }

  /**
   * Memory-pressure notifications (libcontainer's NotifyMemoryPressure): one element, the level,
   * each time the container's memory cgroup reaches `level` ("low": reclaim is happening; "medium":
   * it is working hard; "critical": close to OOM) — v1's memory.pressure_level, v2's PSI trigger on
   * memory.pressure (effects/pressure.ts). It ends when the cgroup goes; interrupting it stops the watch.
   */
  memoryPressure(level: PressureLevel): Stream.Stream<PressureLevel, ContainerError> {
    const live = this.actor.getSnapshot().context.live
    if (!PRESSURE_LEVELS.includes(level)) return Stream.fail(new ConfigError({ path: "level", reason: `"${String(level)}" is not low, medium or critical` }))
    if (!live || !["created", "running", "paused"].includes(ociStatus(this.status())))
      return Stream.fail(new InvalidTransition({ id: this.id, from: this.status(), operation: "watch memory pressure" }))
    return memoryPressureStream(live.record.cgroups, level).pipe(Stream.provideContext(this.rt))
  }

  /**
   * The listener form of memoryPressure: `listener(level)` per event, `onEnd()` once the watch ends
   * (the cgroup went, or the returned function stopped it). Succeeds once the watch is in place.
   */
  onMemoryPressure(level: PressureLevel, listener: (level: PressureLevel) => void, onEnd?: () => void): Effect.Effect<() => void, ContainerError> {
    const live = this.actor.getSnapshot().context.live
    if (!PRESSURE_LEVELS.includes(level)) return Effect.fail(new ConfigError({ path: "level", reason: `"${String(level)}" is not low, medium or critical` }))
    if (!live || !["created", "running", "paused"].includes(ociStatus(this.status())))
      return Effect.fail(new InvalidTransition({ id: this.id, from: this.status(), operation: "watch memory pressure" }))
    const paths = live.record.cgroups
    return Effect.provide(
      Effect.flatMap(Cgroups, (c) =>
        c.memoryPressure
          ? c.memoryPressure(
              paths,
              level,
              (count) => {
                for (let i = 0; i < count; i++) listener(level)
              },
              () => onEnd?.(),
            )
          : Effect.fail(new CgroupError({ op: "watch memory pressure in", path: Object.values(paths)[0] ?? "", reason: "this Cgroups layer has no memory-pressure notifications" })),
      ),
      this.rt,
    ).pipe(Effect.map((w) => () => w.close()))
  }

  /** Stops tracking the container without touching it (the CLI does this before exiting). */
  release(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function* () {
      // destroy already released the init (its fd number may belong to someone else by now).
      const init = this.status() === "destroyed" ? undefined : this.actor.getSnapshot().context.live?.init
      this.actor.stop()
      if (init) yield* Effect.provide(Effect.flatMap(Kernel, (k) => k.release(init)), this.rt)
    })
  }
}
