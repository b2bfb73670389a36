/** The ordering rules of the init plan, as properties over random configs. */
import { fc, test } from "@fast-check/vitest"
import { describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import { buildPlan, idMappedProblem, mountOptionProblem, parseMountOptions, type PlanOp } from "../../config/plan.ts"
import { toWire } from "../../config/plan-wire.ts"
import type { Spec } from "../../config/spec.ts"
import { decodePlan, encodePlan } from "../../native/protocol.ts"
import { ociConfig } from "../../testing/arbitraries.ts"

const arbSpec: fc.Arbitrary<Spec> = ociConfig()

const plan = (spec: Spec) =>
  buildPlan({ spec, rootfs: "/nonexistent", bundleDir: "/nonexistent", fifoPath: "/run/x/exec.fifo", cgroupBinds: [{ name: "memory", hostPath: "/sys/fs/cgroup/memory/x" }] }).ops
const idx = (ops: readonly PlanOp[], name: PlanOp["op"]) => ops.findIndex((o) => o.op === name)
const all = (ops: readonly PlanOp[], name: PlanOp["op"]) => ops.flatMap((o, i) => (o.op === name ? [i] : []))
const chdirs = (ops: readonly PlanOp[], mode: Extract<PlanOp, { op: "chdir" }>["mode"]) => ops.flatMap((o, i) => (o.op === "chdir" && o.mode === mode ? [i] : []))
/** The plan without its startContainer hooks (they sit right before exec). */
const noStartHooks = (ops: readonly PlanOp[]) => ops.filter((o) => !(o.op === "hook" && o.state === "start"))

describe("the init plan", () => {
  test.prop([arbSpec])("only joins, time offsets, rlimits and oom_score_adj run before the clone; joins first", (spec) => {
    const ops = plan(spec)
    const clone = idx(ops, "clone")
    const before = new Set(["joinNamespace", "timeOffsets", "rlimit", "oomScoreAdj"])
    expect(ops.slice(0, clone).every((o) => before.has(o.op))).toBe(true)
    expect(ops.slice(clone + 1).some((o) => before.has(o.op))).toBe(false)
    // Joining a user namespace first means the limits are set in the namespace they belong to.
    const joins = all(ops, "joinNamespace")
    for (const i of [...all(ops, "rlimit"), ...all(ops, "oomScoreAdj"), ...all(ops, "timeOffsets")]) for (const j of joins) expect(j).toBeLessThan(i)
  })

  test.prop([arbSpec])("the user namespace is joined first and the mount namespace last", (spec) => {
    const joins = plan(spec).filter((o): o is Extract<PlanOp, { op: "joinNamespace" }> => o.op === "joinNamespace").map((o) => o.type)
    if (joins.includes("user")) expect(joins[0]).toBe("user")
    if (joins.includes("mount")) expect(joins.at(-1)).toBe("mount")
  })

  test.prop([arbSpec])("every mount, device and link is made between the rootfs bind and pivot_root; masks after", (spec) => {
    const ops = plan(spec)
    const pivot = idx(ops, "pivotRoot")
    const rootfs = idx(ops, "rootfs")
    if (pivot < 0) return
    for (const i of [...all(ops, "mount"), ...all(ops, "mknod"), ...all(ops, "symlink")]) {
      expect(i).toBeGreaterThan(rootfs)
      expect(i).toBeLessThan(pivot)
    }
    for (const i of [...all(ops, "mask"), ...all(ops, "readonly"), ...all(ops, "remountRootReadonly")]) expect(i).toBeGreaterThan(pivot)
    // Masks go on after readonly binds, so that a readonly bind cannot unmask.
    const lastRo = Math.max(-1, ...all(ops, "readonly").filter((i) => (spec.linux?.readonlyPaths ?? []).includes((ops[i] as { path: string }).path)))
    for (const i of all(ops, "mask")) expect(i).toBeGreaterThan(lastRo)
  })

  test.prop([arbSpec])("mounts keep the config's order", (spec) => {
    if (!(spec.linux?.namespaces ?? []).some((n) => n.type === "mount" && !n.path)) return
    const targets = plan(spec)
      .filter((o): o is Extract<PlanOp, { op: "mount" }> => o.op === "mount")
      .map((o) => `/${o.target}`)
    const wanted = (spec.mounts ?? []).map((m) => m.destination).filter((d) => d !== "/sys/fs/cgroup")
    const firstSeen = wanted.map((d) => targets.indexOf(d))
    expect(firstSeen.every((v) => v >= 0)).toBe(true)
    expect([...firstSeen].sort((a, b) => a - b)).toEqual(firstSeen)
  })

  test.prop([arbSpec])("the start barrier comes after the program is found and before the identity changes", (spec) => {
    const ops = plan(spec)
    const wait = idx(ops, "waitStart")
    // With a mount namespace the program is found at create; without one, inside root.path after the
    // chroot that follows the barrier.
    const newMount = (spec.linux?.namespaces ?? []).some((n) => n.type === "mount" && !n.path)
    if (newMount) expect(idx(ops, "resolveExec")).toBeLessThan(wait)
    else expect(idx(ops, "resolveExec")).toBeGreaterThan(idx(ops, "pivotRoot"))
    for (const name of ["closeFds", "capsBounding", "user", "caps", "noNewPrivs", "seccomp", "exec"] as const)
      for (const i of all(ops, name)) expect(i).toBeGreaterThan(wait)
    for (const i of chdirs(ops, "final")) expect(i).toBeGreaterThan(idx(ops, "user"))
    // The cwd is made after the pivot and entered (privileged) after the masks, before the barrier,
    // so that a bad cwd fails create (runc); without a mount namespace, after the chroot.
    const privileged = chdirs(ops, "privileged")
    expect(privileged.length).toBe(1)
    expect(privileged[0]).toBeLessThan(idx(ops, "user"))
    if (newMount) {
      expect(chdirs(ops, "create")).toEqual([idx(ops, "pivotRoot") + 1])
      expect(privileged[0]).toBeLessThan(wait)
      for (const i of [...all(ops, "mask"), ...all(ops, "readonly"), ...all(ops, "remountRootReadonly")]) expect(i).toBeLessThan(privileged[0]!)
    } else expect(privileged[0]).toBeGreaterThan(idx(ops, "pivotRoot"))
  })

  test.prop([arbSpec])("startContainer hooks run right before exec: after the user, capabilities, no_new_privs and seccomp", (spec) => {
    const ops = plan(spec)
    const hooks = ops.flatMap((o, i) => (o.op === "hook" && o.state === "start" ? [i] : []))
    expect(hooks.length).toBe(spec.hooks?.startContainer?.length ?? 0)
    hooks.forEach((h, k) => expect(h).toBe(ops.length - 1 - hooks.length + k))
    for (const name of ["user", "caps", "noNewPrivs", "seccomp", "waitStart"] as const) for (const i of all(ops, name)) for (const h of hooks) expect(i).toBeLessThan(h)
  })

  test.prop([arbSpec])("bounding set before setuid, capabilities after it; no_new_privs and exec last", (spec) => {
    const ops = noStartHooks(plan(spec))
    const user = idx(ops, "user")
    if (idx(ops, "capsBounding") >= 0) expect(idx(ops, "capsBounding")).toBeLessThan(user)
    if (idx(ops, "caps") >= 0) expect(idx(ops, "caps")).toBeGreaterThan(user)
    expect(ops.at(-1)?.op).toBe("exec")
    const seccomp = spec.linux?.seccomp && spec.process?.noNewPrivileges ? 1 : 0
    if (spec.process?.noNewPrivileges) expect(ops.at(-2 - seccomp)?.op).toBe("noNewPrivs")
    else expect(idx(ops, "noNewPrivs")).toBe(-1)
  })

  test.prop([arbSpec])("seccomp: last before exec, after no_new_privs; without it, before the privileges are dropped (as runc)", (spec) => {
    const ops = noStartHooks(plan(spec))
    const at = all(ops, "seccomp")
    if (!spec.linux?.seccomp) return void expect(at).toEqual([])
    expect(at.length).toBe(1)
    const [i] = at as [number]
    if (spec.process?.noNewPrivileges) {
      expect(ops[i + 1]?.op).toBe("exec")
      expect(ops[i - 1]?.op).toBe("noNewPrivs")
    } else {
      // A filter without no_new_privs needs CAP_SYS_ADMIN: installed while the init still has it.
      expect(i).toBeGreaterThan(idx(ops, "closeFds"))
      for (const name of ["capsBounding", "user", "caps", "exec"] as const) for (const j of all(ops, name)) expect(j).toBeGreaterThan(i)
      for (const j of chdirs(ops, "final")) expect(j).toBeGreaterThan(i)
    }
  })

  test.prop([arbSpec])("a new user namespace becomes root before anything else", (spec) => {
    const ops = plan(spec)
    const newUser = (spec.linux?.namespaces ?? []).some((n) => n.type === "user" && !n.path)
    if (newUser) expect(ops[idx(ops, "clone") + 1]?.op).toBe("setIdRoot")
    else expect(idx(ops, "setIdRoot")).toBe(-1)
  })

  test.prop([arbSpec])("the plan encodes for the helper", (spec) => {
    const ops = plan(spec)
    expect(decodePlan(encodePlan(toWire({ ops }))).length).toBe(ops.length)
  })

  it("splits mount options as runc does", () => {
    expect(parseMountOptions(["nosuid", "ro", "rw", "rslave", "mode=755", "size=1k", "defaults"])).toEqual({
      flags: 2,
      propagation: (1 << 19) | 16384,
      recursiveSet: 0,
      recursiveClear: 0,
      copyUp: false,
      data: ["mode=755", "size=1k"],
    })
    // runc's extension, never fs data.
    expect(parseMountOptions(["tmpcopyup", "mode=755"])).toMatchObject({ copyUp: true, data: ["mode=755"] })
    // Recursive ones as mount_setattr attributes; an atime mode clears the whole atime field with it.
    expect(parseMountOptions(["rro", "rnosuid", "rnoatime", "rexec"])).toMatchObject({ recursiveSet: 0x1 | 0x2 | 0x10, recursiveClear: 0x70 | 0x8, data: [] })
    expect(parseMountOptions(["ratime"])).toMatchObject({ recursiveSet: 0, recursiveClear: 0x70 })
  })

  it("refuses mount options that look like flags it does not implement, never passing them on as fs data", () => {
    const m = (options: string[]) => [{ destination: "/a", type: "tmpfs", source: "tmpfs" }, { destination: "/mnt", type: "bind", source: "/x", options }]
    expect(mountOptionProblem(m(["rbind", "rro", "rnosuid", "rprivate", "ro", "nosuid", "nodev", "mode=755", "size=1k", "lazytime", "acl"]))).toBeUndefined()
    for (const bad of ["rmand", "rsync", "tmpcopyup"])
      expect(mountOptionProblem(m(["rbind", bad]))).toMatchObject({ path: "mounts[1].options[1]", reason: expect.stringContaining(bad) })
    // idmap/ridmap are implemented (issue 18): refused only where an id-mapped bind cannot be made.
    for (const opt of ["idmap", "ridmap"]) {
      expect(mountOptionProblem(m(["rbind", opt]))).toBeUndefined()
      expect(idMappedProblem({ ...defaultSpec(["sh"]), mounts: m(["rbind", opt]) })).toMatchObject({ path: "mounts[1].uidMappings" })
    }
  })

  it("proc and sysfs go on plain directories; --no-pivot hides the host's proc/sysfs", () => {
    const spec = defaultSpec(["sh"])
    const ops = buildPlan({ spec: { ...spec, root: { path: "/nonexistent" } }, rootfs: "/nonexistent", bundleDir: "/nonexistent", fifoPath: "/f", cgroupBinds: [], noPivot: true }).ops
    const mounts = ops.filter((o): o is Extract<PlanOp, { op: "mount" }> => o.op === "mount")
    expect(mounts.filter((o) => o.plainDir).map((o) => o.fstype)).toEqual(["proc", "sysfs"])
    expect(ops.find((o) => o.op === "pivotRoot")).toMatchObject({ noPivot: true, hideHostProcfs: true })
  })

  it("only raises ambient capabilities that are permitted and inheritable", () => {
    const spec = defaultSpec(["sh"])
    const ops = plan({
      ...spec,
      process: { ...spec.process!, capabilities: { permitted: ["CAP_KILL", "CAP_CHOWN"], inheritable: ["CAP_KILL"], ambient: ["CAP_KILL", "CAP_CHOWN"] } },
    })
    expect(ops.find((o) => o.op === "caps")).toMatchObject({ ambient: ["CAP_KILL"] })
  })

  const planOf = (spec: Spec) => buildPlan({ spec: { ...spec, root: { path: "/nonexistent" } }, rootfs: "/nonexistent", bundleDir: "/nonexistent", fifoPath: "/f", cgroupBinds: [] }).ops

  it("in a new user namespace, bind sources are taken by the helper before the clone, one tree per bind (runc's mount fds)", () => {
    const base = defaultSpec(["sh"])
    const binds = [
      { destination: "/a", type: "bind", source: "/srv/a", options: ["rbind"] },
      { destination: "/b", type: "bind", source: "/srv/b", options: ["bind", "ro"] },
    ]
    const userns: Spec = {
      ...base,
      mounts: [...(base.mounts ?? []), ...binds],
      linux: { ...base.linux, namespaces: [...(base.linux?.namespaces ?? []), { type: "user" }], uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] },
    }
    const ops = planOf(userns)
    const clone = ops.findIndex((o) => o.op === "clone")
    const sources = ops.flatMap((o, i) => (o.op === "mountSource" ? [{ o, i }] : []))
    expect(sources.map((s) => s.o)).toEqual([
      { op: "mountSource", path: "/srv/a", recursive: true },
      { op: "mountSource", path: "/srv/b", recursive: false },
    ])
    for (const s of sources) expect(s.i).toBeLessThan(clone)
    expect(ops.filter((o) => o.op === "mount" && o.sourceTree !== undefined).map((o) => o.op === "mount" && [o.target, o.sourceTree])).toEqual([
      ["a", 1],
      ["b", 2],
    ])
    // The wire carries the tree number in N7 of MOUNT.
    const wire = decodePlan(encodePlan(toWire({ ops })))
    expect(wire.filter((w) => w.op === 14 && w.n?.[7] !== undefined).map((w) => w.n?.[7])).toEqual([1n, 2n])
    // Without a user namespace the init reaches every source itself.
    expect(planOf({ ...base, mounts: [...(base.mounts ?? []), ...binds] }).some((o) => o.op === "mountSource" || (o.op === "mount" && o.sourceTree))).toBe(false)
  })

  it("a read-only /dev or tmpfs is mounted writable and remounted read-only after its devices, links, mounts and console", () => {
    const base = defaultSpec(["sh"])
    const spec: Spec = {
      ...base,
      process: { ...base.process!, terminal: true },
      mounts: (base.mounts ?? []).map((m) => (m.destination === "/dev" ? { ...m, options: [...(m.options ?? []), "ro"] } : m)),
    }
    const ops = planOf(spec)
    const dev = ops.find((o) => o.op === "mount" && o.target === "dev")
    expect(dev?.op === "mount" && (dev.flags & 1) === 0).toBe(true)
    const ro = ops.findIndex((o) => o.op === "remountReadonly" && o.path === "/dev")
    const last = (pred: (o: PlanOp) => boolean) => ops.reduce((at, o, i) => (pred(o) ? i : at), -1)
    expect(ro).toBeGreaterThan(last((o) => o.op === "mount" || o.op === "mknod" || o.op === "symlink" || o.op === "console"))
    expect(planOf(base).some((o) => o.op === "remountReadonly")).toBe(false)
  })

  it("tmpcopyup: only on tmpfs; a read-only one is filled first, then remounted read-only at the end", () => {
    const m = (type: string) => [{ destination: "/etc", type, source: "x", options: ["tmpcopyup"] }]
    expect(mountOptionProblem(m("tmpfs"))).toBeUndefined()
    expect(mountOptionProblem(m("bind"))).toMatchObject({ path: "mounts[0].options[0]", reason: expect.stringContaining("tmpfs mounts only") })
    const base = defaultSpec(["sh"])
    const ops = planOf({ ...base, mounts: [...(base.mounts ?? []), { destination: "/etc", type: "tmpfs", source: "tmpfs", options: ["tmpcopyup", "ro", "nosuid", "mode=755"] }] })
    expect(ops.find((o) => o.op === "mount" && o.target === "etc")).toMatchObject({ copyUp: true, flags: 2, remountFlags: 0, data: "mode=755" })
    expect(ops.filter((o) => o.op === "remountReadonly")).toEqual([{ op: "remountReadonly", path: "/etc" }])
  })

  it("stdio is chowned right before the user switch; createContainer hooks run in the rootfs", () => {
    const base = defaultSpec(["sh"])
    const ops = planOf({ ...base, process: { ...base.process!, user: { uid: 1000, gid: 1000 } }, hooks: { createContainer: [{ path: "/bin/true" }], startContainer: [{ path: "/bin/true" }] } })
    const user = ops.findIndex((o) => o.op === "user")
    expect(ops[user - 1]).toEqual({ op: "chownStdio", uid: 1000 })
    expect(ops.filter((o) => o.op === "hook").map((o) => o.op === "hook" && [o.state, o.cwdRootfs ?? false])).toEqual([
      ["create", true],
      ["start", false],
    ])
  })
})
