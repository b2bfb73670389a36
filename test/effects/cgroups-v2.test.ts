/**
 * The cgroup v2 manager against a FAKE cgroupfs tree in a temp dir (this host
 * binds every controller to v1, so v2 limits cannot be set for real here):
 * placement, the subtree_control writes of create, each resource → the file and
 * value written (with runc's conversions), the device program handed to the
 * attacher, the freezer's wait on cgroup.events, cgroup.kill, destroy. And the
 * layout detection from mountinfo (and statfs on this host).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { DEV, ACC } from "../../config/device-rules.ts"
import type { ResourcesSpec } from "../../config/spec.ts"
import { Cgroups, type CgroupPaths } from "../../effects/cgroups.ts"
import { parseHierarchies } from "../../effects/cgroups-fs.ts"
import { detectLayout, layoutFromStatfs } from "../../effects/cgroups-layout.ts"
import { CgroupsV2, placeV2 } from "../../effects/cgroups-v2.ts"
import { blkioToIoWeight, sharesToWeight, swapToV2, v2Writes } from "../../effects/cgroups-v2-resources.ts"
import { runDeviceProgram } from "../config/ebpf-interp.ts"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xc-cg2-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc"

/** A pure v2 host: cgroup2 at <base>/cg2, us in /user.slice/session-1.scope. */
function fakeHost(controllers = CONTROLLERS) {
  const base = fs.mkdtempSync(path.join(tmp, "host-"))
  const mount = path.join(base, "cg2")
  fs.mkdirSync(path.join(mount, "user.slice", "session-1.scope"), { recursive: true })
  fs.writeFileSync(path.join(mount, "cgroup.controllers"), `${controllers}\n`)
  fs.writeFileSync(path.join(mount, "user.slice", "cpuset.cpus.effective"), "0-3\n")
  fs.writeFileSync(path.join(mount, "user.slice", "cpuset.mems.effective"), "0\n")
  const hp = path.join(base, "hugepages")
  fs.mkdirSync(path.join(hp, "hugepages-2048kB"), { recursive: true })
  fs.mkdirSync(path.join(hp, "hugepages-1048576kB"), { recursive: true })
  const mountinfo = path.join(base, "mountinfo")
  fs.writeFileSync(mountinfo, [`22 1 8:1 / / rw - ext4 /dev/sda1 rw`, `30 22 0:26 / ${mount} rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate`, ""].join("\n"))
  const procSelfCgroup = path.join(base, "cgroup")
  fs.writeFileSync(procSelfCgroup, "0::/user.slice/session-1.scope\n")
  const attached: Array<{ dir: string; program: Uint8Array }> = []
  const layer = CgroupsV2({
    mountinfo,
    procSelfCgroup,
    hugepagesDir: hp,
    freezeTimeoutMs: 300,
    removeRetries: 2,
    attachDevices: (dir, program) => Effect.sync(() => void attached.push({ dir, program })),
  })
  const run = <A, E>(eff: Effect.Effect<A, E, Cgroups>) => Effect.runPromise(Effect.provide(eff, layer as Layer.Layer<Cgroups>))
  return { mount, mountinfo, attached, run }
}

const cg = <A, E>(f: (c: Cgroups["Service"]) => Effect.Effect<A, E>) => Effect.flatMap(Cgroups, f)
const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), "utf8")

/** Creates the container's cgroup with the files the kernel would show, then applies `r`. */
async function applied(r: ResourcesSpec | undefined, files: readonly string[] = [], host = fakeHost()) {
  const paths = await host.run(cg((c) => c.paths(undefined, "box")))
  await host.run(cg((c) => c.create(paths)))
  const dir = Object.values(paths)[0]!
  for (const f of files) fs.writeFileSync(path.join(dir, f), "")
  await host.run(cg((c) => c.apply(paths, r)))
  return { dir, paths, host }
}

