/**
 * `xcontainer update [flags] <id>` with runc's flags, or `-r resources.json`
 * ("-" for stdin): a linux.resources change applied live (Container.update).
 */
import { Effect } from "effect"
import { str, UsageError, type FlagSpec } from "./args.ts"
import { one, parse, type Cmd } from "./common.ts"
import { ConfigError } from "../effects/errors.ts"
import { Container } from "../machines/container.ts"
import { parseJsonText } from "../config/json-text.ts"
import { readBoundedFile, readCapped } from "../config/read-file.ts"

/** "64m", "1g", "512k", "1048576", "-1" → bytes (docker's RAMInBytes units, powers of 1024). */
export function bytes(flag: string, text: string): number {
  const m = /^(-1|\d+)([kmgt]?)b?$/i.exec(text.trim())
  if (!m) throw new ConfigError({ path: flag, reason: `"${text}" is not a size such as 64m` })
  const n = Number(m[1])
  const unit = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g" | "t"]
  return n < 0 ? -1 : n * unit
}

const int = (flag: string, text: string): number => {
  if (!/^-?\d+$/.test(text)) throw new ConfigError({ path: flag, reason: `"${text}" is not an integer` })
  return Number(text)
}

const FLAGS: FlagSpec[] = [
  { name: "resources", alias: "r", value: true },
  { name: "memory", value: true },
  { name: "memory-reservation", value: true },
  { name: "memory-swap", value: true },
  { name: "kernel-memory", value: true },
  { name: "kernel-memory-tcp", value: true },
  { name: "pids-limit", value: true },
  // runc's flag is --cpu-share; --cpu-shares (docker's spelling) is kept as its alias.
  { name: "cpu-share", value: true },
  { name: "cpu-shares", value: true },
  { name: "cpu-rt-period", value: true },
  { name: "cpu-rt-runtime", value: true },
  { name: "cpu-quota", value: true },
  { name: "cpu-period", value: true },
  { name: "cpuset-cpus", value: true },
  { name: "cpuset-mems", value: true },
  { name: "blkio-weight", value: true },
]

/** The resources change the flags describe (only what was given). */
function fromFlags(get: (name: string) => string | undefined): Record<string, unknown> {
  const memory: Record<string, number> = {}
  const cpu: Record<string, number | string> = {}
  const v = (name: string, f: (flag: string, text: string) => number | string, into: Record<string, number | string>, key: string) => {
    const t = get(name)
    if (t !== undefined) into[key] = f(`--${name}`, t)
  }
  v("memory", bytes, memory, "limit")
  v("memory-reservation", bytes, memory, "reservation")
  v("memory-swap", bytes, memory, "swap")
  v("kernel-memory", bytes, memory, "kernel")
  v("kernel-memory-tcp", bytes, memory, "kernelTCP")
  v("cpu-shares", int, cpu, "shares")
  v("cpu-share", int, cpu, "shares")
  v("cpu-rt-period", int, cpu, "realtimePeriod")
  v("cpu-rt-runtime", int, cpu, "realtimeRuntime")
  v("cpu-quota", int, cpu, "quota")
  v("cpu-period", int, cpu, "period")
  v("cpuset-cpus", (_f, t) => t, cpu, "cpus")
  v("cpuset-mems", (_f, t) => t, cpu, "mems")
  const out: Record<string, unknown> = {}
  if (Object.keys(memory).length) out.memory = memory
  if (Object.keys(cpu).length) out.cpu = cpu
  const pids = get("pids-limit")
  if (pids !== undefined) out.pids = { limit: int("--pids-limit", pids) }
  const weight = get("blkio-weight")
  if (weight !== undefined) out.blockIO = { weight: int("--blkio-weight", weight) }
  return out
}

export const updateCmd: Cmd = (args, ctx) =>
  Effect.gen(function* () {
    const p = yield* parse(args, FLAGS)
    const id = yield* one(p.positional)
    const change = yield* Effect.try({
      try: (): unknown => {
        const file = str(p, "resources")
        // "-" is stdin (containerd pipes the JSON in): read to its end, capped. A file: bounded,
        // regular, no symlink (config/read-file.ts).
        if (file === "-") return parseJsonText(readCapped(0, "stdin", "--resources"), "--resources", "stdin")
        if (file) return parseJsonText(readBoundedFile(file, { field: "--resources", noFollow: true }), "--resources", file)
        const c = fromFlags((n) => str(p, n))
        if (Object.keys(c).length === 0) throw new UsageError("update needs a resource flag or -r resources.json")
        return c
      },
      catch: (e) => (e instanceof ConfigError || e instanceof UsageError ? e : new ConfigError({ path: "--resources", reason: (e as Error).message })),
    })
    const c = yield* Container.load({ root: ctx.root, id })
    yield* c.update(change).pipe(Effect.ensuring(c.release()))
    return 0
  })
