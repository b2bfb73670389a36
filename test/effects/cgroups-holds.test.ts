/** Membership from /proc/PID/cgroup (what kill --all asks once a pidfd pins a pid), pure. */
import { describe, expect, it } from "vitest"
import { procCgroupHolds } from "../../effects/cgroups-fs.ts"
import type { Hierarchy } from "../../effects/cgroups.ts"

const H: Hierarchy[] = [
  { mountPoint: "/sys/fs/cgroup/cpu,cpuacct", controllers: "cpu,cpuacct", version: 1 },
  { mountPoint: "/sys/fs/cgroup/memory", controllers: "memory", version: 1 },
  { mountPoint: "/sys/fs/cgroup/unified", controllers: "", version: 2 },
]
const paths = { "/sys/fs/cgroup/cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/user.slice/c1", "/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/user.slice/c1", "/sys/fs/cgroup/unified": "/sys/fs/cgroup/unified/user.slice/c1" }
const proc = (at: string) => `12:memory:${at}\n4:cpuacct,cpu:${at}\n0::${at}\n`

describe("procCgroupHolds", () => {
  it("holds a process in the container's cgroup or below it, in any hierarchy order of controllers", () => {
    expect(procCgroupHolds(proc("/user.slice/c1"), H, paths)).toBe(true)
    expect(procCgroupHolds(proc("/user.slice/c1/sub"), H, paths)).toBe(true)
  })
  it("not one elsewhere: a sibling with a common prefix, the parent, a process without the hierarchies", () => {
    expect(procCgroupHolds(proc("/user.slice/c10"), H, paths)).toBe(false)
    expect(procCgroupHolds(proc("/user.slice"), H, paths)).toBe(false)
    expect(procCgroupHolds("", H, paths)).toBe(false)
  })
  it("never proves membership for a container at a hierarchy's root", () => {
    expect(procCgroupHolds(proc("/"), H, { "/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory" })).toBe(false)
  })
})
