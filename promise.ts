/**
 * The Promise facade: the Effect API run on one shared runtime over the live
 * layer. Rejections are the tagged errors themselves (InitFailed,
 * ConfigError …), so `err._tag` works in a plain `catch`.
 */
import type { Readable, Writable } from "node:stream"
import { Cause, Effect, Exit, ManagedRuntime } from "effect"
import type { PressureLevel } from "./effects/pressure.ts"
import type { ContainerError } from "./effects/errors.ts"
import type { CreateOptions, Services } from "./effects/lifecycle.ts"
import type { ExecOptions } from "./effects/exec.ts"
import type { Stats } from "./effects/stats.ts"
import type { CheckpointOptions, RestoreOptions } from "./effects/checkpoint.ts"
import { LiveLayer } from "./live.ts"
import type { GcOptions, GcReport } from "./effects/gc.ts"
import { Container as EffectContainer, type ActorOptions, type OciState, type OomEvent, type StateEvent, type WaitStatus } from "./machines/container.ts"
import type { Status } from "./machines/status.ts"
import { parseSignal } from "./config/linux-names.ts"
import { ConfigError } from "./effects/errors.ts"

let shared: ManagedRuntime.ManagedRuntime<Services, never> | undefined
const runtime = () => (shared ??= ManagedRuntime.make(LiveLayer))

async function run<A>(effect: Effect.Effect<A, ContainerError, Services>): Promise<A> {
  const exit = await runtime().runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

/** A signal by number or name ("TERM", "SIGTERM"). */
export function signalNumber(sig: number | string): number {
  if (typeof sig === "number") return sig
  const n = parseSignal(sig)
  if (n === undefined) throw new ConfigError({ path: "signal", reason: `unknown signal "${sig}"` })
  return n
}

/** A container, with Promise methods. */
export class ContainerHandle {
  constructor(readonly effect: EffectContainer) {}
  get id(): string {
    return this.effect.id
  }
  get pid(): number | undefined {
    return this.effect.pid
  }
  /** With `stdio: "pipe"`: our end of the init's stdin (end() it for EOF). */
  get stdin(): Writable | undefined {
    return this.effect.stdin
  }
  /** With `stdio: "pipe"`: the init's stdout. */
  get stdout(): Readable | undefined {
    return this.effect.stdout
  }
  /** With `stdio: "pipe"`: the init's stderr. */
  get stderr(): Readable | undefined {
    return this.effect.stderr
  }
  status(): Status {
    return this.effect.status()
  }
  state(): OciState {
    return this.effect.state()
  }
  start(): Promise<void> {
    return run(this.effect.start())
  }
  pause(): Promise<void> {
    return run(this.effect.pause())
  }
  resume(): Promise<void> {
    return run(this.effect.resume())
  }
  signal(sig: number | string, opts: { readonly all?: boolean } = {}): Promise<void> {
    return run(Effect.suspend(() => this.effect.signal(signalNumber(sig), opts)))
  }
  /** The master fd of the init's terminal (process.terminal without a console socket). */
  console(): number | undefined {
    return this.effect.console()
  }
  /** Sets the terminal's window size. */
  resize(rows: number, columns: number): Promise<void> {
    return run(this.effect.resize(rows, columns))
  }
  /** Runs another process in the container; resolves once it has exec'd. */
  async exec(
    options: ExecOptions,
  ): Promise<{
    readonly pid: number
    readonly console?: number
    readonly stdin?: Writable
    readonly stdout?: Readable
    readonly stderr?: Readable
    wait(): Promise<WaitStatus>
    signal(sig: number | string): Promise<void>
  }> {
    const p = await run(this.effect.exec(options))
    return {
      pid: p.pid,
      ...(p.console !== undefined ? { console: p.console } : {}),
      ...(p.stdin && p.stdout && p.stderr ? { stdin: p.stdin, stdout: p.stdout, stderr: p.stderr } : {}),
      wait: () => run(p.wait()),
      signal: (sig) => run(Effect.suspend(() => p.signal(signalNumber(sig)))),
    }
  }
  /** Dumps the container with CRIU (see Container.checkpoint). */
  checkpoint(options: CheckpointOptions): Promise<void> {
    return run(this.effect.checkpoint(options))
  }
  destroy(opts: { readonly force?: boolean } = {}): Promise<void> {
    return run(this.effect.destroy(opts))
  }
  /** The init's exit: known when this process is its parent, else `{ code: null, signal: null, known: false }`. */
  wait(): Promise<WaitStatus> {
    return run(this.effect.wait())
  }
  /** Changes linux.resources live (runc update); rejects with a ConfigError naming the field. */
  update(resources: unknown): Promise<void> {
    return run(this.effect.update(resources))
  }
  /** Resource usage (cpu, memory, pids, blkio, network), runc's Stats shape. */
  stats(): Promise<Stats> {
    return run(this.effect.stats())
  }
  processes(): Promise<number[]> {
    return run(this.effect.processes())
  }
  /** The current status at once (`initial: true`), then every change; returns the unsubscribe function. */
  subscribe(listener: (event: StateEvent) => void): () => void {
    return this.effect.subscribe(listener)
  }
  /** OOM kills in the container's memory cgroup, as they happen; resolves to the unsubscribe function. */
  /**
   * Calls `listener(level)` each time the container's memory cgroup reaches `level` (see
   * Container.memoryPressure), `onEnd()` once the watch ends (the cgroup went, or it was stopped).
   * Resolves, once the watch is in place, to the function that stops it.
   */
  onMemoryPressure(level: PressureLevel, listener: (level: PressureLevel) => void, onEnd?: () => void): Promise<() => void> {
    return run(this.effect.onMemoryPressure(level, listener, onEnd))
  }
  onOom(listener: (event: OomEvent) => void): Promise<() => void> {
    return run(this.effect.onOom(listener))
  }
  release(): Promise<void> {
    return run(this.effect.release())
  }
}

/** Creates a container (status "created": its init waits for start()). */
export const create = (options: CreateOptions & ActorOptions): Promise<ContainerHandle> =>
  run(EffectContainer.create(options)).then((c) => new ContainerHandle(c))

/** Loads a container created by any process. */
export const load = (options: { readonly root: string; readonly id: string } & ActorOptions): Promise<ContainerHandle> =>
  run(EffectContainer.load(options)).then((c) => new ContainerHandle(c))

/** Restores a CRIU checkpoint as a running container. */
export const restore = (options: RestoreOptions & ActorOptions): Promise<ContainerHandle> =>
  run(EffectContainer.restore(options)).then((c) => new ContainerHandle(c))

/** create + start. */
export const run_ = (options: CreateOptions & ActorOptions): Promise<ContainerHandle> =>
  run(EffectContainer.run(options)).then((c) => new ContainerHandle(c))
export { run_ as run }

/** Recovery after a manager crash: reaps the orphans of a state root (Container.gc). */
export const gc = (options: GcOptions): Promise<GcReport> => run(EffectContainer.gc(options))

/** Disposes the shared runtime (at shutdown). */
export const dispose = async (): Promise<void> => {
  if (shared) await shared.dispose()
  shared = undefined
}
