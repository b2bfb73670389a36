/**
 * fast-check commands over a container's lifecycle, with runc's transition
 * table (libcontainer/state_linux.go) as the model. The same commands run on
 * the model kernel (test/machines/lifecycle-model.test.ts) and on the real one
 * (test/kernel/lifecycle-property.test.ts); a `World` says which. Public as
 * `xcontainer/testing`: it imports no test framework (failures are node:assert
 * AssertionErrors, which vitest, jest and node:test all report), only fast-check.
 *
 * Model, per id slot: absent | created | running | paused | exiting | stopped, where
 * "exiting" is a running short program (`true`) that may already have exited:
 * the real machine is then running or stopped, and only commands whose outcome
 * does not depend on which are generated (wait, start, destroy --force, a
 * duplicate create).
 *
 * Every command checks its own outcome: allowed ones succeed with the status
 * the table says, forbidden ones fail with the tagged error the table says and
 * leave the status and the state dir byte for byte as they were. After every
 * command the machine's status equals the model's for every slot.
 */
import * as assert from "node:assert/strict"
import * as fs from "node:fs"
import * as path from "node:path"
import { Duration, Effect, type Result, type ManagedRuntime } from "effect"
import fc from "fast-check"
import type { Services } from "../effects/lifecycle.ts"
import type { ExitStatus } from "../effects/kernel.ts"
import { Container, type WaitStatus } from "../machines/container.ts"
import type { Status } from "../machines/status.ts"

/** Deep equality as test frameworks' toEqual: own enumerable data only (no prototypes, no undefined fields). */
const plain = (v: unknown): unknown => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)))
const same = (actual: unknown, expected: unknown, message?: string): void => assert.deepStrictEqual(plain(actual), plain(expected), message)

export type Program = "long" | "short"
/** What a create uses: a program with or without its own pid namespace, or a source that must fail. */
export type SourceKind = `${Program}-${"ns" | "nons"}` | "invalid-config" | "missing-program"
export type ModelStatus = "created" | "running" | "paused" | "exiting" | "stopped"

export interface ModelContainer {
  status: ModelStatus
  readonly program: Program
  readonly pidNs: boolean
  /** Whether the handle is the one that created it (only the parent learns exit statuses). */
  parent: boolean
}

export interface Model {
  readonly containers: Map<number, ModelContainer>
}

/** The system under test: a runtime over some layers, a state root and one handle per existing container. */
export interface World {
  readonly rt: ManagedRuntime.ManagedRuntime<Services, never>
  readonly root: string
  /** Slot → container id. */
  readonly ids: readonly string[]
  readonly handles: Map<number, Container>
  /** Where a create of `kind` comes from (bundle dir or config object), and with which cgroup driver. */
  readonly source: (kind: SourceKind) => { readonly bundle?: string; readonly config?: unknown; readonly cgroupDriver?: "cgroupfs" | "systemd" }
  /** How long to let a signal that should change nothing take effect before checking. */
  readonly settleMs: number
  /** Bound on waiting for an exit. */
  readonly waitMs: number
  /** Checks of reality beyond the machine's word (processes, cgroups), as problems. */
  readonly reality: (c: Container, expected: ModelStatus) => Promise<string[]>
  /** Leftovers of an absent container `id`, as problems. */
  readonly traces: (id: string) => Promise<string[]>
}

/** One step of a lifecycle: a fast-check command over the model and a world. */
export type LifecycleCommand = fc.AsyncCommand<Model, World>
type Cmd = LifecycleCommand

const attempt = <A, E>(w: World, eff: Effect.Effect<A, E, Services>): Promise<Result.Result<A, E>> => w.rt.runPromise(Effect.result(eff))

/** The state dir as bytes: its listing and state.json (or "absent"). */
function snapshot(root: string, id: string): string {
  const dir = path.join(root, id)
  if (!fs.existsSync(dir)) return "absent"
  const names = fs.readdirSync(dir).sort()
  const state = names.includes("state.json") ? fs.readFileSync(path.join(dir, "state.json"), "utf8") : ""
  return `${names.join(",")}\n${state}`
}

/** The machine's status as the model allows it. */
const allowed = (s: ModelStatus): Status[] => (s === "exiting" ? ["running", "stopped"] : [s])

