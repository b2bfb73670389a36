/**
 * The reference semantics of a seccomp profile, read straight from the rules in
 * config/seccomp-compile.ts's header (not from the compiler's code): what the
 * compiled BPF must agree with.
 */
import { ACTIONS, AUDIT_ARCH, SECCOMP_RET, type SeccompCondition, type SeccompProfile } from "../../config/seccomp-spec.ts"
import { SYSCALLS_I386, SYSCALLS_X32, SYSCALLS_X86_64 } from "../../config/syscalls-x86.ts"
import type { SeccompData } from "./bpf-interp.ts"

export const X32_BIT = 0x40000000
export const M32 = 0xffffffffn

const verdict = (action: keyof typeof ACTIONS, errno: number | undefined) =>
  action === "SCMP_ACT_ERRNO" || action === "SCMP_ACT_TRACE" ? (ACTIONS[action] | (errno ?? 1)) >>> 0 : ACTIONS[action]

export const big = (n: number) => (n >= 2 ** 64 ? (1n << 64n) - 1n : BigInt(n))

function holds(c: SeccompCondition, arg: bigint, wide: boolean): boolean {
  const t = (x: bigint) => (wide ? x : x & M32)
  const a = t(arg)
  const v = t(big(c.value))
  switch (c.op) {
    case "SCMP_CMP_EQ": return a === v
    case "SCMP_CMP_NE": return a !== v
    case "SCMP_CMP_LT": return a < v
    case "SCMP_CMP_LE": return a <= v
    case "SCMP_CMP_GT": return a > v
    case "SCMP_CMP_GE": return a >= v
    case "SCMP_CMP_MASKED_EQ": return (a & v) === t(big(c.valueTwo ?? 0))
  }
}

/** The profile's verdict for one syscall, read straight from the profile. */
export function reference(p: SeccompProfile, d: SeccompData): number {
  const arches = p.architectures ?? []
  let table: Readonly<Record<string, number>>
  let wide = false
  if (d.arch === AUDIT_ARCH.X86_64 && d.nr >>> 0 >= X32_BIT) {
    if (!arches.includes("SCMP_ARCH_X32")) return SECCOMP_RET.KILL_PROCESS
    table = SYSCALLS_X32
  } else if (d.arch === AUDIT_ARCH.X86_64) {
    table = SYSCALLS_X86_64
    wide = true
  } else if (d.arch === AUDIT_ARCH.I386 && arches.includes("SCMP_ARCH_X86")) table = SYSCALLS_I386
  else return SECCOMP_RET.KILL_PROCESS
  const def = verdict(p.defaultAction, p.defaultErrnoRet)
  // runc's -ENOSYS stub: newer than every syscall the profile names on this ABI, under a default that refuses.
  const ENOSYS = (SECCOMP_RET.ERRNO | 38) >>> 0
  const permissive = ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"].includes(p.defaultAction) || def === ENOSYS
  const named = (p.syscalls ?? []).flatMap((s) => s.names).filter((n) => Object.hasOwn(table, n)).map((n) => table[n] as number)
  const newest = Math.max(0, ...named)
  if (!permissive && newest > 0 && d.nr >>> 0 > newest) return ENOSYS
  for (const s of p.syscalls ?? []) {
    const ret = verdict(s.action, s.errnoRet)
    if (ret === def) continue
    if (!s.names.some((n) => Object.hasOwn(table, n) && table[n] === d.nr >>> 0)) continue
    const args = s.args ?? []
    const split = new Set(args.map((a) => a.index)).size < args.length
    const test = (c: SeccompCondition) => holds(c, d.args[c.index] ?? 0n, wide)
    if (split ? args.some(test) : args.every(test)) return ret
  }
  return def
}