describe("layout detection", () => {
  const mi = (lines: string[]) => parseHierarchies(lines.map((l, i) => `${30 + i} 22 0:${30 + i} / ${l}`).join("\n"))
  it("tells v1, hybrid and v2 apart; a named hierarchy alone is not v1", () => {
    expect(detectLayout(mi(["/sys/fs/cgroup rw - cgroup2 cgroup2 rw"]))).toBe("v2")
    expect(detectLayout(mi(["/sys/fs/cgroup rw - cgroup2 cgroup2 rw", "/sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd"]))).toBe("v2")
    expect(detectLayout(mi(["/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory", "/sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw"]))).toBe("hybrid")
    expect(detectLayout(mi(["/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory"]))).toBe("v1")
    expect(detectLayout([])).toBe("v1")
  })
  it("on this host, mountinfo and statfs agree (hybrid here: v1 controllers, cgroup2 at /sys/fs/cgroup/unified)", () => {
    const fromMountinfo = detectLayout(parseHierarchies(fs.readFileSync("/proc/self/mountinfo", "utf8")))
    expect(layoutFromStatfs()).toBe(fromMountinfo)
  })
})

describe("conversions (runc's)", () => {
  it("shares → weight keeps the ends and the default", () => {
    expect([0, 2, 1024, 262144, 512, 100000].map(sharesToWeight)).toEqual([0, 1, 100, 10000, 59, 4340])
  })
  it("blkio weight → io.weight maps 10..1000 onto 1..10000", () => {
    expect([10, 500, 1000].map(blkioToIoWeight)).toEqual([1, 4950, 10000])
  })
  it("swap is swap alone on v2", () => {
    expect(swapToV2(300, 100)).toBe(200)
    expect(swapToV2(100, 100)).toBe(0)
    expect(swapToV2(0, -1)).toBe(-1)
    expect(swapToV2(-1, 100)).toBe(-1)
    expect(swapToV2(300, -1)).toBe(300)
    expect(swapToV2(300, 0)).toMatch(/needs memory.limit/)
    expect(swapToV2(50, 100)).toMatch(/below/)
  })
})

