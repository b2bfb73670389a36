/** The "cgroup" mount on a pure v2 host: the container's one cgroup directory bound at the destination, read-only as asked. */
import { describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import { buildPlan, type PlanOp } from "../../config/plan.ts"

const opsFor = (cgroupBinds: Array<{ name: string; hostPath: string }>) =>
  buildPlan({ spec: defaultSpec(["sh"]), rootfs: "/nonexistent", bundleDir: "/nonexistent", fifoPath: "/run/x/exec.fifo", cgroupBinds }).ops.filter(
    (o): o is Extract<PlanOp, { op: "mount" }> => o.op === "mount" && /(^|\/)sys\/fs\/cgroup(\/|$)/.test(o.target),
  )

describe("the cgroup mount", () => {
  it("on pure v2 is one bind of the container's cgroup at /sys/fs/cgroup, no tmpfs", () => {
    const ops = opsFor([{ name: "", hostPath: "/sys/fs/cgroup/user.slice/box" }])
    expect(ops).toHaveLength(1)
    expect(ops[0]).toMatchObject({ source: "/sys/fs/cgroup/user.slice/box", fstype: "" })
    expect(ops[0]!.target).toMatch(/(^|\/)sys\/fs\/cgroup$/)
  })
  it("on v1/hybrid stays a tmpfs with a bind per hierarchy", () => {
    const ops = opsFor([
      { name: "memory", hostPath: "/sys/fs/cgroup/memory/box" },
      { name: "unified", hostPath: "/sys/fs/cgroup/unified/box" },
    ])
    expect(ops.map((o) => o.fstype)).toEqual(["tmpfs", "", ""])
  })
})
