/**
 * The parts of a container's Stats (stats.ts) read from cgroup v2 files, in
 * the same typed shape as v1's, with runc's mapping (fs2/{cpu,memory,io,pids}.go):
 * - cpu.stat: usage_usec/user_usec/system_usec → total/user/kernel (ns);
 *   nr_periods, nr_throttled, throttled_usec → throttling. v2 has no per-cpu usage.
 * - memory.current/peak/max → usage/max/limit; the "max" count of memory.events
 *   (times usage hit the limit) → failcnt; memory.stat file/anon → cache/rss.
 * - pids.current/max; io.stat rbytes/wbytes → service bytes, rios/wios → serviced.
 * Only the parts v1 did not give are read (on hybrid, v1 keeps its own).
 */
import { Effect, Option } from "effect"
import type { CpuStats, BlkioEntry, MemoryStats, PidsStats, Stats } from "./stats.ts"
import { keyValues } from "./stats.ts"

type Reader = (file: string) => Effect.Effect<Option.Option<string>>

const num = (s: string): number => (s.trim() === "max" ? Number.MAX_SAFE_INTEGER : Number(s.trim()))

/** cpu.stat → CpuStats. */
export function cpuFromV2(cpuStat: string): CpuStats {
  const st = keyValues(cpuStat)
  return {
    usage: { total: (st.usage_usec ?? 0) * 1000, percpu: [], kernel: (st.system_usec ?? 0) * 1000, user: (st.user_usec ?? 0) * 1000 },
    throttling: { periods: st.nr_periods ?? 0, throttledPeriods: st.nr_throttled ?? 0, throttledTime: (st.throttled_usec ?? 0) * 1000 },
  }
}

/** io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 …") → v1's two tables. */
export function ioFromV2(ioStat: string): { ioServiceBytesRecursive: BlkioEntry[]; ioServicedRecursive: BlkioEntry[] } {
  const bytes: BlkioEntry[] = []
  const ops: BlkioEntry[] = []
  for (const line of ioStat.split("\n")) {
    const [dev, ...kvs] = line.trim().split(/\s+/)
    const m = /^(\d+):(\d+)$/.exec(dev ?? "")
    if (!m) continue
    for (const kv of kvs) {
      const [k, v] = kv.split("=")
      const table = k === "rbytes" || k === "wbytes" ? bytes : k === "rios" || k === "wios" ? ops : undefined
      if (table) table.push({ major: Number(m[1]), minor: Number(m[2]), op: k!.startsWith("r") ? "Read" : "Write", value: Number(v) })
    }
  }
  return { ioServiceBytesRecursive: bytes, ioServicedRecursive: ops }
}

/** The parts `have` lacks, from v2 files. */
export const readV2Parts = (read: Reader, have: Stats): Effect.Effect<Partial<Stats>> =>
  Effect.gen(function* () {
    const out: { -readonly [K in keyof Stats]?: Stats[K] } = {}
    if (!have.cpu) {
      const s = yield* read("cpu.stat")
      if (Option.isSome(s) && /usage_usec/.test(s.value)) out.cpu = cpuFromV2(s.value)
    }
    if (!have.memory) {
      const current = yield* read("memory.current")
      if (Option.isSome(current)) {
        const [peak, max, events, stat] = yield* Effect.all([read("memory.peak"), read("memory.max"), read("memory.events"), read("memory.stat")])
        const raw = keyValues(Option.getOrElse(stat, () => ""))
        const memory: MemoryStats = {
          usage: {
            usage: num(current.value),
            max: num(Option.getOrElse(peak, () => "0")),
            limit: num(Option.getOrElse(max, () => "max")),
            failcnt: keyValues(Option.getOrElse(events, () => "")).max ?? 0,
          },
          cache: raw.file ?? 0,
          rss: raw.anon ?? 0,
          raw,
        }
        out.memory = memory
      }
    }
    if (!have.pids) {
      const current = yield* read("pids.current")
      if (Option.isSome(current)) {
        const max = Option.getOrElse(yield* read("pids.max"), () => "max").trim()
        const pids: PidsStats = { current: num(current.value), limit: max === "max" ? null : Number(max) }
        out.pids = pids
      }
    }
    if (!have.blkio) {
      const io = yield* read("io.stat")
      if (Option.isSome(io)) out.blkio = ioFromV2(io.value)
    }
    return out
  })
