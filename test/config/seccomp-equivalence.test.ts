/**
 * The equivalence proof for our seccomp compiler: over random profiles and
 * random seccomp_data, the compiled BPF (run by a small interpreter) returns
 * exactly what a direct reading of the profile's semantics returns
 * (test/config/seccomp-reference.ts).
 */
import { fc, test } from "@fast-check/vitest"
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import { ABIS, abisOf, compileSeccomp, ENOSYS_RET } from "../../config/seccomp-compile.ts"
import { ACTIONS, AUDIT_ARCH, OPS, SECCOMP_RET, type SeccompProfile } from "../../config/seccomp-spec.ts"
import { SYSCALLS_I386, SYSCALLS_X32, SYSCALLS_X86_64 } from "../../config/syscalls-x86.ts"
import { runBpf, type SeccompData } from "./bpf-interp.ts"
import { big, M32, reference, X32_BIT } from "./seccomp-reference.ts"

// Names on all ABIs, on some (socketcall: i386 only; arch_prctl: not i386), and on none.
// Newer calls (clone3, faccessat2, openat2) move the -ENOSYS cut-off; rt_sigaction sits past x32's 512 compat block.
const NAMES = ["read", "write", "mkdir", "kill", "personality", "clone", "socket", "socketcall", "arch_prctl", "waitpid", "rt_sigaction", "clone3", "faccessat2", "openat2", "no_such_call"]
const ACTION_NAMES = Object.keys(ACTIONS) as (keyof typeof ACTIONS)[]
// u64 values exactly representable as JSON numbers, with equal and differing high words.
const arbValue = fc.oneof(
  fc.constantFrom(0, 1, 2, 10, 0x7fffffff, 0xffffffff, 2 ** 32, 2 ** 32 + 1, 2 ** 33 + 5, 2 ** 63, 2 ** 64 - 2 ** 11, 2 ** 64),
  fc.nat(),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
)
const arbArg = fc.record(
  { index: fc.integer({ min: 0, max: 5 }), value: arbValue, valueTwo: arbValue, op: fc.constantFrom(...OPS) },
  { requiredKeys: ["index", "value", "op"] },
)
const takesErrno = (a: string) => a === "SCMP_ACT_ERRNO" || a === "SCMP_ACT_TRACE"
const arbRule = fc
  .record({
    names: fc.subarray(NAMES, { minLength: 1, maxLength: 3 }),
    action: fc.constantFrom(...ACTION_NAMES),
    errnoRet: fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }),
    args: fc.option(fc.array(arbArg, { maxLength: 3 }), { nil: undefined }),
  })
  .map((r) => (takesErrno(r.action) ? r : { ...r, errnoRet: undefined }))
const arbProfile: fc.Arbitrary<SeccompProfile> = fc
  .record({
    defaultAction: fc.constantFrom(...ACTION_NAMES),
    defaultErrnoRet: fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }),
    architectures: fc.subarray(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"] as const),
    syscalls: fc.array(arbRule, { maxLength: 8 }),
  })
  .map((p) => (takesErrno(p.defaultAction) ? p : { ...p, defaultErrnoRet: undefined }))

const nrsOf = (p: SeccompProfile) =>
  (p.syscalls ?? []).flatMap((s) => s.names).flatMap((n) => [SYSCALLS_X86_64[n], SYSCALLS_I386[n], SYSCALLS_X32[n]].filter((x): x is number => x !== undefined))
const valuesOf = (p: SeccompProfile) => (p.syscalls ?? []).flatMap((s) => (s.args ?? []).flatMap((a) => [big(a.value), big(a.valueTwo ?? 0)]))

/** seccomp_data biased towards the profile: its syscalls and values, off by one, with the other high word. */
const arbData = (p: SeccompProfile): fc.Arbitrary<SeccompData> => {
  const vals = [0n, ...valuesOf(p)]
  const arbU64 = fc.oneof(
    fc.tuple(fc.constantFrom(...vals), fc.constantFrom(0n, 1n, -1n, 1n << 32n, -(1n << 32n), 1n << 63n)).map(([v, d]) => BigInt.asUintN(64, v + d)),
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  )
  return fc.record({
    nr: fc.oneof(fc.constantFrom(0, 1, 999, X32_BIT + 1, ...nrsOf(p), ...nrsOf(p).map((n) => n + 1)), fc.nat()),
    arch: fc.constantFrom(AUDIT_ARCH.X86_64, AUDIT_ARCH.X86_64, AUDIT_ARCH.I386, 0xc00000b7 /* aarch64 */),
    args: fc.array(arbU64, { minLength: 6, maxLength: 6 }),
  })
}

const compile = (p: SeccompProfile) => Result.getOrThrow(compileSeccomp(p))

