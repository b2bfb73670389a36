/**
 * The systemd driver's live parts without a systemd: the D-Bus layer (systemd-dbus.ts) over a fake
 * of @particle/dbus-next's bus — job results arriving before the method reply, bounds on a silent
 * bus, a broken connection, NoSuchUnit on stop, ResetFailedUnit after a failed job — and the
 * SystemdCgroups service (cgroups-systemd-live.ts) over a fake bus and a fake pure v2 tree: the
 * order of the calls, the properties, the files, and what is refused before anything exists.
 * The real systemd: test/kernel/systemd-driver.test.ts in the guest.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer, Result } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import type { SystemdBus, SystemdProperty } from "../../effects/cgroups-systemd.ts"
import { SystemdCgroups, SystemdCgroupsLive } from "../../effects/cgroups-systemd-live.ts"
import { dbusSystemd, parseSystemdVersion, type DbusBus, type DbusMessage, type DbusNextModule } from "../../effects/systemd-dbus.ts"

type Call = { member: string; signature?: string; body?: readonly unknown[] }

/** A fake library: `answer` decides each call's reply (a body, an error to reject with, or "never"). */
function fakeDbus(answer: (c: Call, emit: (m: DbusMessage) => void) => readonly unknown[] | { error: unknown } | "never", connectError?: unknown) {
  const calls: Call[] = []
  let disconnected = 0
  const mod: DbusNextModule = {
    Message: class {
      type = 1
      body: readonly unknown[]
      member: string
      signature?: string
      constructor(m: { member: string; signature?: string; body?: readonly unknown[] }) {
        this.member = m.member
        this.body = m.body ?? []
        if (m.signature) this.signature = m.signature
      }
    } as unknown as DbusNextModule["Message"],
    Variant: class {
      constructor(
        readonly signature: string,
        readonly value: unknown,
      ) {}
    },
    systemBus: () => {
      const listeners: { message: ((m: DbusMessage) => void)[]; error: ((e: unknown) => void)[] } = { message: [], error: [] }
      const bus: DbusBus = {
        on: ((event: "message" | "error", l: (x: never) => void) => {
          listeners[event].push(l as never)
          return bus
        }) as DbusBus["on"],
        call: (msg) => {
          const c = msg as unknown as Call
          calls.push({ member: c.member, ...(c.signature ? { signature: c.signature, body: c.body } : {}) })
          const emit = (m: DbusMessage) => listeners.message.forEach((l) => l(m))
          const a = answer(c, emit)
          if (a === "never") return new Promise(() => undefined)
          if ("error" in a) return Promise.reject(a.error)
          return Promise.resolve({ type: 2, body: a })
        },
        disconnect: () => void disconnected++,
      }
      if (connectError) setImmediate(() => listeners.error.forEach((l) => l(connectError)))
      return bus
    },
  }
  return { mod, calls, disconnected: () => disconnected }
}
const jobRemoved = (job: string, unit: string, result: string): DbusMessage => ({
  type: 4,
  interface: "org.freedesktop.systemd1.Manager",
  member: "JobRemoved",
  body: [7, job, unit, result],
})

