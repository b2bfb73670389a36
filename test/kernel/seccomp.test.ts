/**
 * Seccomp filters on the real kernel: errno, kill, argument conditions, the
 * default profile, both install points (with and without no_new_privs), and
 * ENOSYS for syscalls newer than the profile (a raw-syscall fixture).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { DEFAULT_SECCOMP } from "../../config/seccomp-default.ts"
import type { SeccompProfile } from "../../config/seccomp-spec.ts"
import type { Spec } from "../../config/spec.ts"
import { dispose } from "../../promise.ts"
import { expectNoTrace, runToEnd as runToEndIn, skipReason, stateRoot } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(async () => {
  await dispose()
})

const withSeccomp =
  (seccomp: SeccompProfile | undefined, extra: (s: Spec) => Spec = (s) => s) =>
  (s: Spec): Spec =>
    extra({ ...s, linux: { ...s.linux, seccomp } })

const runToEnd = (args: string[], mutate: (s: Spec) => Spec) => runToEndIn(root, args, mutate, "sc")

const ALLOW_BUT = (rules: SeccompProfile["syscalls"]): SeccompProfile => ({ defaultAction: "SCMP_ACT_ALLOW", syscalls: rules })
const noNnp = (s: Spec): Spec => ({ ...s, process: { ...s.process!, noNewPrivileges: false } })
const withCaps = (more: string[]) => (s: Spec): Spec => {
  const caps = [...(s.process!.capabilities?.bounding ?? []), ...more]
  return { ...s, process: { ...s.process!, capabilities: { bounding: caps, effective: caps, permitted: caps } } }
}

describe.skipIf(skipReason)("seccomp on the real kernel", () => {
  it("a blocked mkdir returns the configured errno", async () => {
    const p = ALLOW_BUT([{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 28 }])
    const r = await runToEnd(["mkdir", "/dev/shm/x"], withSeccomp(p))
    expect(r.err).toMatch(/No space left on device/)
    expect(r.status).toEqual({ code: 1, signal: null })
    expect(expectNoTrace(root, r.id)).toEqual([])
  })

  it("defaultErrnoRet and the default EPERM of a rule", async () => {
    const p: SeccompProfile = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO" }] }
    const r = await runToEnd(["mkdir", "/dev/shm/x"], withSeccomp(p))
    expect(r.err).toMatch(/Operation not permitted/)
  })

  it("KILL_PROCESS kills the program with SIGSYS", async () => {
    const p = ALLOW_BUT([{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_KILL_PROCESS" }])
    const r = await runToEnd(["mkdir", "/dev/shm/x"], withSeccomp(p))
    expect(r.status).toEqual({ code: null, signal: 31 })
    // A child of the shell: the shell sees it killed by SIGSYS (128 + 31).
    const sh = await runToEnd(["sh", "-c", "mkdir /dev/shm/x; echo status=$?"], withSeccomp(p))
    expect(sh.out).toBe("status=159\n")
  })

  it("argument conditions: kill(pid, SIGUSR1) refused, kill(pid, 0) allowed", async () => {
    const p = ALLOW_BUT([{ names: ["kill"], action: "SCMP_ACT_ERRNO", args: [{ index: 1, value: 10, op: "SCMP_CMP_EQ" }] }])
    const r = await runToEnd(["sh", "-c", "kill -0 $$ && echo zero-ok; kill -USR1 $$ || echo usr1-refused"], withSeccomp(p))
    expect(r.out).toBe("zero-ok\nusr1-refused\n")
    expect(r.err).toMatch(/Operation not permitted/)
  })

  it("LOG lets the call through", async () => {
    const p = ALLOW_BUT([{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_LOG" }])
    const r = await runToEnd(["sh", "-c", "mkdir /dev/shm/x && echo made"], withSeccomp(p))
    expect(r.out).toBe("made\n")
  })

  it("without no_new_privs the filter is installed while the init is still privileged", async () => {
    const p = ALLOW_BUT([{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 28 }])
    const r = await runToEnd(["sh", "-c", "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mkdir /dev/shm/x"], withSeccomp(p, noNnp))
    expect(r.out).toMatch(/NoNewPrivs:\s+0\nSeccomp:\s+2\n/)
    expect(r.err).toMatch(/No space left on device/)
  })

  it.each([
    ["with no_new_privs", (s: Spec) => s],
    ["without no_new_privs", noNnp],
  ])("the default profile runs a shell, ls, cat, sleep and ps (%s)", async (_, extra) => {
    const r = await runToEnd(["sh", "-c", "ls / >/dev/null && cat /proc/self/status >/dev/null && sleep 0.1 && ps >/dev/null && echo fine"], withSeccomp(DEFAULT_SECCOMP, extra))
    expect(r.err).toBe("")
    expect(r.out).toBe("fine\n")
  })

  it("the default profile blocks mount, unshare and reboot even with CAP_SYS_ADMIN and CAP_SYS_BOOT", async () => {
    const script = "mount -t tmpfs t /tmp || echo mount-refused; unshare -m true || echo unshare-refused; reboot -f || echo reboot-refused"
    const r = await runToEnd(["sh", "-c", script], withSeccomp(DEFAULT_SECCOMP, withCaps(["CAP_SYS_ADMIN", "CAP_SYS_BOOT"])))
    expect(r.out).toBe("mount-refused\nunshare-refused\nreboot-refused\n")
    expect(r.err).toMatch(/Operation not permitted/)
    // The control: the same capabilities without the filter can mount.
    const control = await runToEnd(["sh", "-c", "mount -t tmpfs t /tmp && echo mounted"], withCaps(["CAP_SYS_ADMIN"]))
    expect(control.err).toBe("")
    expect(control.out).toBe("mounted\n")
  })
})

/** The fixture built once: a static program that makes syscalls by number (busybox cannot). */
function buildRawsys(): { bin?: string; reason?: string } {
  const bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "xc-sc-")), "rawsys")
  const cc = spawnSync("gcc", ["-static", "-nostdlib", "-O1", "-o", bin, path.join(import.meta.dirname, "fixtures", "rawsys.c")], { encoding: "utf8" })
  if (cc.status !== 0) return { reason: `gcc could not build the raw-syscall fixture: ${cc.error?.message ?? cc.stderr}` }
  return { bin }
}
const rawsys = skipReason ? { reason: skipReason } : buildRawsys()
afterAll(() => {
  if (rawsys.bin) fs.rmSync(path.dirname(rawsys.bin), { recursive: true, force: true })
})
if (rawsys.reason) console.warn(`SKIPPING the raw-syscall seccomp tests: ${rawsys.reason}`)

