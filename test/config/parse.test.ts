import { Effect, Result } from "effect"
import { describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import { parseSpec, validateId } from "../../config/parse.ts"

const problem = (input: unknown) => {
  const r = Effect.runSync(Effect.result(parseSpec(input)))
  return Result.isFailure(r) ? { path: r.failure.path, reason: r.failure.reason } : undefined
}

const spec = defaultSpec(["sh"])

describe("config validation", () => {
  it("accepts the runc spec defaults", () => {
    expect(problem(spec)).toBeUndefined()
  })

  it.each([
    [{ ...spec, ociVersion: "2.0.0" }, "ociVersion", /unsupported/],
    [{ ...spec, process: { ...spec.process, cwd: "relative" } }, "process.cwd", /absolute/],
    [{ ...spec, process: { ...spec.process, args: [] } }, "process.args", /at least/],
    [{ ...spec, process: { ...spec.process, user: { uid: -1, gid: 0 } } }, "process.user.uid", /.+/],
    [{ ...spec, process: { ...spec.process, capabilities: { bounding: ["CAP_NOPE"] } } }, "process.capabilities.bounding[0]", /unknown capability/],
    [{ ...spec, process: { ...spec.process, rlimits: [{ type: "RLIMIT_BOGUS", soft: 1, hard: 1 }] } }, "process.rlimits[0].type", /unknown rlimit/],
    [{ ...spec, process: { ...spec.process, rlimits: [{ type: "RLIMIT_NOFILE", soft: 2, hard: 1 }] } }, "process.rlimits[0]", /soft/],
    [{ ...spec, mounts: [{ destination: "tmp", type: "tmpfs" }] }, "mounts[0].destination", /absolute/],
    [{ ...spec, mounts: "nope" }, "mounts", /.+/],
    [{ ...spec, linux: { namespaces: [{ type: "pid" }, { type: "pid" }] } }, "linux.namespaces[1].type", /duplicate/],
    [{ ...spec, linux: { namespaces: [{ type: "moon" }] } }, "linux.namespaces[0].type", /.+/],
    [{ ...spec, linux: { namespaces: [{ type: "user" }], uidMappings: [] } }, "linux.uidMappings", /needs/],
    [{ ...spec, linux: { namespaces: [], uidMappings: [{ containerID: 0, hostID: 1, size: 1 }] } }, "linux.uidMappings", /user namespace/],
    [{ ...spec, hostname: "h", linux: { namespaces: [{ type: "mount" }] } }, "hostname", /uts/],
    [{ ...spec, linux: { ...spec.linux, sysctl: { "kernel.panic": "1" } } }, "linux.sysctl.kernel.panic", /host/],
    [{ ...spec, hostname: undefined, linux: { namespaces: [{ type: "mount" }], sysctl: { "net.ipv4.ip_forward": "1" } } }, "linux.sysctl.net.ipv4.ip_forward", /network/],
    [{ ...spec, linux: { ...spec.linux, devices: [{ type: "c", path: "/dev/x" }] } }, "linux.devices[0]", /major/],
    [{ ...spec, linux: { ...spec.linux, seccomp: { defaultAction: "SCMP_ACT_ERRNO" } } }, "linux.seccomp.defaultAction", /blocks execve/],
    [{ ...spec, root: undefined }, "root", /required/],
  ])("rejects %# naming the field", (input, path, reason) => {
    const p = problem(input)
    expect(p?.path).toBe(path)
    expect(p?.reason).toMatch(reason)
  })

  it.each(["../x", "a/b", "", ".", "..", "x y"])("refuses the id %j", (id) => {
    expect(Result.isFailure(Effect.runSync(Effect.result(validateId(id))))).toBe(true)
  })

  it.each(["a", "my-container_1.2", "x+y"])("accepts the id %j", (id) => {
    expect(Effect.runSync(validateId(id))).toBe(id)
  })
})
