/**
 * A small argv parser with runc's conventions: global flags before the
 * command, `--flag value` / `--flag=value`, short aliases, and a usage error
 * (exit 1) for anything unknown.
 */

export interface FlagSpec {
  readonly name: string
  readonly alias?: string
  /** true: takes a value. */
  readonly value: boolean
  /** May be given several times (values collected in order). */
  readonly multi?: boolean
}

export interface Parsed {
  readonly flags: Map<string, string | true | string[]>
  readonly positional: string[]
}

export class UsageError extends Error {
  override readonly name = "UsageError"
}

/** Parses `args` against `specs`; stops at the first positional when `stopAtPositional` (global flags). */
export function parseArgs(args: readonly string[], specs: readonly FlagSpec[], stopAtPositional = false): Parsed & { rest: string[] } {
  const flags = new Map<string, string | true | string[]>()
  const positional: string[] = []
  const byName = new Map<string, FlagSpec>()
  for (const s of specs) {
    byName.set(`--${s.name}`, s)
    if (s.alias) byName.set(`-${s.alias}`, s)
  }
  let i = 0
  for (; i < args.length; i++) {
    const a = args[i] ?? ""
    if (a === "--") {
      positional.push(...args.slice(i + 1))
      i = args.length
      break
    }
    if (a.startsWith("-") && a !== "-") {
      const eq = a.indexOf("=")
      const key = eq > 0 ? a.slice(0, eq) : a
      // runc (urfave/cli) accepts -flag as well as --flag for long names.
      const spec = byName.get(key) ?? (key.startsWith("--") ? undefined : byName.get(`-${key}`))
      if (!spec) throw new UsageError(`flag provided but not defined: ${key}`)
      if (spec.value) {
        const v = eq > 0 ? a.slice(eq + 1) : args[++i]
        if (v === undefined) throw new UsageError(`flag needs an argument: ${key}`)
        if (spec.multi) {
          const prev = flags.get(spec.name)
          flags.set(spec.name, [...(Array.isArray(prev) ? prev : []), v])
        } else flags.set(spec.name, v)
      } else {
        if (eq > 0 && !["true", "false"].includes(a.slice(eq + 1))) throw new UsageError(`invalid boolean value for ${key}`)
        if (eq < 0 || a.slice(eq + 1) === "true") flags.set(spec.name, true)
      }
      continue
    }
    if (stopAtPositional) break
    positional.push(a)
  }
  return { flags, positional, rest: args.slice(i) }
}

/** A string flag's value, if given. */
export const str = (p: Parsed, name: string): string | undefined => {
  const v = p.flags.get(name)
  return typeof v === "string" ? v : undefined
}

export const bool = (p: Parsed, name: string): boolean => p.flags.get(name) === true

/** A repeatable flag's values. */
export const list = (p: Parsed, name: string): string[] => {
  const v = p.flags.get(name)
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : []
}

/** The global flags, before the command (runc's). */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { name: "root", value: true },
  { name: "log", value: true },
  { name: "log-format", value: true },
  { name: "debug", value: false },
  { name: "systemd-cgroup", value: false },
  { name: "criu", value: true },
  { name: "rootless", value: true },
  { name: "help", alias: "h", value: false },
  { name: "version", alias: "v", value: false },
]
