/**
 * The live SystemdBus (cgroups-systemd.ts): org.freedesktop.systemd1.Manager on the system bus,
 * through @particle/dbus-next (the maintained fork of dbus-next: a pure-JS client, marshalling
 * and authentication included, uint64 as native BigInt, its own TypeScript types). The library is
 * reached through the small structural interface below — only what this file uses — so that the
 * rest of the tree compiles and is tested without it, and loaded when the systemd driver is first
 * used (the fs drivers never load it).
 *
 * One connection per operation (connect → calls → disconnect): a container's unit is made by one
 * process (create), changed by another (update), stopped by a third (delete), and a connection
 * held open in a library user's process would keep its event loop alive. Every call, and every
 * wait for a job, is bounded: a system bus that accepts the connection and never answers (or a
 * socket that is not there: the library reports that as an 'error' event, not as a rejection) ends
 * in an error naming what was asked.
 *
 * Jobs (runc's startUnit/stopUnit over go-systemd): StartTransientUnit / StopUnit return the job's
 * object path at once; the result ("done", "failed", "timeout", …) comes in the Manager's JobRemoved
 * signal. The match rule and Subscribe are in place before the call, and signals are kept by job
 * path, so that a job that ends before its method reply is read is not missed.
 */
import { createRequire } from "node:module"
import * as path from "node:path"
import type { SystemdBus, SystemdProperty } from "./cgroups-systemd.ts"

/** The part of @particle/dbus-next this file uses (its types.d.ts, narrowed). */
export interface DbusNextModule {
  readonly systemBus: () => DbusBus
  readonly Message: new (m: {
    readonly destination: string
    readonly path: string
    readonly interface: string
    readonly member: string
    readonly signature?: string
    readonly body?: readonly unknown[]
  }) => DbusMessage
  readonly Variant: new (signature: string, value: unknown) => unknown
}
export interface DbusMessage {
  readonly type: number
  readonly path?: string
  readonly interface?: string
  readonly member?: string
  readonly body: readonly unknown[]
}
export interface DbusBus {
  call(msg: DbusMessage): Promise<DbusMessage | null>
  on(event: "message", listener: (msg: DbusMessage) => void): unknown
  on(event: "error", listener: (err: unknown) => void): unknown
  disconnect(): void
}

/** The package name: the dependency to add is `"@particle/dbus-next": "0.11.4"`. */
export const DBUS_NEXT = "@particle/dbus-next"

/**
 * Where the library is resolved from: this module, or, in the CLI's V8 snapshot (no module URL of
 * its own, and a require that knows only Node's built-ins), the package that bin/xcontainer names
 * through XCONTAINER_ADDON (PKG/build/Release/xcontainer.node), as native/addon.ts finds the addon.
 */
function requireBase(): string {
  const url = (import.meta as { url?: string }).url
  if (url) return url
  const addonPath = process.env["XCONTAINER_ADDON"]
  return addonPath ? path.resolve(path.dirname(addonPath), "..", "..", "package.json") : path.join(process.cwd(), "package.json")
}

/** Loads the library (CommonJS) as a user's install has it; a clear error when it is not installed. */
export function loadDbusNext(): DbusNextModule {
  try {
    return createRequire(requireBase())(DBUS_NEXT) as DbusNextModule
  } catch (e) {
    throw new Error(`the systemd cgroup driver needs the ${DBUS_NEXT} package (${(e as Error).message.split("\n")[0]})`)
  }
}

const SD = { destination: "org.freedesktop.systemd1", path: "/org/freedesktop/systemd1", interface: "org.freedesktop.systemd1.Manager" }
const SIGNAL = 4 // MessageType.SIGNAL

/** A D-Bus error as the library rejects it (DBusError: `type` is the error name, `text` its message). */
export const dbusErrorName = (e: unknown): string | undefined => (e as { type?: unknown }).type as string | undefined

const describe = (e: unknown): string => {
  const name = dbusErrorName(e)
  const text = (e as { text?: unknown }).text ?? (e as Error).message ?? String(e)
  return name ? `${name}: ${String(text)}` : String(text)
}

export interface DbusSystemdOptions {
  /** The library (default: loadDbusNext()). */
  readonly dbus?: () => DbusNextModule
  /** Bound on each call and on each job's JobRemoved (runc waits 30 s for a job). */
  readonly timeoutMs?: number
}

