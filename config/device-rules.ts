/**
 * The device rules of linux.resources.devices reduced to what the kernel's v1
 * devices cgroup would hold after they were written in order: a default
 * (allow or deny every device) and a list of exceptions to it. This is runc's
 * devices emulator (opencontainers/cgroups devices_emulator.go), so that the
 * v1 path (devices.allow/deny writes) and the v2 path (an eBPF program made
 * from the reduced rules, config/device-bpf.ts) mean the same thing:
 *
 * - "a" (type a, or no type) resets: allow → allow-all, deny → deny-all, and
 *   forgets every exception. The rule list always starts from deny-all (our v1
 *   writes begin with "a" to devices.deny; runc's emulator starts there too).
 * - A rule whose action differs from the default adds an exception, merging its
 *   access into an exception with the same (type, major, minor).
 * - A rule whose action equals the default removes access from the exception
 *   with exactly the same (type, major, minor). The v1 kernel silently ignores a
 *   removal that only overlaps a wildcard exception ("c 1:* rwm" then deny
 *   "c 1:3 r" leaves 1:3 readable); runc refuses such a rule instead of letting
 *   the user believe it took effect, and so do we (ConfigError naming it).
 *
 * Access check (the kernel's devcgroup_legacy_check_permission): with deny-all,
 * a request is allowed when ONE exception matches its type, major, minor and
 * holds every access bit asked; with allow-all it is denied when one exception
 * matches and holds ANY bit asked (match_exception_partial).
 */
import type { DeviceRuleSpec } from "./spec.ts"

/** BPF_DEVCG_ACC_* / DEVCG_ACC_*: the access bits the kernel passes. */
export const ACC = { mknod: 1, read: 2, write: 4 } as const
/** BPF_DEVCG_DEV_* / DEVCG_DEV_*. */
export const DEV = { block: 1, char: 2 } as const

/** One exception: -1 is a wildcard major or minor; `access` is a mask of ACC bits. */
export interface DeviceException {
  readonly type: "b" | "c"
  readonly major: number
  readonly minor: number
  readonly access: number
}

/** The state the rules leave behind. */
export interface DeviceState {
  readonly defaultAllow: boolean
  /** Sorted by (major, minor, type) as runc's emulator orders them; none has empty access. */
  readonly exceptions: readonly DeviceException[]
}

export const accessMask = (access: string | undefined): number =>
  [...(access ?? "rwm")].reduce((m, ch) => m | (ch === "r" ? ACC.read : ch === "w" ? ACC.write : ch === "m" ? ACC.mknod : 0), 0)

/** A rule the reduction refuses, with the index of the rule in the list given. */
export interface DeviceRuleProblem {
  readonly index: number
  readonly reason: string
}

const key = (type: string, major: number, minor: number) => `${type} ${major}:${minor}`
const show = (type: string, major: number, minor: number) => `${type} ${major < 0 ? "*" : major}:${minor < 0 ? "*" : minor}`

/** Applies `rules` in order from deny-all; the first refused rule is reported instead. */
export function reduceDeviceRules(rules: readonly DeviceRuleSpec[]): DeviceState | DeviceRuleProblem {
  let defaultAllow = false
  let ex = new Map<string, DeviceException>()
  for (const [index, r] of rules.entries()) {
    const type = r.type ?? "a"
    if (type === "a") {
      defaultAllow = r.allow
      ex = new Map()
      continue
    }
    if (type !== "b" && type !== "c") return { index, reason: `device type "${type}" is not a, b or c` }
    const major = r.major ?? -1
    const minor = r.minor ?? -1
    if (major > 0xffffffff || minor > 0xffffffff) return { index, reason: `${show(type, major, minor)} is beyond 32 bits` }
    const access = accessMask(r.access)
    const k = key(type, major, minor)
    const old = ex.get(k)?.access ?? 0
    if (r.allow !== defaultAllow) {
      ex.set(k, { type, major, minor, access: old | access })
      continue
    }
    // A removal: refused where a broader wildcard exception shares access bits (see above).
    for (const [wm, wn] of [
      [-1, minor],
      [major, -1],
      [-1, -1],
    ] as const) {
      if (wm === major && wn === minor) continue
      const wide = ex.get(key(type, wm, wn))
      if (wide && (wide.access & access) !== 0)
        return { index, reason: `${show(type, major, minor)} cannot punch a hole in the wildcard rule ${show(type, wm, wn)} (the v1 kernel would ignore it)` }
    }
    if (old & ~access) ex.set(k, { type, major, minor, access: old & ~access })
    else ex.delete(k)
  }
  const exceptions = [...ex.values()].sort((a, b) => a.major - b.major || a.minor - b.minor || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))
  return { defaultAllow, exceptions }
}

export const isDeviceProblem = (s: DeviceState | DeviceRuleProblem): s is DeviceRuleProblem => "reason" in s

/** The kernel's v1 answer for one request against a reduced state (the reference the eBPF program must match). */
export function deviceAccessAllowed(state: DeviceState, devType: number, major: number, minor: number, access: number): boolean {
  const matches = (e: DeviceException) =>
    (e.type === "b" ? DEV.block : DEV.char) === devType && (e.major === -1 || e.major === major) && (e.minor === -1 || e.minor === minor)
  if (state.defaultAllow) return !state.exceptions.some((e) => matches(e) && (e.access & access) !== 0)
  return state.exceptions.some((e) => matches(e) && (access & ~e.access) === 0)
}