function expectRefused<A, E>(r: Result.Result<A, E>, tag: string, what: string): void {
  assert.equal(r._tag, "Failure", `${what}: expected ${tag}`)
  if (r._tag === "Failure") assert.equal((r.failure as { _tag?: string })._tag, tag, `${what}: ${String(r.failure)}`)
}

function expectOk<A, E>(r: Result.Result<A, E>, what: string): asserts r is Result.Success<A, E> {
  if (r._tag === "Failure") assert.fail(`${what}: ${(r.failure as { _tag?: string })._tag} ${String(r.failure)}`)
}

const waitExit = (w: World, c: Container) => w.rt.runPromise(c.wait().pipe(Effect.timeout(Duration.millis(w.waitMs))))

/**
 * The exit status a handle reports: only its creator is the parent; another handle may read it (in the
 * creating process) or gets { code: null, signal: null, known: false }, never a bare null.
 */
function expectExit(m: ModelContainer, got: WaitStatus, want: ExitStatus): void {
  if (m.parent) same(got, want, "exit status of the parent's handle")
  else {
    const unknown = JSON.stringify({ code: null, signal: null, known: false })
    assert.ok([unknown, JSON.stringify(want)].includes(JSON.stringify(got)), `exit status ${JSON.stringify(got)}`)
  }
}

/** Status, state dir and reality agree with the model for every slot. */
export async function checkAgreement(m: Model, w: World): Promise<void> {
  for (const [slot, id] of w.ids.entries()) {
    const mc = m.containers.get(slot)
    if (!mc) {
      same(await w.traces(id), [], `absent ${id}`)
      continue
    }
    const c = w.handles.get(slot)
    assert.ok(c !== undefined, `handle of ${id}`)
    if (!c) continue
    assert.ok(allowed(mc.status).includes(c.status()), `status of ${id}: ${c.status()}, the model says ${mc.status}`)
    assert.ok(fs.existsSync(path.join(w.root, id, "state.json")), `state.json of ${id}`)
    same(await w.reality(c, mc.status), [], `reality of ${id} (${mc.status})`)
  }
}

/** A forbidden operation on an existing container: the error, then nothing changed. */
async function refusedUnchanged(w: World, slot: number, tag: string, what: string, op: (c: Container) => Effect.Effect<unknown, unknown>) {
  const id = w.ids[slot]!
  const c = w.handles.get(slot)!
  const before = { status: c.status(), dir: snapshot(w.root, id) }
  expectRefused(await attempt(w, op(c)), tag, what)
  same({ status: c.status(), dir: snapshot(w.root, id) }, before, `${what} changed nothing`)
}

/** An operation on an absent id: it has no handle, so it goes through load, which finds nothing. */
async function notFound(w: World, slot: number): Promise<void> {
  const id = w.ids[slot]!
  expectRefused(await attempt(w, Container.load({ root: w.root, id })), "ContainerNotFound", `load ${id}`)
  assert.equal(snapshot(w.root, id), "absent", `state dir of ${id}`)
}

export class CreateCmd implements Cmd {
  constructor(
    readonly slot: number,
    readonly kind: SourceKind,
  ) {}
  check = () => true
  async run(m: Model, w: World) {
    const id = w.ids[this.slot]!
    const exists = m.containers.has(this.slot)
    const before = snapshot(w.root, id)
    const r = await attempt(w, Container.create({ root: w.root, id, ...w.source(this.kind) }))
    // The order of create's checks: config and id first, then the claim, then the helper.
    const expected = this.kind === "invalid-config" ? "ConfigError" : exists ? "ContainerExists" : this.kind === "missing-program" ? "InitFailed" : undefined
    if (expected) {
      expectRefused(r, expected, this.toString())
      if (r._tag === "Failure" && expected === "InitFailed") assert.equal((r.failure as { errno?: string }).errno, "ENOENT", String(r.failure))
      assert.equal(snapshot(w.root, id), before, `${this} changed nothing`)
    } else {
      expectOk(r, this.toString())
      assert.equal(r.success.status(), "created", this.toString())
      w.handles.set(this.slot, r.success)
      const [program, ns] = this.kind.split("-") as [Program, string]
      m.containers.set(this.slot, { status: "created", program, pidNs: ns === "ns", parent: true })
    }
    await checkAgreement(m, w)
  }
  toString = () => `create(${this.slot}, ${this.kind})`
}

