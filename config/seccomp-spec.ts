/**
 * The OCI `linux.seccomp` object as an Effect Schema, and the numbers its names
 * stand for (linux/seccomp.h, libseccomp's seccomp.h). Names outside these
 * tables fail the schema, so an unknown action, operator, architecture or flag
 * is reported with its JSON path (linux.seccomp.syscalls[3].args[0].op) at create.
 */
import { Schema as S } from "effect"
import { Str } from "./spec-atoms.ts"

/** SECCOMP_RET_* action values (the high 16 bits of a filter's verdict). */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const

/** OCI action name → SECCOMP_RET_*. SCMP_ACT_KILL is libseccomp's old name for KILL_THREAD. */
export const ACTIONS = {
  SCMP_ACT_KILL: SECCOMP_RET.KILL_THREAD,
  SCMP_ACT_KILL_THREAD: SECCOMP_RET.KILL_THREAD,
  SCMP_ACT_KILL_PROCESS: SECCOMP_RET.KILL_PROCESS,
  SCMP_ACT_TRAP: SECCOMP_RET.TRAP,
  SCMP_ACT_ERRNO: SECCOMP_RET.ERRNO,
  SCMP_ACT_TRACE: SECCOMP_RET.TRACE,
  SCMP_ACT_ALLOW: SECCOMP_RET.ALLOW,
  SCMP_ACT_LOG: SECCOMP_RET.LOG,
  SCMP_ACT_NOTIFY: SECCOMP_RET.USER_NOTIF,
} as const
export type ActionName = keyof typeof ACTIONS

/** seccomp() flags (linux/seccomp.h). NEW_LISTENER is ours to set, not the profile's. */
export const FILTER_FLAGS = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
} as const

/** AUDIT_ARCH_* values seccomp_data.arch carries (linux/audit.h). */
export const AUDIT_ARCH = { X86_64: 0xc000003e, I386: 0x40000003 } as const

/**
 * Every architecture name the runtime-spec lists. On this x86_64 build only
 * X86_64, X86 and X32 can ever be reported by the kernel; the others are
 * accepted and ignored (a filter section for them could never run).
 */
export const ARCHES = [
  "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
  "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
  "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
  "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
] as const

export const OPS = ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"] as const
export type CmpOp = (typeof OPS)[number]

const Action = S.Literals(Object.keys(ACTIONS) as ActionName[])
/** An errno the kernel can return: SECCOMP_RET_DATA is 16 bits, and errno values stop at MAX_ERRNO. */
const Errno = S.Int.check(S.isBetween({ minimum: 0, maximum: 4095 }))
/** u64 comparands arrive as JSON numbers; 2^64-1 comes in as the float 2^64 and is clamped by the compiler. */
const U64 = S.Int.check(S.isGreaterThanOrEqualTo(0))

export const SeccompArg = S.Struct({
  index: S.Int.check(S.isBetween({ minimum: 0, maximum: 5 }, { message: "must be an argument index from 0 to 5" })),
  value: U64,
  valueTwo: S.optional(U64),
  op: S.Literals(OPS),
})

export const SeccompSyscall = S.Struct({
  names: S.Array(Str).check(S.isMinLength(1)),
  action: Action,
  errnoRet: S.optional(Errno),
  args: S.optional(S.Array(SeccompArg)),
})

export const Seccomp = S.Struct({
  defaultAction: Action,
  defaultErrnoRet: S.optional(Errno),
  architectures: S.optional(S.Array(S.Literals(ARCHES))),
  flags: S.optional(S.Array(S.Literals(Object.keys(FILTER_FLAGS) as (keyof typeof FILTER_FLAGS)[]))),
  listenerPath: S.optional(Str),
  listenerMetadata: S.optional(Str),
  syscalls: S.optional(S.Array(SeccompSyscall)),
})

/** A decoded linux.seccomp. */
export type SeccompProfile = typeof Seccomp.Type
export type SeccompRule = typeof SeccompSyscall.Type
export type SeccompCondition = typeof SeccompArg.Type
