import { describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import { buildExecPlan } from "../../config/exec-plan.ts"

describe("the exec plan", () => {
  // containerd's CRI gives each exec the container's oomScoreAdj; written after joining the mount
  // namespace it went through the container's /proc, where the helper has no /proc/self (ENOENT).
  it("writes oom_score_adj before joining the container's namespaces (runc's nsexec order), rlimits after", () => {
    const spec = defaultSpec()
    const process = { ...spec.process!, oomScoreAdj: 100, rlimits: [{ type: "RLIMIT_NOFILE", soft: 10, hard: 10 }] }
    for (const initPidfdAt of [undefined, 5]) {
      const ops = buildExecPlan({ spec, initPid: 42, process, ...(initPidfdAt === undefined ? {} : { initPidfdAt }) }).ops.map((o) => o.op)
      const firstJoin = ops.findIndex((o) => o === "joinNamespace" || o === "joinPidfd")
      expect(firstJoin).toBeGreaterThan(-1)
      expect(ops.indexOf("oomScoreAdj")).toBeLessThan(firstJoin)
      expect(ops.indexOf("rlimit")).toBeGreaterThan(firstJoin)
      expect(ops.indexOf("rlimit")).toBeLessThan(ops.indexOf("clone"))
    }
  })
})