/** Runs `f` with a connection to the system bus, and closes it. */
async function withBus<A>(opts: DbusSystemdOptions, f: (c: Conn) => Promise<A>): Promise<A> {
  const mod = (opts.dbus ?? loadDbusNext)()
  const timeoutMs = opts.timeoutMs ?? 30_000
  const bus = mod.systemBus()
  let broken: unknown
  const waiters = new Set<(e: unknown) => void>()
  bus.on("error", (e) => {
    broken = e
    for (const w of waiters) w(e)
  })
  const jobs = new Map<string, string>()
  const jobWaiters = new Map<string, (result: string) => void>()
  bus.on("message", (m) => {
    if (m.type !== SIGNAL || m.interface !== SD.interface || m.member !== "JobRemoved") return
    const [, job, , result] = m.body as [number, string, string, string]
    const w = jobWaiters.get(job)
    if (w) w(result)
    else jobs.set(job, result)
  })
  /** A promise bounded in time and failing at once when the connection breaks. */
  const bounded = <T>(what: string, p: (fail: (e: unknown) => void) => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (broken !== undefined) return reject(new Error(`system bus: ${describe(broken)}`))
      const onBroken = (e: unknown) => finish(() => reject(new Error(`system bus: ${describe(e)}`)))
      const timer = setTimeout(() => finish(() => reject(new Error(`${what}: no answer from systemd in ${timeoutMs} ms`))), timeoutMs)
      let done = false
      const finish = (k: () => void) => {
        if (done) return
        done = true
        clearTimeout(timer)
        waiters.delete(onBroken)
        k()
      }
      waiters.add(onBroken)
      p(onBroken).then(
        (v) => finish(() => resolve(v)),
        (e: unknown) => finish(() => reject(e)),
      )
    })
  const conn: Conn = {
    call: (iface, member, signature, body) =>
      bounded(member, () =>
        bus.call(new mod.Message({ ...SD, ...(iface ? { interface: iface } : {}), member, ...(signature ? { signature, body } : {}) })).then((r) => r?.body ?? []),
      ),
    raw: (msg) => bounded(msg.member, () => bus.call(new mod.Message(msg)).then((r) => r?.body ?? [])),
    job: (what, job) =>
      bounded(what, () => {
        const ready = jobs.get(job)
        if (ready !== undefined) return Promise.resolve(ready)
        return new Promise<string>((resolve) => jobWaiters.set(job, resolve))
      }),
    variant: (sig, value) => new mod.Variant(sig, value),
  }
  try {
    return await f(conn)
  } finally {
    bus.disconnect()
  }
}

interface Conn {
  call(iface: string | undefined, member: string, signature?: string, body?: readonly unknown[]): Promise<readonly unknown[]>
  raw(msg: { destination: string; path: string; interface: string; member: string; signature?: string; body?: readonly unknown[] }): Promise<readonly unknown[]>
  job(what: string, job: string): Promise<string>
  variant(sig: string, value: unknown): unknown
}

/** Signals of the Manager reach us: the match rule (broadcast) and Subscribe (systemd sends them only to subscribers). */
async function subscribe(c: Conn): Promise<void> {
  await c.raw({
    destination: "org.freedesktop.DBus",
    path: "/org/freedesktop/DBus",
    interface: "org.freedesktop.DBus",
    member: "AddMatch",
    signature: "s",
    body: [`type='signal',sender='${SD.destination}',path='${SD.path}',interface='${SD.interface}',member='JobRemoved'`],
  })
  // Already subscribed (another user of this connection) is not an error for us.
  await c.call(undefined, "Subscribe").catch(() => undefined)
}

const toWire = (c: Conn, props: readonly SystemdProperty[]) =>
  props.map((p) => [p.name, c.variant(p.value.sig, p.value.sig === "ay" ? Buffer.from(p.value.value) : p.value.value)])

/** Manager.Version: "252.39-1~deb12u2" → 252. */
export const parseSystemdVersion = (v: string): number | undefined => {
  const m = /^v?(\d+)/.exec(v.trim())
  return m ? Number(m[1]) : undefined
}

/** The live SystemdBus over @particle/dbus-next. */
export function dbusSystemd(opts: DbusSystemdOptions = {}): SystemdBus {
  const resetFailed = (c: Conn, unit: string) => c.call(undefined, "ResetFailedUnit", "s", [unit]).then(() => undefined, () => undefined)
  return {
    version: () =>
      withBus(opts, async (c) => {
        const [v] = await c.raw({ ...SD, interface: "org.freedesktop.DBus.Properties", member: "Get", signature: "ss", body: [SD.interface, "Version"] })
        const text = String((v as { value?: unknown }).value ?? "")
        const n = parseSystemdVersion(text)
        if (n === undefined) throw new Error(`Manager.Version "${text}" is not a systemd version`)
        return n
      }),
    startTransientUnit: (unit, props) =>
      withBus(opts, async (c) => {
        await subscribe(c)
        const [job] = await c.call(undefined, "StartTransientUnit", "ssa(sv)a(sa(sv))", [unit, "replace", toWire(c, props), []])
        const result = await c.job(`the start job of ${unit}`, String(job)).catch(async (e: unknown) => {
          await resetFailed(c, unit)
          throw e
        })
        // As runc: a unit that did not start is reset, so that its name is free again.
        if (result !== "done") await resetFailed(c, unit)
        return result
      }),
    setUnitProperties: (unit, props) =>
      withBus(opts, async (c) => {
        await c.call(undefined, "SetUnitProperties", "sba(sv)", [unit, true, toWire(c, props)])
      }),
    stopUnit: (unit) =>
      withBus(opts, async (c) => {
        await subscribe(c)
        let result: string
        try {
          const [job] = await c.call(undefined, "StopUnit", "ss", [unit, "replace"])
          result = await c.job(`the stop job of ${unit}`, String(job))
        } catch (e) {
          // Gone already (stopped by someone else, or never started): nothing to stop.
          if (dbusErrorName(e) !== "org.freedesktop.systemd1.NoSuchUnit") throw e
          result = "done"
        }
        await resetFailed(c, unit)
        return result
      }),
  }
}

/** The message of a bus failure, for a CgroupError's reason. */
export const busFailure = describe
