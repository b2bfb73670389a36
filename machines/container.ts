/**
 * The Effect API: a Container is an XState actor of containerMachine plus the
 * runtime its effects run on. Every operation first asks the machine whether
 * the current state allows it (InvalidTransition otherwise, touching nothing),
 * then sends the event and waits for the machine to settle.
 */
import { type Context, Effect, Stream } from "effect"
import { notifications as seccompNotifications, type SeccompNotification } from "../effects/seccomp-notify.ts"
import { createActor, waitFor, type Actor, type InspectionEvent, type Observer } from "xstate"
import { Cgroups } from "../effects/cgroups.ts"
import { InvalidTransition, SyscallError, type ContainerError } from "../effects/errors.ts"
import { exec as execIn, type ExecOptions } from "../effects/exec.ts"
import { Kernel, type ExitStatus } from "../effects/kernel.ts"
import type { Spec } from "../config/spec.ts"
import { addon } from "../native/addon.ts"
import { toSyscallError } from "../effects/kernel-live.ts"
import { readStats, type Stats } from "../effects/stats.ts"
import { watchOom } from "../effects/oom.ts"
import { update as updateResources } from "../effects/lifecycle.ts"
import { signal as signalContainer, type CreateOptions, type Services } from "../effects/lifecycle.ts"
import type { CheckpointOptions, RestoreOptions } from "../effects/checkpoint.ts"
import { gc as gcEffect, type GcOptions, type GcReport } from "../effects/gc.ts"
import { containerMachine, statusOf, type ContainerEvent, type ContainerMachine, type MachineInput, type Status } from "./container-machine.ts"

/** A process exec'd into a container. */
export interface ExecProcess {
  readonly pid: number
  /** The master of its terminal (process.terminal without a console socket); the caller closes it. */
  readonly console?: number
  /** Its exit (we are its parent: always a status), after which its pidfd is closed. */
  wait(): Effect.Effect<ExitStatus | null>
  /** A signal through its pidfd. */
  signal(sig: number): Effect.Effect<void, SyscallError>
}

/** A transition, as subscribers receive it. */
export interface StateEvent {
  readonly id: string
  readonly from: Status
  readonly to: Status
  readonly at: Date
}

/** The kernel's OOM killer acted in the container's memory cgroup (runc events' {"type":"oom"}). */
export interface OomEvent {
  readonly type: "oom"
  readonly id: string
  readonly at: Date
}

/** The OCI runtime-spec state of a container. */
export interface OciState {
  readonly ociVersion: string
  readonly id: string
  readonly status: "creating" | "created" | "running" | "paused" | "stopped"
  readonly pid?: number
  readonly bundle: string
  readonly annotations?: Readonly<Record<string, string>>
}

export interface ActorOptions {
  /** An XState inspection observer (e.g. @statelyai/inspect's, or `(e) => events.push(e)`). */
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void)
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
  ) {}

  private static boot(
    id: string,
    root: string,
    input: MachineInput,
    opts: ActorOptions,
  ): Effect.Effect<Container, ContainerError, Services> {
    return Effect.gen(function* () {
      const rt = yield* Effect.context<Services>()
      const actor = createActor(containerMachine(rt), { input, ...(opts.inspect ? { inspect: opts.inspect } : {}) })
      actor.start()
      const settled = yield* Effect.promise(() => waitFor(actor, (s) => !s.hasTag("busy") && !s.matches("boot")))
      if (settled.matches("failed")) {
        actor.stop()
        return yield* Effect.fail(settled.context.error as ContainerError)
      }
      return new Container(id, root, actor, rt)
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
    const { live } = this.actor.getSnapshot().context
    const status = ociStatus(this.status())
    return {
      ociVersion: "1.2.0",
      id: this.id,
      status,
      ...(this.pid !== undefined && status !== "stopped" ? { pid: this.pid } : {}),
      bundle: live?.record.bundle ?? "",
      ...(live?.record.spec.annotations ? { annotations: live.record.spec.annotations } : {}),
    }
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
      const { ref, console } = yield* Effect.provide(execIn(live, options), this.rt)
      this.actor.send({ type: "EXEC", pid: ref.pid })
      const rt = this.rt
      const kernel = (f: (k: Kernel["Service"]) => Effect.Effect<void, SyscallError>) => Effect.provide(Effect.flatMap(Kernel, f), rt)
      return {
        pid: ref.pid,
        ...(console !== undefined ? { console } : {}),
        wait: () =>
          Effect.provide(
            Effect.flatMap(Kernel, (k) => Effect.tap(k.awaitExit(ref), () => k.release(ref))),
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

  /** Waits until the init has exited; its status when we are its parent, else null. */
  wait(): Effect.Effect<ExitStatus | null> {
    return Effect.promise(async () => {
      const s = await waitFor(this.actor, (s) => ["stopped", "destroyed", "failed"].includes(statusOf(s.value)), { timeout: Infinity })
      return s.context.exit ?? null
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

  /** Calls `listener` on every status change; returns the unsubscribe function. */
  subscribe(listener: (event: StateEvent) => void): () => void {
    let last = this.status()
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
