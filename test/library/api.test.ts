/**
 * The library API as an embedding user meets it, over the model layers (no root): subscribe's first
 * event, wait() on a container loaded by another handle, inspection without secrets, the machine
 * definition for the visualiser, and the `logger` option.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer, Logger } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { Container, type ActorOptions, type Cgroups, type InspectionEvent, type Kernel, type StateEvent, type StateStore } from "../../index.ts"
import { machineDefinition } from "../../index.ts"
import { defaultSpec, modelLayer } from "../../testing/index.ts"
import { StateStoreLive } from "../../state/store.ts"
import { Cgroups as CgroupsTag } from "../../effects/cgroups.ts"
import { CgroupError } from "../../effects/errors.ts"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xc-api-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))
const bundle = path.join(tmp, "bundle")
fs.mkdirSync(path.join(bundle, "rootfs"), { recursive: true })
let n = 0
const fresh = () => ({ root: fs.mkdtempSync(path.join(tmp, "root-")), id: `c${n++}` })
const config = (args: string[], env: string[] = []) => {
  const spec = defaultSpec(args) as { process: { env?: string[] } }
  return { ...spec, process: { ...spec.process, env: [...(spec.process.env ?? []), ...env] } }
}

describe("library API (model layers)", () => {
  it("subscribe() delivers the current status first: a late subscriber sees `created`", async () => {
    const { root, id } = fresh()
    const layer = Layer.merge(modelLayer(), StateStoreLive)
    const events = await Effect.runPromise(
      Effect.provide(
        Effect.gen(function* () {
          const c = yield* Container.create({ root, id, bundle, config: config(["true"]) })
          const seen: StateEvent[] = []
          c.subscribe((e) => seen.push(e))
          yield* c.start()
          yield* c.wait()
          yield* c.destroy()
          return seen
        }),
        layer,
      ),
    )
    expect(events[0]).toMatchObject({ id, from: "created", to: "created", initial: true })
    expect(events.slice(1).every((e) => e.initial === undefined)).toBe(true)
    expect(events.map((e) => e.to)).toContain("destroyed")
  })

  it("wait() on a container loaded by another handle: { code: null, signal: null, known: false }, never null", async () => {
    const { root, id } = fresh()
    const layer = Layer.merge(modelLayer(), StateStoreLive)
    const [mine, loaded] = await Effect.runPromise(
      Effect.provide(
        Effect.gen(function* () {
          const c = yield* Container.run({ root, id, bundle, config: config(["sleep"]) })
          const other = yield* Container.load({ root, id })
          yield* c.signal(9)
          const loaded = yield* other.wait()
          const mine = yield* c.wait()
          yield* other.release()
          yield* c.destroy()
          return [mine, loaded] as const
        }),
        layer,
      ),
    )
    expect(mine).toEqual({ code: null, signal: 9 })
    expect(loaded).toEqual({ code: null, signal: null, known: false })
  })

  it("inspection events carry no environment values unless secrets: true", async () => {
    const collect = async (secrets: boolean) => {
      const { root, id } = fresh()
      const events: InspectionEvent[] = []
      const layer = Layer.merge(modelLayer(), StateStoreLive)
      await Effect.runPromise(
        Effect.provide(
          Effect.gen(function* () {
            const c = yield* Container.create({
              root,
              id,
              bundle,
              config: { ...config(["true"], ["TOKEN=hunter2"]), hooks: { poststop: [{ path: "/bin/true", env: ["HOOKPW=swordfish"] }] } },
              extraEnv: ["EXTRA=opensesame"],
              inspect: (e) => events.push(e),
              secrets,
            })
            yield* c.destroy()
          }),
          layer,
        ),
      )
      return JSON.stringify(events)
    }
    const redacted = await collect(false)
    expect(redacted).toContain("@xstate.snapshot")
    expect(redacted).toContain("TOKEN=<redacted>")
    for (const secret of ["hunter2", "swordfish", "opensesame"]) expect(redacted).not.toContain(secret)
    const open = await collect(true)
    for (const secret of ["hunter2", "swordfish", "opensesame"]) expect(open).toContain(secret)
  })

  it("machineDefinition(): the machine as JSON for the visualiser, without a runtime", () => {
    const d = machineDefinition()
    expect(d.id).toBe("container")
    expect(d.initial).toBe("boot")
    expect(Object.keys(d.states)).toEqual(expect.arrayContaining(["creating", "alive", "stopped", "destroying", "destroyed", "checkpointing"]))
    expect(JSON.parse(JSON.stringify(d))).toEqual(d)
  })

  /** A runtime whose own logger (the user's Effect logger) collects the messages it gets. */
  const userRuntime = () => {
    const seen: string[] = []
    const collect = Logger.make(({ message }) => void seen.push((Array.isArray(message) ? message : [message]).map(String).join(" ")))
    return { seen, layer: Layer.mergeAll(modelLayer(), StateStoreLive, Logger.layer([collect])) }
  }
  const failingHook = (logger: ActorOptions["logger"] | undefined, layer: Layer.Layer<Kernel | Cgroups | StateStore>) => {
    const { root, id } = fresh()
    return Effect.runPromise(
      Effect.provide(
        Effect.gen(function* () {
          const c = yield* Container.create({
            root,
            id,
            bundle,
            config: config(["true"]),
            hooks: { poststop: () => Effect.fail("the hook broke") },
            ...(logger !== undefined ? { logger } : {}),
          })
          yield* c.destroy()
        }),
        layer,
      ),
    )
  }

  it("the logger option: a failed in-process poststop hook warns to the given pino-like logger only", async () => {
    const calls: [string, object, string][] = []
    const logger = {
      level: "info",
      error: (o: object, m: string) => void calls.push(["error", o, m]),
      warn: (o: object, m: string) => void calls.push(["warn", o, m]),
      info: (o: object, m: string) => void calls.push(["info", o, m]),
      debug: (o: object, m: string) => void calls.push(["debug", o, m]),
    }
    const control = userRuntime()
    await failingHook(undefined, control.layer)
    expect(control.seen.filter((m) => m.includes("the hook broke"))).toHaveLength(1)

    const user = userRuntime()
    await failingHook(logger, user.layer)
    expect(calls.filter(([level, , msg]) => level === "warn" && msg.includes("the hook broke"))).toHaveLength(1)
    expect(user.seen.filter((m) => m.includes("the hook broke"))).toEqual([])
  })

  it("the logger option as a level: 'silent' drops the warning, 'warn' keeps it", async () => {
    const silent = userRuntime()
    await failingHook("silent", silent.layer)
    expect(silent.seen.filter((m) => m.includes("the hook broke"))).toEqual([])
    const warn = userRuntime()
    await failingHook("error", warn.layer)
    expect(warn.seen.filter((m) => m.includes("the hook broke"))).toEqual([])
    const shown = userRuntime()
    await failingHook("warn", shown.layer)
    expect(shown.seen.filter((m) => m.includes("the hook broke"))).toHaveLength(1)
  })
})