export class CreateBadIdCmd implements Cmd {
  constructor(readonly id: string) {}
  check = () => true
  async run(m: Model, w: World) {
    const list = () => (fs.existsSync(w.root) ? fs.readdirSync(w.root).sort() : [])
    const before = list()
    const r = await attempt(w, Container.create({ root: w.root, id: this.id, ...w.source("long-ns") }))
    expectRefused(r, "ConfigError", this.toString())
    if (r._tag === "Failure") assert.equal((r.failure as { path?: string }).path, "id", String(r.failure))
    same(list(), before, `${this} changed nothing`)
    await checkAgreement(m, w)
  }
  toString = () => `createBadId(${JSON.stringify(this.id)})`
}

export class StartCmd implements Cmd {
  constructor(readonly slot: number) {}
  check = () => true
  async run(m: Model, w: World) {
    const mc = m.containers.get(this.slot)
    if (!mc) return notFound(w, this.slot)
    if (mc.status !== "created") {
      // For "exiting" the state dir may not change either: an exit writes nothing.
      if (mc.status === "exiting") expectRefused(await attempt(w, w.handles.get(this.slot)!.start()), "InvalidTransition", this.toString())
      else await refusedUnchanged(w, this.slot, "InvalidTransition", this.toString(), (c) => c.start())
    } else {
      const c = w.handles.get(this.slot)!
      expectOk(await attempt(w, c.start()), this.toString())
      mc.status = mc.program === "long" ? "running" : "exiting"
      assert.ok(!fs.existsSync(path.join(w.root, w.ids[this.slot]!, "exec.fifo")), "exec.fifo after start")
    }
    await checkAgreement(m, w)
  }
  toString = () => `start(${this.slot})`
}

export class SignalCmd implements Cmd {
  constructor(
    readonly slot: number,
    readonly sig: 9 | 10 | 15,
  ) {}
  // A paused process keeps TERM and USR1 pending until resume: only KILL (which thaws) has an outcome to check.
  check = (m: Readonly<Model>) => {
    const s = m.containers.get(this.slot)?.status
    return s !== "exiting" && (s !== "paused" || this.sig === 9)
  }
  async run(m: Model, w: World) {
    const mc = m.containers.get(this.slot)
    if (!mc) return notFound(w, this.slot)
    if (mc.status === "stopped") await refusedUnchanged(w, this.slot, "InvalidTransition", this.toString(), (c) => c.signal(this.sig))
    else {
      const c = w.handles.get(this.slot)!
      expectOk(await attempt(w, c.signal(this.sig)), this.toString())
      // Default dispositions: KILL always; TERM and USR1 terminate, except a pid namespace's init (no handler: dropped).
      if (this.sig === 9 || !mc.pidNs) {
        expectExit(mc, await waitExit(w, c), { code: null, signal: this.sig })
        mc.status = "stopped"
      } else await new Promise((r) => setTimeout(r, w.settleMs))
    }
    await checkAgreement(m, w)
  }
  toString = () => `signal(${this.slot}, ${this.sig})`
}

export class DestroyCmd implements Cmd {
  constructor(
    readonly slot: number,
    readonly force: boolean,
  ) {}
  check = (m: Readonly<Model>) => this.force || m.containers.get(this.slot)?.status !== "exiting"
  async run(m: Model, w: World) {
    const mc = m.containers.get(this.slot)
    if (!mc) return notFound(w, this.slot)
    if ((mc.status === "running" || mc.status === "paused") && !this.force)
      await refusedUnchanged(w, this.slot, "InvalidTransition", this.toString(), (c) => c.destroy())
    else {
      const c = w.handles.get(this.slot)!
      expectOk(await attempt(w, c.destroy({ force: this.force })), this.toString())
      assert.equal(c.status(), "destroyed", this.toString())
      m.containers.delete(this.slot)
      w.handles.delete(this.slot)
    }
    await checkAgreement(m, w)
  }
  toString = () => `destroy(${this.slot}${this.force ? ", force" : ""})`
}