describe("the v2 manager on a fake tree", () => {
  it("places relative paths under our cgroup's parent, absolute ones at the mount", async () => {
    const h = fakeHost()
    expect(await h.run(cg((c) => c.paths(undefined, "box")))).toEqual({ [h.mount]: `${h.mount}/user.slice/box` })
    expect(await h.run(cg((c) => c.paths("/machine.slice/box", "box")))).toEqual({ [h.mount]: `${h.mount}/machine.slice/box` })
    expect(await h.run(cg((c) => c.paths("pods/../pods/box", "box")))).toEqual({ [h.mount]: `${h.mount}/user.slice/pods/box` })
    expect(placeV2("/sys/fs/cgroup", "/", undefined, "x")).toEqual({ "/sys/fs/cgroup": "/sys/fs/cgroup/x" })
  })

  it("create enables every offered controller on each level above the leaf", async () => {
    const h = fakeHost()
    const paths = await h.run(cg((c) => c.paths("/a/b/box", "box")))
    await h.run(cg((c) => c.create(paths)))
    const want = CONTROLLERS.split(" ").map((c) => `+${c}`).join(" ")
    for (const d of [h.mount, `${h.mount}/a`, `${h.mount}/a/b`]) expect(read(d, "cgroup.subtree_control")).toBe(want)
    expect(fs.existsSync(`${h.mount}/a/b/box/cgroup.subtree_control`)).toBe(false)
  })

  it.each<[string, ResourcesSpec, string[], Record<string, string>]>([
    ["cpu shares/quota/period", { cpu: { shares: 1024, quota: 50000, period: 200000 } }, [], { "cpu.weight": "100", "cpu.max": "50000 200000" }],
    ["an unlimited quota with the default period", { cpu: { quota: -1 } }, [], { "cpu.max": "max 100000" }],
    ["cpuset", { cpu: { cpus: "0-1", mems: "0" } }, [], { "cpuset.cpus": "0-1", "cpuset.mems": "0" }],
    ["memory limit+swap → swap alone", { memory: { limit: 100 << 20, swap: 300 << 20, reservation: 50 << 20 } }, ["memory.swap.max"], { "memory.max": `${100 << 20}`, "memory.swap.max": `${200 << 20}`, "memory.low": `${50 << 20}` }],
    ["swap == limit → no swap", { memory: { limit: 1 << 20, swap: 1 << 20 } }, ["memory.swap.max"], { "memory.max": `${1 << 20}`, "memory.swap.max": "0" }],
    ["unlimited memory → swap max too", { memory: { limit: -1 } }, ["memory.swap.max"], { "memory.max": "max", "memory.swap.max": "max" }],
    ["pids", { pids: { limit: 64 } }, [], { "pids.max": "64" }],
    ["pids unlimited", { pids: { limit: -1 } }, [], { "pids.max": "max" }],
    ["blkio weight with BFQ", { blockIO: { weight: 500 } }, ["io.bfq.weight"], { "io.bfq.weight": "500" }],
    ["blkio weight without BFQ → io.weight", { blockIO: { weight: 500 } }, [], { "io.weight": "4950" }],
    ["hugetlb with reservations", { hugepageLimits: [{ pageSize: "2MB", limit: 4 << 20 }] }, ["hugetlb.2MB.rsvd.max"], { "hugetlb.2MB.max": `${4 << 20}`, "hugetlb.2MB.rsvd.max": `${4 << 20}` }],
    ["unified, written last so it wins", { memory: { limit: 1 << 20 }, unified: { "memory.max": "2097152", "memory.high": "1048576" } } as ResourcesSpec, [], { "memory.max": "2097152", "memory.high": "1048576" }],
  ])("%s", async (_name, r, files, want) => {
    const { dir } = await applied(r, files)
    for (const [f, v] of Object.entries(want)) expect(read(dir, f), f).toBe(v)
  })

  it("leaves hugetlb reservations and swap alone where the kernel has no such file", async () => {
    const { dir } = await applied({ hugepageLimits: [{ pageSize: "2MB", limit: 1 }], memory: { limit: -1 } })
    expect(fs.existsSync(path.join(dir, "hugetlb.2MB.rsvd.max"))).toBe(false)
    expect(fs.existsSync(path.join(dir, "memory.swap.max"))).toBe(false)
    expect(read(dir, "hugetlb.2MB.max")).toBe("1")
  })

  it("writes per-device throttles, weights and rdma limits as the kernel takes them", () => {
    const writes = v2Writes({
      blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 300 }], throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }], throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 100 }] },
      rdma: { mlx5_1: { hcaHandles: 3, hcaObjects: 10000 } },
    } as unknown as ResourcesSpec)
    expect(writes.map((w) => [w.file, w.value])).toEqual([
      ["io.bfq.weight", "8:0 300"],
      ["io.max", "8:0 rbps=1048576"],
      ["io.max", "8:16 wiops=100"],
      ["rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"],
    ])
  })

  it("hands the device program to the attacher: runc's defaults after the spec's rules, and not on an update without devices", async () => {
    const { dir, paths, host } = await applied({ devices: [{ allow: true, type: "b", major: 8, minor: 0, access: "r" }] })
    expect(host.attached).toHaveLength(1)
    const prog = host.attached[0]!.program
    expect(host.attached[0]!.dir).toBe(dir)
    expect(runDeviceProgram(prog, { type: DEV.block, major: 8, minor: 0, access: ACC.read })).toBe(1)
    expect(runDeviceProgram(prog, { type: DEV.block, major: 8, minor: 0, access: ACC.write })).toBe(0)
    expect(runDeviceProgram(prog, { type: DEV.char, major: 1, minor: 3, access: ACC.read | ACC.write })).toBe(1)
    await host.run(cg((c) => c.apply(paths, { pids: { limit: 5 } }, { devices: false })))
    expect(host.attached).toHaveLength(1)
    expect(read(dir, "pids.max")).toBe("5")
  })

  it("reports facts: layout v2, the root's controllers, our parent's cpus, huge page sizes", async () => {
    const h = fakeHost("memory pids")
    const f = await h.run(cg((c) => c.facts()))
    expect(f).toMatchObject({ layout: "v2", v2Controllers: new Set(["memory", "pids"]), cpus: new Set([0, 1, 2, 3]), mems: new Set([0]), hugepageSizes: new Set(["2MB", "1GB"]) })
  })

  it("freezes by cgroup.freeze and returns when cgroup.events says frozen; a freeze that never completes is undone and reported", async () => {
    const { dir, paths, host } = await applied(undefined, ["cgroup.freeze"])
    fs.writeFileSync(path.join(dir, "cgroup.events"), "populated 1\nfrozen 0\n")
    // The "kernel": reports frozen a little later; the manager must wait for it.
    const t0 = Date.now()
    setTimeout(() => fs.writeFileSync(path.join(dir, "cgroup.events"), "populated 1\nfrozen 1\n"), 80)
    await host.run(cg((c) => c.freeze(paths, true)))
    expect(Date.now() - t0).toBeGreaterThanOrEqual(70)
    expect(read(dir, "cgroup.freeze")).toBe("1")
    expect(await host.run(cg((c) => c.frozen(paths)))).toBe(true)
    setTimeout(() => fs.writeFileSync(path.join(dir, "cgroup.events"), "populated 1\nfrozen 0\n"), 20)
    await host.run(cg((c) => c.freeze(paths, false)))
    expect(await host.run(cg((c) => c.frozen(paths)))).toBe(false)
    // Nobody answers now: the bound (300 ms here) fails it, and cgroup.freeze is put back to 0.
    const err = await host.run(cg((c) => c.freeze(paths, true)).pipe(Effect.flip))
    expect(err).toMatchObject({ _tag: "CgroupError", op: "freeze", reason: expect.stringMatching(/ETIMEDOUT/) })
    expect(read(dir, "cgroup.freeze")).toBe("0")
  })

  it("kills through cgroup.kill where it exists, says false where not", async () => {
    const { dir, paths, host } = await applied(undefined)
    expect(await host.run(cg((c) => c.killAll!(paths)))).toBe(false)
    fs.writeFileSync(path.join(dir, "cgroup.kill"), "")
    expect(await host.run(cg((c) => c.killAll!(paths)))).toBe(true)
    expect(read(dir, "cgroup.kill")).toBe("1")
  })

  it("joins, lists pids of the cgroup and its children, destroys children first", async () => {
    const h = fakeHost()
    const paths: CgroupPaths = await h.run(cg((c) => c.paths(undefined, "box")))
    await h.run(cg((c) => c.create(paths)))
    await h.run(cg((c) => c.join(paths, 42)))
    const dir = Object.values(paths)[0]!
    fs.mkdirSync(path.join(dir, "sub"))
    fs.writeFileSync(path.join(dir, "sub", "cgroup.procs"), "7\n")
    expect(await h.run(cg((c) => c.pids(paths)))).toEqual([7, 42])
    // A fake tree holds real files, which rmdir refuses: empty them as the kernel would when tasks leave.
    for (const d of [path.join(dir, "sub"), dir]) for (const f of fs.readdirSync(d)) if (!fs.statSync(path.join(d, f)).isDirectory()) fs.rmSync(path.join(d, f))
    await h.run(cg((c) => c.destroy(paths)))
    expect(fs.existsSync(dir)).toBe(false)
    await h.run(cg((c) => c.destroy(paths)))
  })

  it("exec --cgroup on v2: a bare path to an existing sub-cgroup; a controller prefix or a missing one refused by name", async () => {
    const h = fakeHost()
    const paths: CgroupPaths = await h.run(cg((c) => c.paths(undefined, "box")))
    await h.run(cg((c) => c.create(paths)))
    const dir = Object.values(paths)[0]!
    fs.mkdirSync(path.join(dir, "sub"))
    expect(Object.values(await h.run(cg((c) => c.subPaths!(paths, { "": "sub" }))))).toEqual([path.join(dir, "sub")])
    await expect(h.run(cg((c) => c.subPaths!(paths, { memory: "sub" })))).rejects.toMatchObject({ _tag: "CgroupError", reason: expect.stringMatching(/unknown controller "memory": cgroup v2 has one hierarchy/) })
    await expect(h.run(cg((c) => c.subPaths!(paths, { "": "gone" })))).rejects.toMatchObject({ _tag: "CgroupError", path: path.join(dir, "gone"), reason: expect.stringMatching(/^ENOENT/) })
  })
})
