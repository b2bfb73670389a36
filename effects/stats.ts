/**
 * A container's resource usage, read from its cgroups (v1 files here; the
 * shape is runc's libcontainer/cgroups.Stats, which `runc events --stats`
 * prints) and its network counters from the init's /proc/<pid>/net/dev (the
 * container's own network namespace). Missing controllers leave their part
 * out rather than failing the whole read.
 */
import * as fs from "node:fs"
import { Effect, Option } from "effect"
import { Cgroups, type CgroupPaths } from "./cgroups.ts"
import { readV2Parts } from "./stats-v2.ts"

export interface CpuStats {
  readonly usage: {
    readonly total: number
    readonly percpu: readonly number[]
    /** cpuacct.usage_percpu_sys / _user (empty where the kernel lacks them). */
    readonly percpuKernel?: readonly number[]
    readonly percpuUser?: readonly number[]
    readonly kernel: number
    readonly user: number
  }
  readonly throttling: { readonly periods: number; readonly throttledPeriods: number; readonly throttledTime: number }
}
/** One memory counter set: usage, max usage, limit, failcnt (memory.*, memory.memsw.*, memory.kmem.*, …). */
export interface MemoryEntry {
  readonly usage: number
  readonly max: number
  readonly limit: number
  readonly failcnt: number
}
export interface MemoryStats {
  readonly usage: MemoryEntry
  /** memory.memsw.* (memory + swap), memory.kmem.*, memory.kmem.tcp.*: absent where the kernel lacks them. */
  readonly swap?: MemoryEntry
  readonly kernel?: MemoryEntry
  readonly kernelTCP?: MemoryEntry
  readonly cache: number
  readonly rss: number
  /** The whole memory.stat map. */
  readonly raw: Readonly<Record<string, number>>
}
export interface PidsStats {
  readonly current: number
  /** null: no limit. */
  readonly limit: number | null
}
export interface BlkioEntry {
  readonly major: number
  readonly minor: number
  readonly op: string
  readonly value: number
}
export interface InterfaceStats {
  readonly name: string
  readonly rxBytes: number
  readonly rxPackets: number
  readonly rxErrors: number
  readonly rxDropped: number
  readonly txBytes: number
  readonly txPackets: number
  readonly txErrors: number
  readonly txDropped: number
}
/** The cpuset cgroup's settings, as runc reports them (cpus and mems expanded from "0-3,5"). */
export interface CpusetStats {
  readonly cpus: readonly number[]
  readonly mems: readonly number[]
  /** cpu_exclusive, mem_hardwall, …, sched_relax_domain_level: the cpuset.* files by name. */
  readonly flags: Readonly<Record<string, number>>
}
export interface Stats {
  readonly cpu?: CpuStats
  readonly cpuset?: CpusetStats
  readonly memory?: MemoryStats
  readonly pids?: PidsStats
  readonly blkio?: { readonly ioServiceBytesRecursive: readonly BlkioEntry[]; readonly ioServicedRecursive: readonly BlkioEntry[] }
  readonly network: readonly InterfaceStats[]
}

const num = (s: string): number => (s.trim() === "max" ? Number.MAX_SAFE_INTEGER : Number(s.trim()))

/** "key value" lines → a map. */
export const keyValues = (text: string): Record<string, number> =>
  Object.fromEntries(
    text
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length === 2 && f[0] !== "")
      .map(([k, v]) => [k!, Number(v)]),
  )

/** A cpu list "0-3,5" → [0, 1, 2, 3, 5]. */
export const cpuList = (text: string): number[] =>
  text
    .trim()
    .split(",")
    .filter(Boolean)
    .flatMap((part) => {
      const [a, b] = part.split("-").map(Number)
      return b === undefined ? [a!] : Array.from({ length: b - a! + 1 }, (_, i) => a! + i)
    })

/** The cpuset.* flag files runc reports, in its order. */
export const CPUSET_FLAGS = [
  "cpu_exclusive",
  "mem_hardwall",
  "mem_exclusive",
  "memory_migrate",
  "memory_spread_page",
  "memory_spread_slab",
  "memory_pressure",
  "sched_load_balance",
  "sched_relax_domain_level",
] as const

/** blkio.*_recursive: "8:0 Read 4096" lines (the trailing "Total" line has no device). */
export const blkioEntries = (text: string): BlkioEntry[] =>
  text
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 3 && f[0]!.includes(":"))
    .map(([dev, op, v]) => {
      const [major, minor] = dev!.split(":").map(Number)
      return { major: major!, minor: minor!, op: op!, value: Number(v) }
    })

/** /proc/<pid>/net/dev → per-interface counters (lo left out, as runc does). */
export const netDev = (text: string): InterfaceStats[] =>
  text
    .split("\n")
    .slice(2)
    .map((l) => l.trim())
    .filter((l) => l.includes(":"))
    .map((l) => {
      const [name, rest] = l.split(":") as [string, string]
      const f = rest.trim().split(/\s+/).map(Number)
      return {
        name: name.trim(),
        rxBytes: f[0] ?? 0,
        rxPackets: f[1] ?? 0,
        rxErrors: f[2] ?? 0,
        rxDropped: f[3] ?? 0,
        txBytes: f[8] ?? 0,
        txPackets: f[9] ?? 0,
        txErrors: f[10] ?? 0,
        txDropped: f[11] ?? 0,
      }
    })
    .filter((i) => i.name !== "lo")