describe("the D-Bus layer (fake @particle/dbus-next)", () => {
  it("StartTransientUnit: subscribes first, sends the properties as a(sv), and takes a JobRemoved that came before the reply", async () => {
    const f = fakeDbus((c, emit) => {
      if (c.member === "StartTransientUnit") {
        emit(jobRemoved("/org/freedesktop/systemd1/job/9", "x.scope", "done"))
        return ["/org/freedesktop/systemd1/job/9"]
      }
      return []
    })
    const bus = dbusSystemd({ dbus: () => f.mod, timeoutMs: 2000 })
    const props: SystemdProperty[] = [
      { name: "MemoryMax", value: { sig: "t", value: 1n << 26n } },
      { name: "AllowedCPUs", value: { sig: "ay", value: new Uint8Array([3]) } },
    ]
    expect(await bus.startTransientUnit("x.scope", props)).toBe("done")
    expect(f.calls.map((c) => c.member)).toEqual(["AddMatch", "Subscribe", "StartTransientUnit"])
    const start = f.calls[2]!
    expect(start.signature).toBe("ssa(sv)a(sa(sv))")
    expect(start.body).toEqual([
      "x.scope",
      "replace",
      [
        ["MemoryMax", { signature: "t", value: 1n << 26n }],
        ["AllowedCPUs", { signature: "ay", value: Buffer.from([3]) }],
      ],
      [],
    ])
    expect(f.disconnected()).toBe(1)
  })

  it("a job that does not end 'done' returns its result and resets the unit (as runc)", async () => {
    const f = fakeDbus((c, emit) => {
      if (c.member === "StartTransientUnit") {
        setImmediate(() => emit(jobRemoved("/job/1", "x.scope", "failed")))
        return ["/job/1"]
      }
      return []
    })
    expect(await dbusSystemd({ dbus: () => f.mod, timeoutMs: 2000 }).startTransientUnit("x.scope", [])).toBe("failed")
    expect(f.calls.at(-1)).toMatchObject({ member: "ResetFailedUnit", body: ["x.scope"] })
  })

  it("a job whose JobRemoved never comes, and a call never answered, fail after the bound, naming what was asked", async () => {
    const silentJob = fakeDbus((c) => (c.member === "StartTransientUnit" ? ["/job/2"] : []))
    await expect(dbusSystemd({ dbus: () => silentJob.mod, timeoutMs: 200 }).startTransientUnit("y.scope", [])).rejects.toThrow(/start job of y\.scope: no answer from systemd in 200 ms/)
    expect(silentJob.calls.at(-1)?.member).toBe("ResetFailedUnit")
    expect(silentJob.disconnected()).toBe(1)
    const silent = fakeDbus(() => "never")
    await expect(dbusSystemd({ dbus: () => silent.mod, timeoutMs: 200 }).setUnitProperties("y.scope", [])).rejects.toThrow(/SetUnitProperties: no answer/)
  })

  it("a connection that breaks (no socket) fails the pending call at once", async () => {
    const f = fakeDbus(() => "never", Object.assign(new Error("connect ENOENT /run/dbus/system_bus_socket"), { code: "ENOENT" }))
    const t0 = Date.now()
    await expect(dbusSystemd({ dbus: () => f.mod, timeoutMs: 5000 }).version()).rejects.toThrow(/system bus: connect ENOENT/)
    expect(Date.now() - t0).toBeLessThan(2000)
  })

  it("StopUnit of a unit systemd no longer has is done; the unit is reset either way", async () => {
    const f = fakeDbus((c) => (c.member === "StopUnit" ? { error: Object.assign(new Error("Unit z.scope not loaded."), { type: "org.freedesktop.systemd1.NoSuchUnit" }) } : []))
    expect(await dbusSystemd({ dbus: () => f.mod, timeoutMs: 500 }).stopUnit("z.scope")).toBe("done")
    expect(f.calls.map((c) => c.member)).toEqual(["AddMatch", "Subscribe", "StopUnit", "ResetFailedUnit"])
    const g = fakeDbus((c) => (c.member === "StopUnit" ? { error: Object.assign(new Error("Access denied"), { type: "org.freedesktop.DBus.Error.AccessDenied" }) } : []))
    await expect(dbusSystemd({ dbus: () => g.mod, timeoutMs: 500 }).stopUnit("z.scope")).rejects.toMatchObject({ type: "org.freedesktop.DBus.Error.AccessDenied" })
  })

  it("reads Manager.Version as a number", async () => {
    const f = fakeDbus((c) => (c.member === "Get" ? [{ signature: "s", value: "252.39-1~deb12u2" }] : []))
    expect(await dbusSystemd({ dbus: () => f.mod }).version()).toBe(252)
    expect([parseSystemdVersion("v255"), parseSystemdVersion("abc")]).toEqual([255, undefined])
  })
})

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xc-sd-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** A fake pure v2 host with systemd, and a fake bus that makes and removes the unit's directory as systemd does. */
function fakeHost(opts: { startResult?: string; v2?: boolean } = {}) {
  const base = fs.mkdtempSync(path.join(tmp, "host-"))
  const mount = path.join(base, "cg2")
  fs.mkdirSync(path.join(mount, "system.slice"), { recursive: true })
  fs.writeFileSync(path.join(mount, "cgroup.controllers"), "cpu memory pids\n")
  const mountinfo = path.join(base, "mountinfo")
  const v1 = opts.v2 === false ? [`31 22 0:27 / ${base}/memory rw - cgroup cgroup rw,memory`] : []
  fs.writeFileSync(mountinfo, [`22 1 8:1 / / rw - ext4 /dev/sda1 rw`, `30 22 0:26 / ${mount} rw - cgroup2 cgroup2 rw`, ...v1, ""].join("\n"))
  const procSelfCgroup = path.join(base, "cgroup")
  fs.writeFileSync(procSelfCgroup, "0::/system.slice/test.service\n")
  const runDir = path.join(base, "run-systemd")
  fs.mkdirSync(runDir)
  const log: Array<{ op: string; unit: string; props?: readonly SystemdProperty[] }> = []
  const bus: SystemdBus = {
    version: async () => (log.push({ op: "version", unit: "" }), 252),
    startTransientUnit: async (unit, props) => {
      log.push({ op: "start", unit, props })
      if ((opts.startResult ?? "done") === "done") fs.mkdirSync(path.join(mount, "system.slice", unit))
      return opts.startResult ?? "done"
    },
    setUnitProperties: async (unit, props) => void log.push({ op: "set", unit, props }),
    stopUnit: async (unit) => {
      log.push({ op: "stop", unit })
      fs.rmSync(path.join(mount, "system.slice", unit), { recursive: true, force: true })
      return "done"
    },
  }
  const layer = SystemdCgroupsLive({ bus, mountinfo, procSelfCgroup, systemdRunDir: runDir, attachDevices: () => Effect.void })
  const run = <A, E>(eff: Effect.Effect<A, E, SystemdCgroups>) => Effect.runPromise(Effect.provide(eff, layer as Layer.Layer<SystemdCgroups>))
  return { mount, log, run, runDir }
}
const sd = <A, E>(f: (c: SystemdCgroups["Service"]) => Effect.Effect<A, E>) => Effect.flatMap(SystemdCgroups, f)
const names = (props: readonly SystemdProperty[] | undefined) => Object.fromEntries((props ?? []).map((p) => [p.name, p.value.value]))