/** pause (on) or resume: allowed from running, resp. paused (runc's table); refused, changing nothing, elsewhere. */
export class FreezeCmd implements Cmd {
  constructor(
    readonly slot: number,
    readonly on: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.containers.get(this.slot)?.status !== "exiting"
  async run(m: Model, w: World) {
    const mc = m.containers.get(this.slot)
    if (!mc) return notFound(w, this.slot)
    const op = (c: Container) => (this.on ? c.pause() : c.resume())
    if (mc.status !== (this.on ? "running" : "paused")) await refusedUnchanged(w, this.slot, "InvalidTransition", this.toString(), op)
    else {
      expectOk(await attempt(w, op(w.handles.get(this.slot)!)), this.toString())
      mc.status = this.on ? "paused" : "running"
    }
    await checkAgreement(m, w)
  }
  toString = () => `${this.on ? "pause" : "resume"}(${this.slot})`
}

/** Another process's view: drop this handle (release) and load the container from the state dir. */
export class LoadCmd implements Cmd {
  constructor(readonly slot: number) {}
  check = (m: Readonly<Model>) => m.containers.get(this.slot)?.status !== "exiting"
  async run(m: Model, w: World) {
    const mc = m.containers.get(this.slot)
    if (!mc) return notFound(w, this.slot)
    const id = w.ids[this.slot]!
    await w.rt.runPromise(w.handles.get(this.slot)!.release())
    const r = await attempt(w, Container.load({ root: w.root, id }))
    expectOk(r, this.toString())
    w.handles.set(this.slot, r.success)
    mc.parent = false
    await checkAgreement(m, w)
  }
  toString = () => `load(${this.slot})`
}

/** Waits for a short program to end: exit 0. */
export class WaitCmd implements Cmd {
  constructor(readonly slot: number) {}
  check = (m: Readonly<Model>) => m.containers.get(this.slot)?.status === "exiting"
  async run(m: Model, w: World) {
    const mc = m.containers.get(this.slot)!
    expectExit(mc, await waitExit(w, w.handles.get(this.slot)!), { code: 0, signal: null })
    mc.status = "stopped"
    await checkAgreement(m, w)
  }
  toString = () => `wait(${this.slot})`
}

/**
 * The command arbitraries over `slots` id slots (few, so that ids collide). `freeze: false` leaves out
 * pause/resume, for a world without a freezer cgroup (rootless on cgroup v1, as runc's rootless mode).
 */
export function lifecycleCommands(slots: number, opts: { readonly freeze?: boolean } = {}): fc.Arbitrary<Cmd>[] {
  const slot = fc.nat({ max: slots - 1 })
  const valid = fc.constantFrom<SourceKind>("long-ns", "long-nons", "short-ns", "short-nons")
  const invalid = fc.constantFrom<SourceKind>("invalid-config", "missing-program")
  return [
    fc.tuple(slot, valid).map(([s, k]) => new CreateCmd(s, k)),
    fc.tuple(slot, valid).map(([s, k]) => new CreateCmd(s, k)),
    fc.tuple(slot, invalid).map(([s, k]) => new CreateCmd(s, k)),
    fc.constantFrom("../x", "a/b", "", "..", ".").map((id) => new CreateBadIdCmd(id)),
    slot.map((s) => new StartCmd(s)),
    slot.map((s) => new StartCmd(s)),
    fc.tuple(slot, fc.constantFrom<9 | 10 | 15>(9, 10, 15)).map(([s, sig]) => new SignalCmd(s, sig)),
    fc.tuple(slot, fc.boolean()).map(([s, f]) => new DestroyCmd(s, f)),
    ...(opts.freeze === false
      ? []
      : [fc.tuple(slot, fc.boolean()).map(([s, on]) => new FreezeCmd(s, on)), fc.tuple(slot, fc.boolean()).map(([s, on]) => new FreezeCmd(s, on))]),
    slot.map((s) => new LoadCmd(s)),
    slot.map((s) => new WaitCmd(s)),
  ]
}

/** Force-destroys whatever the model still has; afterwards the world should hold no container. */
export async function teardown(m: Model, w: World): Promise<void> {
  for (const [slot] of m.containers) {
    const c = w.handles.get(slot) ?? (await w.rt.runPromise(Container.load({ root: w.root, id: w.ids[slot]! })))
    await w.rt.runPromise(c.destroy({ force: true }))
  }
  m.containers.clear()
  w.handles.clear()
}

/** Runs `cmds` from an empty model, then tears down (even when a command failed). */
export async function runLifecycle(w: World, cmds: Iterable<Cmd>): Promise<void> {
  const model: Model = { containers: new Map() }
  let failed = false
  try {
    await fc.asyncModelRun(() => ({ model, real: w }), cmds)
  } catch (e) {
    failed = true
    throw e
  } finally {
    // After a failure the teardown is best effort: the first error is the one to report.
    await teardown(model, w).catch((e: unknown) => {
      if (!failed) throw e
    })
  }
}
