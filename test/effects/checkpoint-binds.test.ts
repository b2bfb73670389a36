/** Which mounts CRIU is told are external: every bind of a host path the init plan makes, keyed by its mountpoint. */
import { describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import { buildPlan } from "../../config/plan.ts"
import { cgroupBinds } from "../../effects/cgroups.ts"
import { hostBinds } from "../../effects/checkpoint.ts"

const cgroups = { "/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/c1", "/sys/fs/cgroup/cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/c1" }

describe("hostBinds", () => {
  it("names the cgroup binds under /sys/fs/cgroup and the spec's bind mounts, not /proc, /dev or masks", () => {
    const spec = { ...defaultSpec(["sh"]), mounts: [...(defaultSpec().mounts ?? []), { destination: "/data", type: "bind", source: "/srv/data", options: ["rbind", "ro"] }] }
    const binds = hostBinds(spec, "/nonexistent/rootfs", "/nonexistent", cgroups, "v1")
    expect(Object.fromEntries(binds)).toEqual({
      "/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/c1",
      "/sys/fs/cgroup/cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/c1",
      "/data": "/srv/data",
    })
  })

  it("follows the restoring container's cgroups: same keys, new sources under a new id", () => {
    const spec = defaultSpec(["sh"])
    const a = hostBinds(spec, "/r", "/b", cgroups, "v1")
    const b = hostBinds(spec, "/r", "/b", { "/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/c2", "/sys/fs/cgroup/cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/c2" }, "v1")
    expect([...a.keys()]).toEqual([...b.keys()])
    expect(b.get("/sys/fs/cgroup/memory")).toBe("/sys/fs/cgroup/memory/c2")
  })

  it("in a user namespace the device nodes are binds of the host's, so external too", () => {
    const spec = defaultSpec(["sh"])
    const userNs = {
      ...spec,
      linux: { ...spec.linux, namespaces: [...(spec.linux?.namespaces ?? []), { type: "user" as const }], uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] },
    }
    const binds = hostBinds(userNs, "/r", "/b", cgroups, "v1")
    expect(binds.get("/dev/null")).toBe("/dev/null")
    expect(binds.get("/dev/urandom")).toBe("/dev/urandom")
  })

  it("on pure cgroup v2 names the bind create's plan makes: the container's one directory at /sys/fs/cgroup", () => {
    const spec = defaultSpec(["sh"])
    const v2 = { "/sys/fs/cgroup": "/sys/fs/cgroup/system.slice/c1" }
    const binds = hostBinds(spec, "/r", "/b", v2, "v2")
    expect(binds.get("/sys/fs/cgroup")).toBe("/sys/fs/cgroup/system.slice/c1")
    expect([...binds.keys()].filter((k) => k.startsWith("/sys/fs/cgroup/"))).toEqual([])
    // The very mount create's plan makes (create and checkpoint share cgroupBinds).
    const created = buildPlan({ spec, rootfs: "/r", bundleDir: "/b", fifoPath: "/nonexistent/exec.fifo", cgroupBinds: cgroupBinds(v2, "v2") }).ops
    expect(created.filter((op) => op.op === "mount" && op.source === v2["/sys/fs/cgroup"]).map((op) => op.op === "mount" && op.target)).toEqual(["sys/fs/cgroup"])
  })
})
