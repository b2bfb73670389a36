/** linux.seccomp at create: bad input named by JSON path, flags, skipped names, the cache. */
import { Effect, Result } from "effect"
import { describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import { parseSpec } from "../../config/parse.ts"
import { compileSeccomp, compileSeccompCached } from "../../config/seccomp-compile.ts"
import type { SeccompProfile } from "../../config/seccomp-spec.ts"

const base = defaultSpec(["sh"])
const withSeccomp = (seccomp: unknown) => ({ ...base, linux: { ...base.linux, seccomp } })
const problem = (seccomp: unknown) => {
  const r = Effect.runSync(Effect.result(parseSpec(withSeccomp(seccomp))))
  return Result.isFailure(r) ? { path: r.failure.path, reason: r.failure.reason } : undefined
}
const rule = (over: Record<string, unknown>) => ({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }, { names: ["kill"], action: "SCMP_ACT_ERRNO", ...over }] })

describe("linux.seccomp validation", () => {
  it("accepts a profile using every action, every operator and flag", () => {
    expect(
      problem({
        defaultAction: "SCMP_ACT_ERRNO",
        defaultErrnoRet: 38,
        architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        flags: ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        listenerPath: "/run/agent.sock",
        syscalls: [
          // The init's execve and its sendmsg of the listener must get through (config/seccomp-checks.ts).
          { names: ["execve", "sendmsg"], action: "SCMP_ACT_ALLOW" },
          ...["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"].map((action, i) => ({
            names: ["kill"],
            action,
            args: [{ index: i % 6, value: 2 ** 40, valueTwo: 3, op: ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_EQ"][i] }],
          })),
        ],
      }),
    ).toBeUndefined()
  })

  it.each([
    [{ defaultAction: "SCMP_ACT_MAYBE" }, "linux.seccomp.defaultAction"],
    [rule({ action: "SCMP_ACT_NOPE" }), "linux.seccomp.syscalls[1].action"],
    [rule({ args: [{ index: 6, value: 1, op: "SCMP_CMP_EQ" }] }), "linux.seccomp.syscalls[1].args[0].index"],
    [rule({ args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ" }, { index: 1, value: 1, op: "SCMP_CMP_SORTA" }] }), "linux.seccomp.syscalls[1].args[1].op"],
    [rule({ args: [{ index: 0, value: -1, op: "SCMP_CMP_EQ" }] }), "linux.seccomp.syscalls[1].args[0].value"],
    [rule({ errnoRet: 70000 }), "linux.seccomp.syscalls[1].errnoRet"],
    [rule({ action: "SCMP_ACT_ALLOW", errnoRet: 1 }), "linux.seccomp.syscalls[1].errnoRet"],
    [rule({ names: [] }), "linux.seccomp.syscalls[1].names"],
    [{ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_Z80"] }, "linux.seccomp.architectures[0]"],
    [{ defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_NEW_LISTENER"] }, "linux.seccomp.flags[0]"],
    [{ defaultAction: "SCMP_ACT_KILL", defaultErrnoRet: 1 }, "linux.seccomp.defaultErrnoRet"],
    [{ defaultAction: "SCMP_ACT_ERRNO" }, "linux.seccomp.defaultAction"],
    [{ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }, { names: ["execve"], action: "SCMP_ACT_KILL" }] }, "linux.seccomp.syscalls[1]"],
    [{ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["sendmsg", "mkdir"], action: "SCMP_ACT_NOTIFY" }] }, "linux.seccomp.syscalls[0]"],
    [{ defaultAction: "SCMP_ACT_NOTIFY", syscalls: [{ names: ["execve"], action: "SCMP_ACT_ALLOW" }] }, "linux.seccomp.defaultAction"],
    ["nope", "linux.seccomp"],
  ])("rejects %j at %s", (seccomp, path) => {
    expect(problem(seccomp)?.path).toBe(path)
  })

  it.each([
    ["an unconditional rule", { names: ["mkdir", "write"], action: "SCMP_ACT_NOTIFY" }],
    ["a conditional rule", { names: ["write"], action: "SCMP_ACT_NOTIFY", args: [{ index: 0, value: 2, op: "SCMP_CMP_EQ" }] }],
  ])("refuses SCMP_ACT_NOTIFY on write (%s), in runc's words, naming the name", (_, r) => {
    const p = problem({ defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/run/agent.sock", syscalls: [{ names: ["read"], action: "SCMP_ACT_ERRNO" }, r] })
    expect(p?.path).toBe(`linux.seccomp.syscalls[1].names[${r.names.indexOf("write")}]`)
    expect(p?.reason).toMatch(/^SCMP_ACT_NOTIFY cannot be used for the write syscall/)
    // write under another action, and NOTIFY on its neighbours, are fine.
    expect(problem({ defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/run/agent.sock", syscalls: [{ names: ["write"], action: "SCMP_ACT_LOG" }, { names: ["writev", "read"], action: "SCMP_ACT_NOTIFY" }] })).toBeUndefined()
  })

  it("refuses SCMP_ACT_NOTIFY as the default action even when write and sendmsg are let through, in runc's words", () => {
    const p = problem({ defaultAction: "SCMP_ACT_NOTIFY", listenerPath: "/run/agent.sock", syscalls: [{ names: ["execve", "sendmsg", "write"], action: "SCMP_ACT_ALLOW" }] })
    expect(p).toEqual({ path: "linux.seccomp.defaultAction", reason: expect.stringMatching(/^SCMP_ACT_NOTIFY cannot be used as default action/) })
  })

  it("turns flags into seccomp() flags and reports names no ABI knows", () => {
    const c = Result.getOrThrow(
      compileSeccomp({
        defaultAction: "SCMP_ACT_ALLOW",
        flags: ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        syscalls: [{ names: ["mkdir", "not_a_syscall", "socketcall"], action: "SCMP_ACT_ERRNO" }],
      }),
    )
    expect(c.flags).toBe(1 | 4)
    // socketcall exists only on i386, which this profile does not list.
    expect(c.skipped).toEqual(["not_a_syscall", "socketcall"])
  })

  it("compiles a profile once: equal profiles, whatever their key order, share the result", () => {
    const a: SeccompProfile = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 5 }] }
    const b = JSON.parse('{"syscalls":[{"errnoRet":5,"action":"SCMP_ACT_ERRNO","names":["mkdir"]}],"defaultAction":"SCMP_ACT_ALLOW"}') as SeccompProfile
    expect(compileSeccompCached(a)).toBe(compileSeccompCached(b))
    expect(compileSeccompCached(a)).not.toBe(compileSeccompCached({ ...a, defaultErrnoRet: undefined, flags: ["SECCOMP_FILTER_FLAG_LOG"] }))
  })
})
