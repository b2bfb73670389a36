/**
 * linux.seccomp → a ready classic-BPF filter, compiled in the manager once per
 * distinct profile; the init helper only installs the bytes (XC_OP_SECCOMP).
 *
 * Why our own compiler and not libseccomp: the plan stays data (bytes in a
 * PlanOp) built by a pure function, so the manager needs no native dependency
 * beyond the addon it has, the result caches by a hash of the profile, and the
 * whole of it is property-tested without root against a BPF interpreter
 * (test/config/seccomp-equivalence.test.ts). The price is owning the syscall
 * tables (generated from the kernel headers: tools/gen-syscalls.mjs) and the
 * semantics below, which follow what runc does over libseccomp:
 *
 * - Architectures: the native ABI (x86_64) is always in the filter, as in a
 *   libseccomp filter; SCMP_ARCH_X86 adds the i386 ABI (int 0x80), SCMP_ARCH_X32
 *   the x32 ABI (arch AUDIT_ARCH_X86_64 with nr >= __X32_SYSCALL_BIT). Any other
 *   arch, and x32 numbers when x32 is not listed, get KILL_PROCESS: a
 *   foreign-ABI syscall must not slip past an allow-list written for another
 *   table (libseccomp's bad-arch action is KILL; we kill the whole process, not
 *   one thread, so nothing is left half-running). Other listed arches
 *   (ARM, …) cannot occur on this kernel and are ignored.
 * - Rules apply in profile order; for one syscall the first rule whose
 *   conditions hold decides. Conditions of a rule are ANDed, except that a rule
 *   naming one argument index twice is split into one rule per condition (ORed),
 *   as runc does. A rule whose action equals the default action is skipped
 *   (libseccomp refuses it; runc skips it).
 * - Arguments are u64 compared unsigned as hi/lo 32-bit words; on the 32-bit
 *   ABIs (i386, x32) only the low word (what the syscall itself reads) is
 *   compared, with the operand truncated, as libseccomp does.
 * - ERRNO and TRACE carry errnoRet (the rule's, else EPERM); the default
 *   action's comes from defaultErrnoRet.
 * - Syscall names unknown to an ABI are skipped for that ABI; names unknown to
 *   every ABI in the filter are returned in `skipped` for a debug log.
 * - Syscalls newer than the profile get ENOSYS, not the default action (runc's
 *   patchbpf "-ENOSYS stub", libcontainer/seccomp/patchbpf/enosys_linux.go):
 *   per ABI of the filter, a syscall number above the largest number that ABI
 *   gives any name the profile lists (whatever that rule's action, even one
 *   skipped as equal to the default) returns ERRNO(ENOSYS). A profile written
 *   before a syscall existed cannot mean to refuse it with EPERM: libc tries
 *   the new call first (clone3, faccessat2, openat2, …) and falls back to the
 *   old one only on ENOSYS, so EPERM breaks newer images on older profiles.
 *   The cut-off is per ABI: x86_64, i386, and x32 (whose numbers carry the x32
 *   bit, compared as the kernel reports them), as runc does for AMD64, X86 and
 *   X32 (jset 1<<30 splits x86_64 from x32). An ABI the profile names nothing
 *   for gets no stub (runc warns "could not find any syscalls for arch").
 *   No stub when the default lets calls through (ALLOW, LOG, and TRACE: a
 *   tracer should handle new syscalls itself) or already is ERRNO(ENOSYS); so
 *   it applies to ERRNO, KILL*, TRAP and NOTIFY defaults: a KILL default still
 *   answers an unknown-to-the-profile syscall with ENOSYS instead of killing.
 *   As in runc the cut-off is the newest number named, not a table of kernel
 *   versions: a syscall below it that the profile does not name (one added out
 *   of order, or simply left out) still gets the default action. The x86_64
 *   section is always in our filter, so it always gets its stub (runc ≥ 1.1.x
 *   adds the native arch likewise). Docker's profile names clone3 itself, with
 *   errnoRet ENOSYS for containers without CAP_SYS_ADMIN (clone3's flags sit in
 *   memory and cannot be filtered), so glibc falls back to clone there too:
 *   runc does nothing special for clone3, and neither do we
 *   (config/seccomp-default.ts renders that rule).
 */