describe("create's order (model layers)", () => {
  it("a taken id is ContainerExists before the cgroup manager is asked (runc's order)", async () => {
    const { root, id } = fresh()
    // A manager that refuses a cgroup it finds in place, as the systemd driver refuses an existing unit.
    let asked = 0
    const base = modelLayer()
    const refusing = Layer.effect(
      CgroupsTag,
      Effect.map(Effect.service(CgroupsTag), (c) => ({
        ...c,
        paths: (p: string | undefined, cid: string) => (asked++ > 0 ? Effect.fail(new CgroupError({ op: "place", path: cid, reason: "exists already" })) : c.paths(p, cid)),
      })),
    ).pipe(Layer.provide(base))
    // The refusing manager last: it stands in for the model's Cgroups; one model kernel under both.
    const layer = Layer.mergeAll(base, refusing, StateStoreLive)
    const second = await Effect.runPromise(
      Effect.provide(
        Effect.gen(function* () {
          const c = yield* Container.create({ root, id, bundle, config: config(["sleep", "1"]) })
          const again = yield* Effect.result(Container.create({ root, id, bundle, config: config(["true"]) }))
          yield* c.destroy({ force: true })
          return again
        }),
        layer,
      ),
    )
    expect(second).toMatchObject({ _tag: "Failure", failure: { _tag: "ContainerExists" } })
    expect(asked).toBe(1)
  })
})