describe("the compiled seccomp filter", () => {
  test.prop([arbProfile.chain((p) => fc.tuple(fc.constant(p), fc.array(arbData(p), { minLength: 1, maxLength: 40 })))], { numRuns: 400 })(
    "returns what the profile says, for any syscall on any arch",
    ([profile, datas]) => {
      const { filter } = compile(profile)
      for (const d of datas) expect(runBpf(filter, d) >>> 0).toBe(reference(profile, d) >>> 0)
    },
  )

  // One condition at a time, on arguments near its operands: every operator, with high words equal or not.
  const arbCond = fc.record({ op: fc.constantFrom(...OPS), value: arbValue, valueTwo: arbValue, hiBits: fc.bigInt({ min: 0n, max: M32 }) })
  test.prop([arbCond, fc.array(fc.constantFrom(0n, 1n, -1n, 1n << 32n, -(1n << 32n)), { minLength: 1, maxLength: 3 }), fc.boolean()], { numRuns: 1000 })(
    "decides each operator on 64-bit values as unsigned hi/lo words",
    ({ op, value, valueTwo, hiBits }, deltas, fromTwo) => {
      const p: SeccompProfile = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["kill"], action: "SCMP_ACT_KILL_PROCESS", args: [{ index: 2, value, valueTwo, op }] }] }
      const { filter } = compile(p)
      const base = fromTwo ? big(valueTwo) : big(value)
      for (const arg of [...deltas.map((d) => BigInt.asUintN(64, base + d)), base ^ (hiBits << 32n), base | (hiBits << 32n)]) {
        const d = { nr: SYSCALLS_X86_64.kill!, arch: AUDIT_ARCH.X86_64, args: [0n, 0n, arg] }
        expect(runBpf(filter, d)).toBe(reference(p, d))
      }
    },
  )

  it("compares 64-bit arguments whose high words differ", () => {
    const p: SeccompProfile = {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [
        { names: ["kill"], action: "SCMP_ACT_ERRNO", errnoRet: 3, args: [{ index: 1, value: 2 ** 32 + 10, op: "SCMP_CMP_GT" }] },
        { names: ["read"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 5, op: "SCMP_CMP_EQ" }] },
      ],
    }
    const { filter } = compile(p)
    const kill = (a1: bigint) => runBpf(filter, { nr: SYSCALLS_X86_64.kill!, arch: AUDIT_ARCH.X86_64, args: [0n, a1] })
    expect(kill(11n)).toBe(SECCOMP_RET.ALLOW) // low word 11 > 10, but the high word is smaller
    expect(kill((1n << 32n) + 11n)).toBe(SECCOMP_RET.ERRNO | 3)
    expect(kill((1n << 32n) + 10n)).toBe(SECCOMP_RET.ALLOW)
    expect(kill((2n << 32n) + 0n)).toBe(SECCOMP_RET.ERRNO | 3) // high word larger, low word smaller
    const read = (a0: bigint) => runBpf(filter, { nr: SYSCALLS_X86_64.read!, arch: AUDIT_ARCH.X86_64, args: [a0] })
    expect(read(5n)).toBe(SECCOMP_RET.ERRNO | 1)
    expect(read((1n << 32n) + 5n)).toBe(SECCOMP_RET.ALLOW) // same low word, other high word
  })

  it("kills the process for an ABI the profile does not list, and x32 numbers unless x32 is listed", () => {
    const only64 = compile({ defaultAction: "SCMP_ACT_ALLOW" }).filter
    expect(runBpf(only64, { nr: 1, arch: AUDIT_ARCH.I386, args: [] })).toBe(SECCOMP_RET.KILL_PROCESS)
    expect(runBpf(only64, { nr: X32_BIT + 1, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(SECCOMP_RET.KILL_PROCESS)
    expect(runBpf(only64, { nr: 1, arch: 0xc00000b7, args: [] })).toBe(SECCOMP_RET.KILL_PROCESS)
    expect(runBpf(only64, { nr: 1, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(SECCOMP_RET.ALLOW)
    const all = compile({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"] }).filter
    expect(runBpf(all, { nr: 1, arch: AUDIT_ARCH.I386, args: [] })).toBe(SECCOMP_RET.ALLOW)
    expect(runBpf(all, { nr: X32_BIT + 1, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(SECCOMP_RET.ALLOW)
  })

  describe("syscalls newer than the profile (runc's -ENOSYS stub)", () => {
    const REFUSING = ["SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_NOTIFY"] as const
    const PERMISSIVE = ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"] as const
    // Where each ABI's syscalls arrive: its arch token, x32 with the x32 bit in the number.
    const ARCH_OF = { x86_64: AUDIT_ARCH.X86_64, i386: AUDIT_ARCH.I386, x32: AUDIT_ARCH.X86_64 } as const
    const newestOf = (p: SeccompProfile, table: Readonly<Record<string, number>>) =>
      Math.max(0, ...(p.syscalls ?? []).flatMap((s) => s.names).filter((n) => Object.hasOwn(table, n)).map((n) => table[n]!))
    const permissiveRet = (a: (typeof PERMISSIVE)[number]) => (a === "SCMP_ACT_TRACE" ? (ACTIONS[a] | 1) >>> 0 : ACTIONS[a])
    const arbAbove = fc.oneof(fc.constantFrom(1, 2, 100, 600), fc.integer({ min: 1, max: 2 ** 29 }))

    test.prop([arbProfile, fc.constantFrom(...REFUSING), fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }), arbAbove], { numRuns: 400 })(
      "get ENOSYS under a refusing default, per ABI, above the newest number the profile names there",
      (p, defaultAction, errno, above) => {
        const profile: SeccompProfile = { ...p, defaultAction, defaultErrnoRet: defaultAction === "SCMP_ACT_ERRNO" ? errno : undefined }
        const def = profile.defaultAction === "SCMP_ACT_ERRNO" ? (SECCOMP_RET.ERRNO | (errno ?? 1)) >>> 0 : ACTIONS[defaultAction]
        const { filter } = compile(profile)
        for (const abi of abisOf(profile)) {
          const newest = newestOf(profile, abi.table)
          if (newest === 0) continue // nothing named on this ABI: no stub (as runc)
          const nr = abi === ABIS.x32 ? Math.min(newest + above, 2 ** 32 - 1) : Math.min(newest + above, X32_BIT - 1)
          if (nr <= newest) continue
          const d = { nr, arch: ARCH_OF[abi.name], args: [] }
          // An ERRNO(ENOSYS) default already says it: same verdict, stub or not.
          expect(runBpf(filter, d) >>> 0).toBe(def === ENOSYS_RET ? def : ENOSYS_RET)
        }
      },
    )

    test.prop([arbProfile, fc.constantFrom(...PERMISSIVE), arbAbove], { numRuns: 200 })(
      "go ahead under a permissive default (ALLOW, LOG, TRACE: no stub)",
      (p, defaultAction, above) => {
        const profile: SeccompProfile = { ...p, defaultAction, defaultErrnoRet: undefined }
        const nr = Math.min(newestOf(profile, SYSCALLS_X86_64) + above, X32_BIT - 1)
        expect(runBpf(compile(profile).filter, { nr, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(permissiveRet(defaultAction))
      },
    )

    it("cut off per ABI: x86_64, i386 and x32 each at their own newest named number", () => {
      const p: SeccompProfile = {
        defaultAction: "SCMP_ACT_ERRNO",
        architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        // openat: 257 on x86_64, 295 on i386, 257|x32 bit on x32; socketcall only on i386 (102).
        syscalls: [{ names: ["execve", "openat", "socketcall"], action: "SCMP_ACT_ALLOW" }],
      }
      const { filter } = compile(p)
      const v = (nr: number, arch: number) => runBpf(filter, { nr, arch, args: [] })
      const EPERM = SECCOMP_RET.ERRNO | 1
      expect(v(257, AUDIT_ARCH.X86_64)).toBe(SECCOMP_RET.ALLOW)
      expect(v(256, AUDIT_ARCH.X86_64)).toBe(EPERM) // known to the kernel, not named: the default
      expect(v(258, AUDIT_ARCH.X86_64)).toBe(ENOSYS_RET)
      expect(v(SYSCALLS_X86_64.faccessat2!, AUDIT_ARCH.X86_64)).toBe(ENOSYS_RET)
      expect(v(SYSCALLS_I386.openat!, AUDIT_ARCH.I386)).toBe(SECCOMP_RET.ALLOW)
      expect(v(SYSCALLS_I386.openat! - 1, AUDIT_ARCH.I386)).toBe(EPERM)
      expect(v(SYSCALLS_I386.openat! + 1, AUDIT_ARCH.I386)).toBe(ENOSYS_RET)
      // x32's execve is in its compat block (520|bit), above openat: that is x32's cut-off.
      expect(v(SYSCALLS_X32.execve!, AUDIT_ARCH.X86_64)).toBe(SECCOMP_RET.ALLOW)
      expect(v(SYSCALLS_X32.faccessat2!, AUDIT_ARCH.X86_64)).toBe(EPERM)
      expect(v(SYSCALLS_X32.execve! + 1, AUDIT_ARCH.X86_64)).toBe(ENOSYS_RET)
      // Without x32 listed, an x32 number is still killed, not answered.
      const only64 = compile({ ...p, architectures: ["SCMP_ARCH_X86_64"] }).filter
      expect(runBpf(only64, { nr: SYSCALLS_X32.execve! + 1, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(SECCOMP_RET.KILL_PROCESS)
      expect(runBpf(only64, { nr: 1000, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(ENOSYS_RET)
    })

    it("a KILL default answers a new syscall with ENOSYS too; an unnamed older one is still killed", () => {
      const { filter } = compile({ defaultAction: "SCMP_ACT_KILL_PROCESS", syscalls: [{ names: ["execve", "clone3"], action: "SCMP_ACT_ALLOW" }] })
      expect(runBpf(filter, { nr: SYSCALLS_X86_64.clone3!, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(SECCOMP_RET.ALLOW)
      expect(runBpf(filter, { nr: SYSCALLS_X86_64.faccessat2!, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(ENOSYS_RET)
      expect(runBpf(filter, { nr: SYSCALLS_X86_64.mkdir!, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(SECCOMP_RET.KILL_PROCESS)
    })
  })
})
