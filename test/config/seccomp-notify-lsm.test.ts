/** The plan side of SCMP_ACT_NOTIFY (where the listener filter goes, its flags) and of the LSM labels. */
import { describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import { lsmHost, lsmOps, lsmProblem, mountLabelData } from "../../config/lsm.ts"
import { buildPlan, type PlanOp } from "../../config/plan.ts"
import { toWire } from "../../config/plan-wire.ts"
import { verdicts } from "../../config/seccomp-checks.ts"
import { SECCOMP_RET, type SeccompProfile } from "../../config/seccomp-spec.ts"
import type { Spec } from "../../config/spec.ts"
import { Op } from "../../native/protocol.ts"

const base = defaultSpec(["sh"])
const plan = (spec: Spec) => buildPlan({ spec, rootfs: "/nonexistent", bundleDir: "/nonexistent", fifoPath: "/run/x/exec.fifo", cgroupBinds: [] }).ops
const names = (ops: readonly PlanOp[]) => ops.map((o) => o.op)
const notify: SeccompProfile = { defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/run/a.sock", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_NOTIFY" }] }
const withSeccomp = (seccomp: SeccompProfile, nnp = true): Spec => ({ ...base, process: { ...base.process!, noNewPrivileges: nnp }, linux: { ...base.linux, seccomp } })

describe("a filter with a listener", () => {
  it.each([true, false])("goes in right before the start barrier (no_new_privs %s), and asks for the listener", (nnp) => {
    const ops = plan(withSeccomp(notify, nnp))
    const n = names(ops)
    expect(n.indexOf("seccomp")).toBe(n.indexOf("waitStart") - 1)
    const op = ops.find((o) => o.op === "seccomp")!
    expect(toWire({ ops: [op] })[0]).toMatchObject({ op: Op.SECCOMP, n: [0n, 1n] })
  })

  it("a filter without NOTIFY stays at the end and asks for no listener", () => {
    const ops = plan(withSeccomp({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] }))
    const n = names(ops)
    expect(n.indexOf("seccomp")).toBe(n.indexOf("exec") - 1)
    expect(toWire({ ops: [ops.find((o) => o.op === "seccomp")!] })[0]?.n).toEqual([0n])
  })

  it("TSYNC with a listener adds TSYNC_ESRCH (the kernel refuses the pair otherwise)", () => {
    const op = plan(withSeccomp({ ...notify, flags: ["SECCOMP_FILTER_FLAG_TSYNC"] })).find((o) => o.op === "seccomp")
    expect(op).toMatchObject({ flags: 1 | 16, listener: true })
  })

  it("verdicts: every verdict a syscall can get, whatever its arguments", () => {
    const p: SeccompProfile = {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [
        { names: ["execve"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ" }] },
        { names: ["sendmsg"], action: "SCMP_ACT_NOTIFY" },
      ],
    }
    expect(verdicts(p, "execve")).toEqual([SECCOMP_RET.ALLOW, SECCOMP_RET.ERRNO | 1])
    expect(verdicts(p, "sendmsg")).toEqual([SECCOMP_RET.USER_NOTIF])
    // Newer than every name of the profile (sendmsg, 46): ENOSYS, whatever the default says.
    expect(verdicts({ ...p, syscalls: [{ names: ["sendmsg"], action: "SCMP_ACT_ALLOW" }] }, "execve")).toEqual([SECCOMP_RET.ERRNO | 38])
  })
})

describe("LSM labels", () => {
  const none = { apparmor: false, selinux: false, apparmorDir: false }
  const both = { apparmor: true, selinux: true, apparmorDir: true }
  const proc = base.process!

  it("AppArmor: exec <profile> to the per-LSM attr file where the kernel has it, else attr/exec", () => {
    expect(lsmOps({ ...proc, apparmorProfile: "p" }, both)).toEqual([{ op: "lsmExec", attrPath: "/proc/thread-self/attr/apparmor/exec", text: "exec p", testStandIn: false }])
    expect(lsmOps({ ...proc, apparmorProfile: "p" }, { ...both, apparmorDir: false })[0]).toMatchObject({ attrPath: "/proc/thread-self/attr/exec" })
    expect(lsmOps(proc, both)).toEqual([])
  })

  it("SELinux: the label as is; the test stand-in redirects and is flagged on the wire", () => {
    const host = lsmHost({ XCONTAINER_TEST_LSM_ATTR: "/dev/x" })
    const [op] = lsmOps({ ...proc, selinuxLabel: "u:r:t:s0" }, host)
    expect(op).toEqual({ op: "lsmExec", attrPath: "/dev/x", text: "u:r:t:s0", testStandIn: true })
    expect(toWire({ ops: [op!] })[0]).toMatchObject({ op: Op.LSM_EXEC, n: [1n], s: ["/dev/x", "u:r:t:s0"] })
  })

  it("the label goes in before the seccomp filter and the user change", () => {
    process.env.XCONTAINER_TEST_LSM_ATTR = "/dev/x"
    try {
      const n = names(plan({ ...withSeccomp({ defaultAction: "SCMP_ACT_ALLOW" }, false), process: { ...proc, noNewPrivileges: false, apparmorProfile: "p" } }))
      expect(n.indexOf("lsmExec")).toBeLessThan(n.indexOf("seccomp"))
      expect(n.indexOf("lsmExec")).toBeLessThan(n.indexOf("user"))
    } finally {
      delete process.env.XCONTAINER_TEST_LSM_ATTR
    }
  })

  it("a label the host lacks names its field", () => {
    expect(lsmProblem({ ...base, process: { ...proc, apparmorProfile: "p" } }, none)?.path).toBe("process.apparmorProfile")
    expect(lsmProblem({ ...base, process: { ...proc, selinuxLabel: "l" } }, none)?.path).toBe("process.selinuxLabel")
    // as runc: a mount label is only applied where SELinux is (FormatMountLabel), never refused
    expect(lsmProblem({ ...base, linux: { ...base.linux, mountLabel: "l" } }, none)).toBeUndefined()
    expect(mountLabelData("mode=755", "tmpfs", "l", false)).toBe("mode=755")
    expect(lsmProblem({ ...base, process: { ...proc, selinuxLabel: "l" } }, both)).toBeUndefined()
  })

  it("mountLabel: context=\"…\" on the container's own filesystems, not on proc, sysfs, mqueue, cgroup", () => {
    expect(mountLabelData("mode=755", "tmpfs", "u:object_r:t:s0")).toBe('mode=755,context="u:object_r:t:s0"')
    expect(mountLabelData("", "devpts", "l")).toBe('context="l"')
    expect(mountLabelData("", "proc", "l")).toBe("")
    expect(mountLabelData("x", "tmpfs", undefined)).toBe("x")
  })
})