import { createHash } from "node:crypto"
import { Result } from "effect"
import { ConfigError } from "../effects/errors.ts"
import { Assembler, BPF, BPF_MAXINSNS, SECCOMP_DATA, type Label } from "./seccomp-bpf.ts"
import { ACTIONS, AUDIT_ARCH, FILTER_FLAGS, SECCOMP_RET, type CmpOp, type SeccompProfile } from "./seccomp-spec.ts"
import { startProblem } from "./seccomp-checks.ts"
import { SYSCALLS_I386, SYSCALLS_X32, SYSCALLS_X86_64 } from "./syscalls-x86.ts"

/** A compiled filter: what XC_OP_SECCOMP installs. */
export interface CompiledSeccomp {
  /** struct sock_filter[] bytes. */
  readonly filter: Uint8Array
  /** seccomp(SECCOMP_SET_MODE_FILTER) flags. */
  readonly flags: number
  /** Syscall names no ABI of the filter knows (skipped, as runc does). */
  readonly skipped: readonly string[]
  /** The profile returns SECCOMP_RET_USER_NOTIF somewhere. */
  readonly notify: boolean
}

const EPERM = 1
const ENOSYS = 38
/** The verdict for a syscall newer than the profile (runc's retErrnoEnosys). */
export const ENOSYS_RET = (SECCOMP_RET.ERRNO | ENOSYS) >>> 0
export const X32_SYSCALL_BIT = 0x40000000
/** What a syscall of an ABI the filter does not cover gets. */
export const BAD_ARCH_RET = SECCOMP_RET.KILL_PROCESS

/** One ABI's section of the filter. `wide`: args compared as 64-bit values. */
export interface Abi {
  readonly name: "x86_64" | "i386" | "x32"
  readonly arch: number
  readonly table: Readonly<Record<string, number>>
  readonly wide: boolean
}
export const ABIS: Readonly<Record<Abi["name"], Abi>> = {
  x86_64: { name: "x86_64", arch: AUDIT_ARCH.X86_64, table: SYSCALLS_X86_64, wide: true },
  i386: { name: "i386", arch: AUDIT_ARCH.I386, table: SYSCALLS_I386, wide: false },
  x32: { name: "x32", arch: AUDIT_ARCH.X86_64, table: SYSCALLS_X32, wide: false },
}

/** A condition with its operands as u64. */
export interface Cond {
  readonly index: number
  readonly op: CmpOp
  readonly value: bigint
  readonly valueTwo: bigint
}
/** One rule after expansion: all conditions must hold for `ret` to be returned. */
export interface Rule {
  readonly conds: readonly Cond[]
  readonly ret: number
}

const U64_MAX = (1n << 64n) - 1n
const u64 = (n: number): bigint => (n >= 2 ** 64 ? U64_MAX : BigInt(n))
const retOf = (action: keyof typeof ACTIONS, errno: number | undefined): number =>
  action === "SCMP_ACT_ERRNO" || action === "SCMP_ACT_TRACE" ? (ACTIONS[action] | ((errno ?? EPERM) & 0xffff)) >>> 0 : ACTIONS[action]

/** The ABIs a profile's filter covers (x86_64 always). */
export function abisOf(profile: SeccompProfile): Abi[] {
  const arches = profile.architectures ?? []
  return [ABIS.x86_64, ...(arches.includes("SCMP_ARCH_X86") ? [ABIS.i386] : []), ...(arches.includes("SCMP_ARCH_X32") ? [ABIS.x32] : [])]
}

/** The default verdict of a profile. */
export const defaultRet = (p: SeccompProfile): number => retOf(p.defaultAction, p.defaultErrnoRet)