describe("the SystemdCgroups service (fake bus, fake v2 tree)", () => {
  it("places by slice:prefix:name, starts the scope at join with the resources and the pid, writes the files, updates by SetUnitProperties, stops at destroy", async () => {
    const h = fakeHost()
    const dir = path.join(h.mount, "system.slice", "xc-c1.scope")
    const paths = await h.run(sd((c) => c.paths("system.slice:xc:c1", "c1")))
    expect(paths).toEqual({ [h.mount]: dir })
    await h.run(
      Effect.gen(function* () {
        const c = yield* SystemdCgroups
        yield* c.create(paths)
        yield* c.apply(paths, { memory: { limit: 1 << 26 }, pids: { limit: 9 }, cpu: { burst: 1000 } })
        // Nothing exists before the init: the properties wait for join.
        expect(fs.existsSync(dir)).toBe(false)
        yield* c.join(paths, process.pid)
      }),
    )
    const start = h.log.find((l) => l.op === "start")!
    expect(start.unit).toBe("xc-c1.scope")
    expect(names(start.props)).toMatchObject({ Slice: "system.slice", Delegate: true, PIDs: [process.pid], MemoryMax: 1n << 26n, TasksMax: 9n })
    // The v2 manager wrote every knob, the ones without a property too; the pid was moved by us (systemd did not here).
    expect(["memory.max", "pids.max", "cpu.max.burst", "cgroup.procs"].map((f) => fs.readFileSync(path.join(dir, f), "utf8"))).toEqual([`${1 << 26}`, "9", "1000", `${process.pid}`])
    await h.run(sd((c) => c.apply(paths, { memory: { limit: 1 << 27 } })))
    expect(names(h.log.find((l) => l.op === "set")?.props)).toEqual({ MemoryMax: 1n << 27n })
    expect(fs.readFileSync(path.join(dir, "memory.max"), "utf8")).toBe(`${1 << 27}`)
    await h.run(sd((c) => c.destroy(paths)))
    // Each run is a new layer, as each CLI command is a new process: the update asks the version again.
    expect(h.log.map((l) => l.op)).toEqual(["version", "start", "version", "set", "stop"])
    expect(fs.existsSync(dir)).toBe(false)
  })

  it("refuses before anything exists: a path it cannot parse (ConfigError), an existing unit, a host without systemd or not pure v2 (CgroupError naming the unit)", async () => {
    const h = fakeHost()
    const bad = await h.run(sd((c) => c.paths("system.slice:xc", "c2")).pipe(Effect.result))
    expect(Result.isFailure(bad) && bad.failure).toMatchObject({ _tag: "ConfigError", path: "linux.cgroupsPath" })
    fs.mkdirSync(path.join(h.mount, "system.slice", "xc-c2.scope"))
    const exists = await h.run(sd((c) => c.paths("system.slice:xc:c2", "c2")).pipe(Effect.flip))
    expect(exists).toMatchObject({ _tag: "CgroupError", path: "xc-c2.scope" })
    expect(exists.message).toMatch(/exists already/)
    fs.rmdirSync(h.runDir)
    expect(await h.run(sd((c) => c.paths("system.slice:xc:c3", "c3")).pipe(Effect.flip))).toMatchObject({ _tag: "CgroupError", path: "xc-c3.scope", reason: expect.stringMatching(/systemd is not running/) })
    const hybrid = fakeHost({ v2: false })
    expect(await hybrid.run(sd((c) => c.paths("system.slice:xc:c4", "c4")).pipe(Effect.flip))).toMatchObject({ _tag: "CgroupError", reason: expect.stringMatching(/pure cgroup v2.*hybrid/) })
    expect(h.log.concat(hybrid.log)).toEqual([])
  })

  it("a start job that fails is a CgroupError naming the unit and the result, and no directory is made", async () => {
    const h = fakeHost({ startResult: "failed" })
    const paths = await h.run(sd((c) => c.paths(undefined, "c5")))
    const e = await h.run(sd((c) => c.create(paths).pipe(Effect.andThen(c.apply(paths, undefined)), Effect.andThen(c.join(paths, process.pid)), Effect.flip)))
    expect(e).toMatchObject({ _tag: "CgroupError", path: "xcontainer-c5.scope", reason: expect.stringMatching(/"failed"/) })
    expect(fs.existsSync(Object.values(paths)[0]!)).toBe(false)
  })
})
