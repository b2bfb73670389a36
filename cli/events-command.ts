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
import type { Stats } from "../effects/stats.ts"
import { Container } from "../machines/container.ts"

/** Our Stats in runc's JSON names. */
export function runcStats(s: Stats): Record<string, unknown> {
  return {
    ...(s.cpu
      ? {
          cpu: {
            usage: { total: s.cpu.usage.total, percpu: s.cpu.usage.percpu, kernel: s.cpu.usage.kernel, user: s.cpu.usage.user },
            throttling: { periods: s.cpu.throttling.periods, throttled_periods: s.cpu.throttling.throttledPeriods, throttled_time: s.cpu.throttling.throttledTime },
          },
        }
      : {}),
    ...(s.memory ? { memory: { cache: s.memory.cache, usage: s.memory.usage, raw: s.memory.raw } } : {}),
    ...(s.pids ? { pids: { current: s.pids.current, ...(s.pids.limit !== null ? { limit: s.pids.limit } : {}) } } : {}),
    ...(s.blkio ? { blkio: { ioServiceBytesRecursive: s.blkio.ioServiceBytesRecursive, ioServicedRecursive: s.blkio.ioServicedRecursive } } : {}),
    hugetlb: {},
    network_interfaces: s.network.map((i) => ({
      name: i.name,
      rx_bytes: i.rxBytes,
      rx_packets: i.rxPackets,
      rx_errors: i.rxErrors,
      rx_dropped: i.rxDropped,
      tx_bytes: i.txBytes,
      tx_packets: i.txPackets,
      tx_errors: i.txErrors,
      tx_dropped: i.txDropped,
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
    const emit = Effect.flatMap(c.stats(), (s) => Effect.sync(() => process.stdout.write(`${JSON.stringify({ type: "stats", id, data: runcStats(s) })}\n`)))
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
    yield* Effect.raceFirst(Effect.repeat(Effect.zipRight(emit, Effect.sleep(interval)), { while: () => true }), c.wait())
    stopOom()
    yield* c.release()
    return 0
  })