/** The defaults under which a new syscall goes ahead anyway (runc's isAllowAction): no -ENOSYS stub. */
const PERMISSIVE: ReadonlySet<string> = new Set(["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"])

/**
 * The largest syscall number of `abi` above which the filter answers ENOSYS, or undefined when
 * it has no such stub for that ABI (a permissive or already-ENOSYS default, or no name the ABI knows).
 */
export function enosysCutoff(p: SeccompProfile, abi: Abi): number | undefined {
  if (PERMISSIVE.has(p.defaultAction) || defaultRet(p) === ENOSYS_RET) return undefined
  let newest: number | undefined
  for (const s of p.syscalls ?? [])
    for (const name of s.names)
      if (Object.hasOwn(abi.table, name)) newest = Math.max(newest ?? 0, abi.table[name] as number)
  // runc takes a largest number of 0 for "none found" (read on x86_64, restart_syscall on i386): no stub.
  return newest === 0 ? undefined : newest
}

/** Checks what the schema cannot; the first problem, with its JSON path. */
function validate(p: SeccompProfile): ConfigError | undefined {
  const at = "linux.seccomp"
  const takesErrno = (a: string) => a === "SCMP_ACT_ERRNO" || a === "SCMP_ACT_TRACE"
  if (p.defaultErrnoRet !== undefined && !takesErrno(p.defaultAction))
    return new ConfigError({ path: `${at}.defaultErrnoRet`, reason: "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno" })
  for (const [i, s] of (p.syscalls ?? []).entries())
    if (s.errnoRet !== undefined && !takesErrno(s.action))
      return new ConfigError({ path: `${at}.syscalls[${i}].errnoRet`, reason: "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno" })
  return undefined
}

/** Per ABI: syscall number → its rules in profile order (runc's expansion; default-action rules dropped). */
export function rulesByNr(p: SeccompProfile, abi: Abi): Map<number, Rule[]> {
  const def = defaultRet(p)
  const out = new Map<number, Rule[]>()
  for (const s of p.syscalls ?? []) {
    const ret = retOf(s.action, s.errnoRet)
    if (ret === def) continue
    const conds: Cond[] = (s.args ?? []).map((a) => ({ index: a.index, op: a.op, value: u64(a.value), valueTwo: u64(a.valueTwo ?? 0) }))
    const repeated = new Set(conds.map((c) => c.index)).size < conds.length
    const rules: Rule[] = repeated ? conds.map((c) => ({ conds: [c], ret })) : [{ conds, ret }]
    for (const name of s.names) {
      if (!Object.hasOwn(abi.table, name)) continue
      const nr = abi.table[name] as number
      const list = out.get(nr) ?? []
      list.push(...rules)
      out.set(nr, list)
    }
  }
  return out
}

