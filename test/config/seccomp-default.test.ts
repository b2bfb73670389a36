/** The default profile (Moby's, rendered for x86_64), checked through the compiled BPF. */
import { fc, test } from "@fast-check/vitest"
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import { compileSeccomp, ENOSYS_RET, X32_SYSCALL_BIT } from "../../config/seccomp-compile.ts"
import { DEFAULT_SECCOMP, defaultSeccompProfile } from "../../config/seccomp-default.ts"
import { AUDIT_ARCH, SECCOMP_RET } from "../../config/seccomp-spec.ts"
import { SYSCALLS_I386, SYSCALLS_X32, SYSCALLS_X86_64 } from "../../config/syscalls-x86.ts"
import { runBpf } from "./bpf-interp.ts"
import { reference } from "./seccomp-reference.ts"

const filter = Result.getOrThrow(compileSeccomp(DEFAULT_SECCOMP)).filter
const EPERM = SECCOMP_RET.ERRNO | 1
const x64 = (name: string, ...args: bigint[]) => runBpf(filter, { nr: SYSCALLS_X86_64[name]!, arch: AUDIT_ARCH.X86_64, args })

describe("the default seccomp profile", () => {
  it("allows what a shell needs and refuses what escapes a container", () => {
    for (const n of ["read", "write", "openat", "execve", "wait4", "rt_sigaction", "getdents64", "arch_prctl"]) expect(x64(n)).toBe(SECCOMP_RET.ALLOW)
    for (const n of ["mount", "umount2", "unshare", "setns", "reboot", "kexec_load", "init_module", "bpf", "keyctl", "open_by_handle_at"]) expect(x64(n)).toBe(EPERM)
  })

  it("filters clone on its namespace flags, refuses clone3 with ENOSYS and AF_VSOCK sockets", () => {
    expect(x64("clone", 0x11n /* SIGCHLD */)).toBe(SECCOMP_RET.ALLOW)
    expect(x64("clone", 0x10000000n /* CLONE_NEWUSER */)).toBe(EPERM)
    expect(x64("clone3")).toBe(SECCOMP_RET.ERRNO | 38)
    expect(x64("socket", 2n)).toBe(SECCOMP_RET.ALLOW)
    expect(x64("socket", 40n)).toBe(EPERM)
    expect(x64("personality", 0n)).toBe(SECCOMP_RET.ALLOW)
    expect(x64("personality", 0x0040000n /* ADDR_NO_RANDOMIZE */)).toBe(EPERM)
  })

  it("answers syscalls newer than its list with ENOSYS, so newer libcs fall back; older unlisted ones stay EPERM", () => {
    // Its newest x86_64 name without CAP_SYS_NICE is futex_waitv (449): 450 on is ENOSYS.
    const nr = (n: number) => runBpf(filter, { nr: n, arch: AUDIT_ARCH.X86_64, args: [] })
    expect(x64("futex_waitv")).toBe(SECCOMP_RET.ALLOW)
    expect(x64("faccessat2")).toBe(SECCOMP_RET.ALLOW)
    expect(x64("set_mempolicy_home_node")).toBe(ENOSYS_RET)
    for (const n of [451 /* cachestat */, 452 /* fchmodat2 */, 462 /* mseal */, 1000]) expect(nr(n)).toBe(ENOSYS_RET)
    expect(x64("kexec_load")).toBe(EPERM)
    expect(x64("pidfd_getfd")).toBe(EPERM) // 438: below the cut-off, needs CAP_SYS_PTRACE
    expect(runBpf(filter, { nr: 1000, arch: AUDIT_ARCH.I386, args: [] })).toBe(ENOSYS_RET)
    expect(runBpf(filter, { nr: X32_SYSCALL_BIT + 1000, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(ENOSYS_RET)
  })

  it("governs the i386 and x32 ABIs with the same list", () => {
    expect(runBpf(filter, { nr: SYSCALLS_I386.mount!, arch: AUDIT_ARCH.I386, args: [] })).toBe(EPERM)
    expect(runBpf(filter, { nr: SYSCALLS_I386.socketcall!, arch: AUDIT_ARCH.I386, args: [] })).toBe(SECCOMP_RET.ALLOW)
    expect(runBpf(filter, { nr: SYSCALLS_X32.read!, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(SECCOMP_RET.ALLOW)
    expect(runBpf(filter, { nr: SYSCALLS_X32.mount!, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(EPERM)
    expect(SYSCALLS_X32.read).toBeGreaterThanOrEqual(X32_SYSCALL_BIT)
  })

  it("lets CAP_SYS_ADMIN containers mount and clone freely, as Moby renders it", () => {
    const admin = Result.getOrThrow(compileSeccomp(defaultSeccompProfile(["CAP_SYS_ADMIN"]))).filter
    expect(runBpf(admin, { nr: SYSCALLS_X86_64.mount!, arch: AUDIT_ARCH.X86_64, args: [] })).toBe(SECCOMP_RET.ALLOW)
    expect(runBpf(admin, { nr: SYSCALLS_X86_64.clone!, arch: AUDIT_ARCH.X86_64, args: [0x10000000n] })).toBe(SECCOMP_RET.ALLOW)
  })

  test.prop([fc.constantFrom(AUDIT_ARCH.X86_64, AUDIT_ARCH.I386), fc.nat(600), fc.boolean(), fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 6, maxLength: 6 })], { numRuns: 2000 })(
    "its compiled filter agrees with the profile's reference semantics",
    (arch, n, x32, args) => {
      const d = { nr: x32 && arch === AUDIT_ARCH.X86_64 ? X32_SYSCALL_BIT + n : n, arch, args }
      expect(runBpf(filter, d)).toBe(reference(DEFAULT_SECCOMP, d))
    },
  )
})
