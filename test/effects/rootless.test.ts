/**
 * Issue 18's rootless rules as pure functions (effects/rootless.ts, state/store.ts defaultRoot, the
 * clone op of config/plan.ts): which cgroups a user keeps, which limits are refused and named, which
 * id maps /etc/subuid grants, where the state goes.
 */
import { describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import type { Spec } from "../../config/spec.ts"
import { checkRootlessMappings, isRootless, ownCapEff, rootlessCriuProblem, rootlessCgroups, selfMapOnly, subIdRanges } from "../../effects/rootless.ts"
import { DEFAULT_ROOT, defaultRoot } from "../../state/store.ts"

const PATHS = {
  "/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/c1",
  "/sys/fs/cgroup/cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/c1",
  "/sys/fs/cgroup/devices": "/sys/fs/cgroup/devices/c1",
  "/sys/fs/cgroup/unified": "/sys/fs/cgroup/unified/c1",
}
const V2 = ["/sys/fs/cgroup/unified"]
const spec = (linux: Spec["linux"]): Spec => ({ ...defaultSpec(["true"]), linux })

describe("rootless cgroups (runc's fs manager with Rootless on v1)", () => {
  it("keeps what the user can write, drops the rest", () => {
    const r = rootlessCgroups(PATHS, spec({}), V2, (d) => d.includes("unified"))
    expect(r.problem).toBeUndefined()
    expect(r.paths).toEqual({ "/sys/fs/cgroup/unified": "/sys/fs/cgroup/unified/c1" })
  })
  it("a limit in a dropped hierarchy names its field", () => {
    const r = rootlessCgroups(PATHS, spec({ resources: { memory: { limit: 1 << 20 } } }), V2, () => false)
    expect(r.problem?.path).toBe("linux.resources.memory")
    expect(r.problem?.reason).toContain("memory cgroup is not writable")
  })
  it("device rules are not limits (runc ignores the devices controller rootless)", () => {
    const r = rootlessCgroups(PATHS, spec({ resources: { devices: [{ allow: false, access: "rwm" }] } }), V2, () => false)
    expect(r.problem).toBeUndefined()
    expect(r.paths).toEqual({})
  })
  it("a limit honoured by a writable hierarchy passes", () => {
    const r = rootlessCgroups(PATHS, spec({ resources: { memory: { limit: 1 << 20 } } }), V2, (d) => d.includes("memory"))
    expect(r.problem).toBeUndefined()
  })
  it("an explicit cgroupsPath that cannot be made is an error (runc: only the default path is skipped)", () => {
    const r = rootlessCgroups(PATHS, spec({ cgroupsPath: "/mine" }), V2, () => false)
    expect(r.problem?.path).toBe("linux.cgroupsPath")
  })
  it("nothing dropped: the paths as given", () => {
    expect(rootlessCgroups(PATHS, spec({ resources: { pids: { limit: 5 } } }), V2, () => true)).toEqual({ paths: PATHS, problem: undefined })
  })
})

describe("rootless id maps", () => {
  const ranges = subIdRanges("root:100000:65536\nalice:200000:65536\n1001:300000:10\nbad line\n", { name: "alice", id: 1001 })
  it("reads the user's ranges by name and by uid", () => {
    expect(ranges).toEqual([
      { start: 200000, count: 65536 },
      { start: 300000, count: 10 },
    ])
  })
  it("own id and subordinate ranges pass", () => {
    const maps = [
      { containerID: 0, hostID: 1001, size: 1 },
      { containerID: 1, hostID: 200000, size: 65536 },
    ]
    expect(checkRootlessMappings("linux.uidMappings", maps, 1001, ranges, "/etc/subuid")).toBeUndefined()
  })
  it("a range outside /etc/subuid names the mapping", () => {
    const p = checkRootlessMappings("linux.uidMappings", [{ containerID: 0, hostID: 100000, size: 1 }], 1001, ranges, "/etc/subuid")
    expect(p?.path).toBe("linux.uidMappings[0]")
    expect(p?.reason).toContain("/etc/subuid")
  })
  it("a range running past the end of a subordinate range", () => {
    expect(checkRootlessMappings("linux.gidMappings", [{ containerID: 0, hostID: 265000, size: 1000 }], 1001, ranges, "/etc/subgid")?.path).toBe("linux.gidMappings[0]")
  })
  it("overlapping container or host ranges", () => {
    const c = [
      { containerID: 0, hostID: 200000, size: 10 },
      { containerID: 5, hostID: 200100, size: 10 },
    ]
    expect(checkRootlessMappings("linux.uidMappings", c, 1001, ranges, "/etc/subuid")?.reason).toContain("container ids 5..14 overlap")
    const h = [
      { containerID: 0, hostID: 200000, size: 10 },
      { containerID: 100, hostID: 200005, size: 10 },
    ]
    expect(checkRootlessMappings("linux.uidMappings", h, 1001, ranges, "/etc/subuid")?.reason).toContain("host ids 200005..200014 overlap")
  })
  it("selfMapOnly: one id, the caller's", () => {
    expect(selfMapOnly([{ containerID: 0, hostID: 1001, size: 1 }], 1001)).toBe(true)
    expect(selfMapOnly([{ containerID: 0, hostID: 1001, size: 2 }], 1001)).toBe(false)
  })
})

describe("state root and --rootless", () => {
  it("$XDG_RUNTIME_DIR/xcontainer when not root, as runc's $XDG_RUNTIME_DIR/runc", () => {
    expect(defaultRoot({ XDG_RUNTIME_DIR: "/run/user/1001" }, 1001)).toBe("/run/user/1001/xcontainer")
    expect(defaultRoot({}, 1001)).toBe(DEFAULT_ROOT)
    expect(defaultRoot({ XDG_RUNTIME_DIR: "/run/user/0" }, 0)).toBe(DEFAULT_ROOT)
  })
  it("auto follows the euid; true/false force it", () => {
    expect(isRootless(undefined, 1001)).toBe(true)
    expect(isRootless(undefined, 0)).toBe(false)
    expect(isRootless(true, 0)).toBe(true)
    expect(isRootless(false, 1001)).toBe(false)
  })
})

describe("rootless CRIU (issue 18 part 3)", () => {
  it("root: no objection; a user without the capabilities: refused naming them", () => {
    expect(rootlessCriuProblem(0, 0n)).toBeUndefined()
    const r = rootlessCriuProblem(1001, 0n)
    expect(r).toContain("CAP_CHECKPOINT_RESTORE and CAP_SYS_PTRACE")
    expect(r).toContain("uid 1001")
    expect(rootlessCriuProblem(1001, 1n << 19n)).not.toContain("CAP_SYS_PTRACE")
  })
  it("reads CapEff from a status text", () => {
    expect(ownCapEff("Name:\tx\nCapEff:\t000001ffffffffff\n")).toBe(0x1ffffffffffn)
    expect(ownCapEff("")).toBe(0n)
  })
})