/** Reads every part it can; `initPid` gives the network namespace to count. */
export const readStats = (paths: CgroupPaths, initPid: number | undefined): Effect.Effect<Stats, never, Cgroups> =>
  Effect.gen(function* () {
    const cg = yield* Cgroups
    const read = (controller: string, file: string): Effect.Effect<Option.Option<string>> =>
      Effect.option(cg.read(paths, controller, file))
    const cpu = yield* Effect.all([read("cpuacct", "cpuacct.usage"), read("cpuacct", "cpuacct.usage_percpu"), read("cpuacct", "cpuacct.stat"), read("cpu", "cpu.stat")])
    const perCpu = yield* Effect.all([read("cpuacct", "cpuacct.usage_percpu_sys"), read("cpuacct", "cpuacct.usage_percpu_user")])
    const mem = yield* Effect.all([
      read("memory", "memory.usage_in_bytes"),
      read("memory", "memory.max_usage_in_bytes"),
      read("memory", "memory.limit_in_bytes"),
      read("memory", "memory.failcnt"),
      read("memory", "memory.stat"),
    ])
    // memory.memsw.*, memory.kmem.*, memory.kmem.tcp.*: each read whole or not at all.
    const entry = (prefix: string) =>
      Effect.map(
        Effect.all([read("memory", `${prefix}.usage_in_bytes`), read("memory", `${prefix}.max_usage_in_bytes`), read("memory", `${prefix}.limit_in_bytes`), read("memory", `${prefix}.failcnt`)]),
        ([u, m, l, f]): MemoryEntry | undefined =>
          Option.isSome(u) && Option.isSome(m) && Option.isSome(l) && Option.isSome(f) ? { usage: num(u.value), max: num(m.value), limit: num(l.value), failcnt: num(f.value) } : undefined,
      )
    const [swap, kernel, kernelTCP] = yield* Effect.all([entry("memory.memsw"), entry("memory.kmem"), entry("memory.kmem.tcp")])
    const cpuset = yield* Effect.all([read("cpuset", "cpuset.cpus"), read("cpuset", "cpuset.mems"), Effect.all(CPUSET_FLAGS.map((f) => read("cpuset", `cpuset.${f}`)))])
    const pids = yield* Effect.all([read("pids", "pids.current"), read("pids", "pids.max")])
    const blkio = yield* Effect.all([read("blkio", "blkio.io_service_bytes_recursive"), read("blkio", "blkio.io_serviced_recursive")])
    const [usage, percpu, cpuStat, cpuThrottle] = cpu
    const ticks = 1e9 / 100 // cpuacct.stat counts USER_HZ (100) ticks; report nanoseconds as runc does
    const out: { -readonly [K in keyof Stats]: Stats[K] } = { network: [] }
    if (Option.isSome(usage)) {
      const st = keyValues(Option.getOrElse(cpuStat, () => ""))
      const th = keyValues(Option.getOrElse(cpuThrottle, () => ""))
      out.cpu = {
        usage: {
          total: num(usage.value),
          percpu: Option.getOrElse(percpu, () => "").trim().split(/\s+/).filter(Boolean).map(Number),
          percpuKernel: Option.getOrElse(perCpu[0], () => "").trim().split(/\s+/).filter(Boolean).map(Number),
          percpuUser: Option.getOrElse(perCpu[1], () => "").trim().split(/\s+/).filter(Boolean).map(Number),
          kernel: (st.system ?? 0) * ticks,
          user: (st.user ?? 0) * ticks,
        },
        throttling: { periods: th.nr_periods ?? 0, throttledPeriods: th.nr_throttled ?? 0, throttledTime: th.throttled_time ?? 0 },
      }
    }
    const [mUsage, mMax, mLimit, mFail, mStat] = mem
    if (Option.isSome(mUsage)) {
      const raw = keyValues(Option.getOrElse(mStat, () => ""))
      out.memory = {
        usage: {
          usage: num(mUsage.value),
          max: num(Option.getOrElse(mMax, () => "0")),
          limit: num(Option.getOrElse(mLimit, () => "0")),
          failcnt: num(Option.getOrElse(mFail, () => "0")),
        },
        ...(swap ? { swap } : {}),
        ...(kernel ? { kernel } : {}),
        ...(kernelTCP ? { kernelTCP } : {}),
        cache: raw.total_cache ?? raw.cache ?? 0,
        rss: raw.total_rss ?? raw.rss ?? 0,
        raw,
      }
    }
    const [cpus, mems, flags] = cpuset
    if (Option.isSome(cpus) && Option.isSome(mems))
      out.cpuset = {
        cpus: cpuList(cpus.value),
        mems: cpuList(mems.value),
        flags: Object.fromEntries(
          CPUSET_FLAGS.flatMap((f, i) => {
            const v = Option.getOrUndefined(flags[i] ?? Option.none())
            return v === undefined ? [] : [[f, Number(v.trim())]]
          }),
        ),
      }
    const [pCur, pMax] = pids
    if (Option.isSome(pCur)) {
      const max = Option.getOrElse(pMax, () => "max").trim()
      out.pids = { current: num(pCur.value), limit: max === "max" ? null : Number(max) }
    }
    const [bBytes, bOps] = blkio
    if (Option.isSome(bBytes))
      out.blkio = { ioServiceBytesRecursive: blkioEntries(bBytes.value), ioServicedRecursive: blkioEntries(Option.getOrElse(bOps, () => "")) }
    // cgroup v2 (the v2 manager's one directory; on hybrid, what only cgroup2 has): the same shape.
    Object.assign(out, yield* readV2Parts((file) => read("", file), out))
    if (initPid !== undefined) {
      try {
        out.network = netDev(fs.readFileSync(`/proc/${initPid}/net/dev`, "utf8"))
      } catch {
        /* the init is gone */
      }
    }
    return out
  })