/** Emits one condition: falls through when it holds, jumps to `fail` when not. */
function emitCond(a: Assembler, c: Cond, wide: boolean, fail: Label): void {
  const pass = a.label()
  const lo = Number(c.value & 0xffffffffn)
  const hi = Number(c.value >> 32n)
  const lo2 = Number(c.valueTwo & 0xffffffffn)
  const hi2 = Number(c.valueTwo >> 32n)
  // hiFirst: decide on the high words, or fall through (equal) to the low-word test.
  const word = (ld: (off: number) => void, hiTest: () => void, loTest: () => void) => {
    if (wide) {
      ld(SECCOMP_DATA.argHi(c.index))
      hiTest()
    }
    ld(SECCOMP_DATA.argLo(c.index))
    loTest()
  }
  const ld = (off: number) => a.ld(off)
  switch (c.op) {
    case "SCMP_CMP_EQ":
      word(ld, () => a.jmp(BPF.JEQ_K, hi, 0, fail), () => a.jmp(BPF.JEQ_K, lo, pass, fail))
      break
    case "SCMP_CMP_NE":
      word(ld, () => a.jmp(BPF.JEQ_K, hi, 0, pass), () => a.jmp(BPF.JEQ_K, lo, fail, pass))
      break
    case "SCMP_CMP_GT":
    case "SCMP_CMP_GE": {
      const lowOp = c.op === "SCMP_CMP_GT" ? BPF.JGT_K : BPF.JGE_K
      word(ld, () => { a.jmp(BPF.JGT_K, hi, pass, 0); a.jmp(BPF.JEQ_K, hi, 0, fail) }, () => a.jmp(lowOp, lo, pass, fail))
      break
    }
    case "SCMP_CMP_LT":
    case "SCMP_CMP_LE": {
      // LT is not GE, LE is not GT: the same tests with the targets swapped.
      const lowOp = c.op === "SCMP_CMP_LE" ? BPF.JGT_K : BPF.JGE_K
      word(ld, () => { a.jmp(BPF.JGT_K, hi, fail, 0); a.jmp(BPF.JEQ_K, hi, 0, pass) }, () => a.jmp(lowOp, lo, fail, pass))
      break
    }
    case "SCMP_CMP_MASKED_EQ": {
      // OCI: value is the mask, valueTwo the datum: (arg & value) == valueTwo.
      const test = (off: number, mask: number, datum: number, last: boolean) => {
        a.ld(off)
        a.and(mask)
        a.jmp(BPF.JEQ_K, datum, last ? pass : 0, fail)
      }
      if (wide) test(SECCOMP_DATA.argHi(c.index), hi, hi2, false)
      test(SECCOMP_DATA.argLo(c.index), lo, lo2, true)
      break
    }
  }
  a.place(pass)
}

/** Syscalls per leaf of the dispatch tree: a leaf is a run of `jeq`, short enough for 8-bit jumps. */
const LEAF = 8
/** Subtrees up to this many syscalls fit within a conditional jump (< 255 instructions). */
const SHORT_SUBTREE = 64

/**
 * One ABI's section (A holds nr): a binary search over the syscall numbers, then a
 * run of `jeq` per leaf. Why a tree and not one long run: the kernel evaluates the
 * filter for every syscall number when it is installed (seccomp_cache_prepare, to
 * cache the always-allowed ones), so the install costs numbers × path length; a
 * linear run of Moby's ~350 names cost ~5 ms per container start here.
 */
function emitAbi(a: Assembler, abi: Abi, rules: Map<number, Rule[]>, def: number): void {
  const entries = [...rules.entries()].sort(([x], [y]) => x - y)
  const bodies: [Label, Rule[]][] = []
  const leaf = (part: [number, Rule[]][]) => {
    const rets = new Map<number, Label>()
    for (const [nr, list] of part) {
      const first = list[0] as Rule
      if (first.conds.length === 0) {
        const l = rets.get(first.ret) ?? a.label()
        rets.set(first.ret, l)
        a.jmp(BPF.JEQ_K, nr, l, 0)
      } else {
        const body = a.label()
        bodies.push([body, list])
        a.jmp(BPF.JEQ_K, nr, 0, 1)
        a.ja(body)
      }
    }
    a.ret(def)
    for (const [ret, l] of rets) {
      a.place(l)
      a.ret(ret)
    }
  }
  const tree = (part: [number, Rule[]][]) => {
    if (part.length <= LEAF) return leaf(part)
    const mid = Math.floor(part.length / 2)
    const right = a.label()
    const [pivot] = part[mid] as [number, Rule[]]
    if (mid <= SHORT_SUBTREE) a.jmp(BPF.JGE_K, pivot, right, 0)
    else {
      a.jmp(BPF.JGE_K, pivot, 0, 1)
      a.ja(right)
    }
    tree(part.slice(0, mid))
    a.place(right)
    tree(part.slice(mid))
  }
  tree(entries)
  for (const [body, list] of bodies) {
    a.place(body)
    for (const rule of list) {
      const next = a.label()
      for (const c of rule.conds) emitCond(a, c, abi.wide, next)
      a.ret(rule.ret)
      a.place(next)
      if (rule.conds.length === 0) break // later rules for this syscall are unreachable
    }
    a.ret(def)
  }
}

