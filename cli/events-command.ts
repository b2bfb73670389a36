/**
 * `xcontainer events [--stats] [--interval 5s] <id>`: runc's JSON lines,
 * {"type":"stats","id":…,"data":{…}} with runc's field names (libcontainer's
 * types.Stats). --stats prints one and exits; otherwise one every interval
 * until the container stops.
 */
import { Effect } from "effect"
import { bool, str } from "./args.ts"
import { one, parse, type Cmd } from "./common.ts"
import { ConfigError, InvalidTransition } from "../effects/errors.ts"
import { CPUSET_FLAGS, type BlkioEntry, type MemoryEntry, type Stats } from "../effects/stats.ts"
import { goJson } from "./go-json.ts"
import { Container } from "../machines/container.ts"

const omit0 = (n: number | undefined) => (n ? n : undefined)
const omitEmpty = <T>(a: readonly T[] | undefined) => (a && a.length > 0 ? a : undefined)
const ZERO_ENTRY: MemoryEntry = { usage: 0, max: 0, limit: 0, failcnt: 0 }
/** runc's MemoryEntry: limit, usage and max left out when 0, failcnt. */
const memoryEntry = (e: MemoryEntry | undefined) => {
  const m = e ?? ZERO_ENTRY
  return { limit: m.limit, usage: omit0(m.usage), max: omit0(m.max), failcnt: m.failcnt }
}
const blkioEntries = (a: readonly BlkioEntry[] | undefined) =>
  omitEmpty(a?.map((e) => ({ major: omit0(e.major), minor: omit0(e.minor), op: e.op || undefined, value: omit0(e.value) })))

/**
 * Our Stats as runc 1.1.5's types.Stats: every part present (Go writes a missing controller's zero
 * struct), its keys in the struct's order, `omitempty` fields left out when zero, memory.raw's keys
 * sorted (a Go map), network_interfaces null when there are none. undefined marks a left-out key.
 */
export function runcStats(s: Stats): Record<string, unknown> {
  const cpu = s.cpu
  const mem = s.memory
  return {
    cpu: {
      usage: {
        total: omit0(cpu?.usage.total),
        percpu: omitEmpty(cpu?.usage.percpu),
        percpu_kernel: omitEmpty(cpu?.usage.percpuKernel),
        percpu_user: omitEmpty(cpu?.usage.percpuUser),
        kernel: cpu?.usage.kernel ?? 0,
        user: cpu?.usage.user ?? 0,
      },
      throttling: {
        periods: omit0(cpu?.throttling.periods),
        throttledPeriods: omit0(cpu?.throttling.throttledPeriods),
        throttledTime: omit0(cpu?.throttling.throttledTime),
      },
    },
    cpuset: {
      cpus: omitEmpty(s.cpuset?.cpus),
      cpu_exclusive: s.cpuset?.flags["cpu_exclusive"] ?? 0,
      mems: omitEmpty(s.cpuset?.mems),
      ...Object.fromEntries(CPUSET_FLAGS.slice(1).map((f) => [f, s.cpuset?.flags[f] ?? 0])),
    },
    memory: {
      cache: omit0(mem?.raw["cache"]),
      usage: memoryEntry(mem?.usage),
      swap: memoryEntry(mem?.swap),
      kernel: memoryEntry(mem?.kernel),
      kernelTCP: memoryEntry(mem?.kernelTCP),
      raw: mem && Object.keys(mem.raw).length > 0 ? Object.fromEntries(Object.entries(mem.raw).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : undefined,
    },
    pids: { current: omit0(s.pids?.current), limit: omit0(s.pids?.limit ?? undefined) },
    blkio: { ioServiceBytesRecursive: blkioEntries(s.blkio?.ioServiceBytesRecursive), ioServicedRecursive: blkioEntries(s.blkio?.ioServicedRecursive) },
    hugetlb: {},
    intel_rdt: {},
    // Go's NetworkInterface has no json tags: its field names as they are.
    network_interfaces:
      s.network.length === 0
        ? null
        : s.network.map((i) => ({
            Name: i.name,
            RxBytes: i.rxBytes,
            RxPackets: i.rxPackets,
            RxErrors: i.rxErrors,
            RxDropped: i.rxDropped,
            TxBytes: i.txBytes,
            TxPackets: i.txPackets,
            TxErrors: i.txErrors,
            TxDropped: i.txDropped,
          })),
  }
}

/** "5s", "500ms", "1m" → milliseconds (Go's duration syntax for the values runc users write). */
export function durationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text)
  if (!m) return undefined
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"]
}

export const eventsCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    const p = yield* parse(args, [
      { name: "stats", value: false },
      { name: "interval", value: true },
    ])
    const id = yield* one(p.positional)
    const interval = durationMs(str(p, "interval") ?? "5s")
    if (interval === undefined || interval <= 0) return yield* new ConfigError({ path: "--interval", reason: `"${str(p, "interval")}" is not a duration such as 5s` })
    const c = yield* Container.load({ root: ctx.root, id })
    const emit = Effect.flatMap(c.stats(), (s) => Effect.sync(() => process.stdout.write(`${goJson({ type: "stats", id, data: runcStats(s) })}\n`)))
    if (bool(p, "stats")) {
      yield* emit
      yield* c.release()
      return 0
    }
    // As runc: a stopped container has no events to give.
    if (c.state().status === "stopped") {
      yield* c.release()
      return yield* new InvalidTransition({ id, from: c.status(), operation: "events" })
    }
    // OOM kills as they happen ({"type":"oom","id":…}, runc's types.Event without data), stats every interval,
    // until the container stops; the unsubscribe reports a kill counted just before the init died.
    const stopOom = yield* c.onOom(() => process.stdout.write(`${JSON.stringify({ type: "oom", id })}\n`))
    yield* Effect.raceFirst(Effect.repeat(Effect.andThen(emit, Effect.sleep(interval)), { while: () => true }), c.wait())
    stopOom()
    yield* c.release()
    return 0
  })