describe.skipIf(rawsys.reason)("syscalls newer than the profile (runc's -ENOSYS stub), on the real kernel", () => {
  const withFixture = (p: SeccompProfile | undefined) =>
    withSeccomp(p, (s) => ({ ...s, mounts: [...(s.mounts ?? []), { destination: "/dev/rawsys", type: "bind", source: rawsys.bin!, options: ["bind", "ro"] }] }))
  // fchmodat2 (452, Linux 6.6) and 1000 (no syscall) are newer than every name in the default profile (futex_waitv, 449);
  // kexec_load (246) is older and not allowed; clone3 (435) is named, with errnoRet ENOSYS.
  const CALLS = ["452", "1000", "246", "435"]

  it("the default profile answers them with ENOSYS, not EPERM; older unlisted syscalls still get EPERM", async () => {
    const r = await runToEnd(["/dev/rawsys", ...CALLS], withFixture(DEFAULT_SECCOMP))
    expect(r.err).toBe("")
    expect(r.out).toBe("452=-38\n1000=-38\n246=-1\n435=-38\n")
    expect(r.status).toEqual({ code: 0, signal: null })
    // The control: without a filter this kernel knows fchmodat2 (EFAULT for its NULL path, not ENOSYS).
    const bare = await runToEnd(["/dev/rawsys", "452", "1000"], withFixture(undefined))
    expect(bare.out).toBe("452=-14\n1000=-38\n")
  })

  it("a profile naming only old syscalls: everything past its newest name is ENOSYS, below it the default errno", async () => {
    // rawsys needs execve, write and exit_group; the init what it does before execve. The newest: dup3 (292).
    const p: SeccompProfile = {
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 13,
      syscalls: [{ names: ["execve", "write", "exit_group", "openat", "close", "fcntl", "dup2", "dup3", "setsid", "ioctl", "rt_sigprocmask", "rt_sigaction"], action: "SCMP_ACT_ALLOW" }],
    }
    const r = await runToEnd(["/dev/rawsys", "291", "293", "435", "439"], withFixture(p))
    expect(r.err).toBe("")
    expect(r.out).toBe("291=-13\n293=-38\n435=-38\n439=-38\n")
  })
})