/** Compiles a profile (pure). Fails only on input the schema could not judge, or a filter over the kernel's limit. */
export function compileSeccomp(profile: SeccompProfile): Result.Result<CompiledSeccomp, ConfigError> {
  const bad = validate(profile)
  if (bad) return Result.fail(bad)
  const abis = abisOf(profile)
  const def = defaultRet(profile)
  const a = new Assembler()
  const x32 = abis.includes(ABIS.x32)
  const sections = new Map<number, Label>()
  a.ld(SECCOMP_DATA.arch)
  for (const arch of new Set(abis.map((x) => x.arch))) {
    const l = a.label()
    sections.set(arch, l)
    a.jmp(BPF.JEQ_K, arch, 0, 1)
    a.ja(l)
  }
  a.ret(BAD_ARCH_RET)
  const x32Section = a.label()
  for (const abi of abis) {
    if (abi === ABIS.x32) a.place(x32Section)
    else a.place(sections.get(abi.arch) as Label)
    if (abi !== ABIS.x32) a.ld(SECCOMP_DATA.nr)
    if (abi === ABIS.x86_64) {
      // x32 syscalls arrive under the x86_64 arch token with the x32 bit set.
      if (x32) {
        a.jmp(BPF.JGE_K, X32_SYSCALL_BIT, 0, 1)
        a.ja(x32Section)
      } else {
        a.jmp(BPF.JGE_K, X32_SYSCALL_BIT, 0, 1)
        a.ret(BAD_ARCH_RET)
      }
    }
    // A holds the syscall number: anything newer than the profile knows gets ENOSYS.
    const cutoff = enosysCutoff(profile, abi)
    if (cutoff !== undefined) {
      a.jmp(BPF.JGT_K, cutoff, 0, 1)
      a.ret(ENOSYS_RET)
    }
    emitAbi(a, abi, rulesByNr(profile, abi), def)
  }
  if (a.length > BPF_MAXINSNS)
    return Result.fail(new ConfigError({ path: "linux.seccomp", reason: `the filter needs ${a.length} BPF instructions (the kernel takes ${BPF_MAXINSNS})` }))
  const names = new Set((profile.syscalls ?? []).flatMap((s) => s.names))
  const skipped = [...names].filter((n) => !abis.some((abi) => Object.hasOwn(abi.table, n)))
  const notify = def === SECCOMP_RET.USER_NOTIF || (profile.syscalls ?? []).some((s) => s.action === "SCMP_ACT_NOTIFY")
  const flags = (profile.flags ?? []).reduce((f, n) => f | FILTER_FLAGS[n], 0)
  return Result.succeed({ filter: a.bytes(), flags, skipped, notify })
}

/** JSON with object keys sorted: equal profiles hash equal whatever their key order. */
const canonical = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(canonical).join(",")}]`
    : v !== null && typeof v === "object"
      ? `{${Object.keys(v)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
          .join(",")}}`
      : JSON.stringify(v)

const CACHE_MAX = 64
const cache = new Map<string, Result.Result<CompiledSeccomp, ConfigError>>()

/** compileSeccomp memoized by a hash of the canonical profile JSON (the last CACHE_MAX profiles). */
export function compileSeccompCached(profile: SeccompProfile): Result.Result<CompiledSeccomp, ConfigError> {
  const key = createHash("sha256").update(canonical(profile)).digest("hex")
  const hit = cache.get(key)
  if (hit) return hit
  const out = compileSeccomp(profile)
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string)
  cache.set(key, out)
  return out
}

/** Why linux.seccomp cannot be used (its JSON path and the reason), or undefined. Compiles it (cached). */
export function seccompProblem(profile: SeccompProfile): { path: string; reason: string } | undefined {
  const compiled = compileSeccompCached(profile)
  if (Result.isFailure(compiled)) return { path: compiled.failure.path, reason: compiled.failure.reason }
  return startProblem(profile, compiled.success.notify)
}
