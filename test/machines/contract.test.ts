/**
 * One contract, two layers: CgroupsModel and CgroupsFs (over fake mountinfo and
 * /proc/self/cgroup files whose "mount points" are temp dirs) must agree on
 * placement and on create/join/pids/destroy. Plus the kernel model's own rules.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { Cgroups, type Hierarchy } from "../../effects/cgroups.ts"
import { CgroupsFs, parseHierarchies } from "../../effects/cgroups-fs.ts"
import { CgroupsModelControl, cgroupsModel, modelLayer } from "../../effects/cgroups-model.ts"
import { Kernel, type ProcessRef } from "../../effects/kernel.ts"
import { KernelModelControl } from "../../effects/kernel-model.ts"
import { nulList, Op } from "../../native/protocol.ts"
import { CLONE_FLAGS } from "../../config/linux-names.ts"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xc-cg-contract-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** A hybrid layout under a temp dir: one v1 hierarchy (cpu,cpuacct) and the unified one; `full` adds devices and freezer. */
function fakeHost(full = false): { hierarchies: Hierarchy[]; own: Map<string, string>; mountinfo: string; procSelfCgroup: string } {
  const base = fs.mkdtempSync(path.join(tmp, "host-"))
  const v1 = path.join(base, "cpu,cpuacct")
  const v2 = path.join(base, "unified")
  const extra = full ? ["devices", "freezer"] : []
  for (const d of [v1, v2, ...extra.map((e) => path.join(base, e))]) fs.mkdirSync(path.join(d, "user.slice"), { recursive: true })
  const mountinfo = path.join(base, "mountinfo")
  fs.writeFileSync(
    mountinfo,
    [
      `30 25 0:26 / ${v1} rw,nosuid shared:10 - cgroup cgroup rw,cpu,cpuacct`,
      `31 25 0:27 / ${v2} rw,nosuid shared:11 - cgroup2 cgroup2 rw,nsdelegate`,
      ...extra.map((e, i) => `${40 + i} 25 0:${40 + i} / ${path.join(base, e)} rw,nosuid - cgroup cgroup rw,${e}`),
      `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw`,
      "",
    ].join("\n"),
  )
  const procSelfCgroup = path.join(base, "cgroup")
  fs.writeFileSync(procSelfCgroup, `4:cpuacct,cpu:/user.slice\n${extra.map((e, i) => `${5 + i}:${e}:/user.slice\n`).join("")}0::/user.slice\n`)
  return {
    hierarchies: [
      { mountPoint: v1, controllers: "cpu,cpuacct", version: 1 },
      { mountPoint: v2, controllers: "", version: 2 },
      ...extra.map((e) => ({ mountPoint: path.join(base, e), controllers: e, version: 1 as const })),
    ],
    own: new Map([
      ["cpu,cpuacct", "/user.slice"],
      ["", "/user.slice"],
      ...extra.map((e) => [e, "/user.slice"] as [string, string]),
    ]),
    mountinfo,
    procSelfCgroup,
  }
}

/** The assertions every Cgroups layer meets; `mounts` are the hierarchy mount points it was given. */
function cgroupsContract(name: string, make: (full?: boolean) => { layer: Layer.Layer<Cgroups>; mounts: string[] }) {
  describe(`Cgroups contract: ${name}`, () => {
    // Each test gets a fresh layer (and fresh temp hierarchies).
    let made = make()
    const run = <A, E>(eff: Effect.Effect<A, E, Cgroups>) => Effect.runPromise(Effect.provide(eff, made.layer))

    it("places a relative path (and the id) under our own cgroup, an absolute one at each root", async () => {
      made = make()
      const [v1, v2] = made.mounts as [string, string]
      const byId = await run(Effect.flatMap(Cgroups, (c) => c.paths(undefined, "box")))
      expect(byId).toEqual({ [v1]: `${v1}/user.slice/box`, [v2]: `${v2}/user.slice/box` })
      const abs = await run(Effect.flatMap(Cgroups, (c) => c.paths("/machine/box", "box")))
      expect(abs).toEqual({ [v1]: `${v1}/machine/box`, [v2]: `${v2}/machine/box` })
      const rel = await run(Effect.flatMap(Cgroups, (c) => c.paths("pods/box", "box")))
      expect(rel).toEqual({ [v1]: `${v1}/user.slice/pods/box`, [v2]: `${v2}/user.slice/pods/box` })
    })

    it("creates (idempotently), joins, lists and destroys; destroy is idempotent too", async () => {
      made = make()
      const pids = await run(
        Effect.gen(function* () {
          const c = yield* Cgroups
          const p = yield* c.paths(undefined, "c1")
          yield* c.create(p)
          yield* c.create(p)
          const before = yield* c.pids(p)
          yield* c.join(p, 4242)
          const after = yield* c.pids(p)
          return { before, after }
        }),
      )
      expect(pids).toEqual({ before: [], after: [4242] })
      const gone = await run(
        Effect.gen(function* () {
          const c = yield* Cgroups
          const p = yield* c.paths(undefined, "c2")
          yield* c.create(p)
          yield* c.destroy(p)
          yield* c.destroy(p)
          return yield* c.pids(p)
        }),
      )
      expect(gone).toEqual([])
    })

    it("applies resources as v1 writes that read back; freezes and thaws; refuses a cgroup never created", async () => {
      made = make(true)
      const out = await run(
        Effect.gen(function* () {
          const c = yield* Cgroups
          const p = yield* c.paths(undefined, "res")
          const missing = yield* c.apply(p, { pids: { limit: 5 } }).pipe(Effect.flip)
          yield* c.create(p)
          yield* c.apply(p, { cpu: { shares: 256, period: 100000, quota: 50000 } })
          const read = (f: string) => c.read(p, "cpu", f).pipe(Effect.map((t) => t.trim()))
          const before = yield* c.frozen(p)
          yield* c.freeze(p, true)
          const paused = yield* c.frozen(p)
          yield* c.freeze(p, false)
          const thawed = yield* c.frozen(p)
          return { missing, shares: yield* read("cpu.shares"), quota: yield* read("cpu.cfs_quota_us"), before, paused, thawed }
        }),
      )
      expect(out).toMatchObject({ missing: { _tag: "CgroupError" }, shares: "256", quota: "50000", before: false, paused: true, thawed: false })
    })

    it("fails closed when no hierarchy can enforce device rules", async () => {
      made = make()
      const r = await run(Effect.flatMap(Cgroups, (c) => Effect.flatMap(c.paths(undefined, "nodev"), (p) => c.create(p).pipe(Effect.andThen(c.apply(p, undefined))))).pipe(Effect.flip))
      expect(r).toMatchObject({ _tag: "CgroupError", reason: expect.stringContaining("devices") })
    })

    it("refuses to join a cgroup that was not created", async () => {
      made = make()
      const r = await run(Effect.flatMap(Cgroups, (c) => Effect.flatMap(c.paths(undefined, "never"), (p) => c.join(p, 1))).pipe(Effect.flip))
      expect(r).toMatchObject({ _tag: "CgroupError", op: "join" })
    })
  })
}

cgroupsContract("CgroupsModel", (full) => {
  const h = fakeHost(full)
  return { layer: cgroupsModel({ hierarchies: h.hierarchies, own: h.own }), mounts: h.hierarchies.map((x) => x.mountPoint) }
})
cgroupsContract("CgroupsFs on a temp tree", (full) => {
  const h = fakeHost(full)
  return { layer: CgroupsFs({ mountinfo: h.mountinfo, procSelfCgroup: h.procSelfCgroup, removeRetries: 2 }), mounts: h.hierarchies.map((x) => x.mountPoint) }
})

describe("the models together", () => {
  const plan = (args: string[], pidNs: boolean) => [
    { op: Op.CLONE, n: [pidNs ? BigInt(CLONE_FLAGS.pid) : 0n, 0n] },
    { op: Op.RESOLVE_EXEC, s: [args[0] ?? "", "/bin"] },
    { op: Op.WAIT_START },
    { op: Op.EXEC, s: [nulList(args), nulList([])] },
  ]

  it("a cgroup with a live member is busy; it empties when the process is killed", async () => {
    const rt = ManagedRuntime.make(modelLayer())
    const out = await rt.runPromise(
      Effect.gen(function* () {
        const k = yield* Kernel
        const c = yield* Cgroups
        const p = yield* c.paths(undefined, "busy")
        yield* c.create(p)
        const init = yield* k.spawnInit({ plan: plan(["sleep", "30"], false), stdio: [0, 1, 2], beforeGo: (r) => c.join(p, r.pid) })
        const busy = yield* c.destroy(p).pipe(Effect.flip)
        yield* k.signal(init, 15)
        const status = yield* k.awaitExit(init)
        yield* k.release(init)
        yield* c.destroy(p)
        const groups = (yield* CgroupsModelControl).groups()
        const kc = yield* KernelModelControl
        return { busy, status, groups: groups.size, live: kc.live().length, holds: kc.holds(), problems: kc.problems() }
      }),
    )
    await rt.dispose()
    expect(out.busy).toMatchObject({ _tag: "CgroupError", reason: "EBUSY" })
    expect(out).toMatchObject({ status: { code: null, signal: 15 }, groups: 0, live: 0, holds: 0, problems: [] })
  })

  it("a namespace init ignores TERM and USR1 but not KILL; `true` exits 0 after start; a missing program is ENOENT", async () => {
    const rt = ManagedRuntime.make(modelLayer())
    const out = await rt.runPromise(
      Effect.gen(function* () {
        const k = yield* Kernel
        const none = () => Effect.void
        const ns = yield* k.spawnInit({ plan: plan(["sleep", "30"], true), stdio: [0, 1, 2], beforeGo: none })
        yield* k.signal(ns, 15)
        yield* k.signal(ns, 10)
        const kc = yield* KernelModelControl
        const aliveAfterTerm = kc.isAlive(ns.pid)
        const other: ProcessRef | undefined = yield* k.attach(ns.pid, ns.startTime)
        yield* k.signal(ns, 9)
        const killed = yield* k.awaitExit(ns)
        const seenByOther = other ? yield* k.awaitExit(other) : "no attach"
        const fifo = path.join(tmp, `fifo-${Date.now()}`)
        yield* k.mkfifo(fifo)
        const t = yield* k.spawnInit({ plan: plan(["true"], true), stdio: [0, 1, 2], beforeGo: none })
        yield* k.start(t, fifo)
        const trueExit = yield* k.awaitExit(t)
        const missing = yield* k.spawnInit({ plan: plan(["/bin/does-not-exist"], true), stdio: [0, 1, 2], beforeGo: none }).pipe(Effect.flip)
        for (const r of [ns, t, ...(other ? [other] : [])]) yield* k.release(r)
        yield* k.release(t)
        return { aliveAfterTerm, killed, seenByOther, trueExit, missing, live: kc.live().length, holds: kc.holds(), problems: kc.problems() }
      }),
    )
    await rt.dispose()
    expect(out).toMatchObject({
      aliveAfterTerm: true,
      killed: { code: null, signal: 9 },
      seenByOther: null,
      trueExit: { code: 0, signal: null },
      missing: { _tag: "InitFailed", op: "resolve_exec", errno: "ENOENT", path: "/bin/does-not-exist" },
      live: 0,
      holds: 0,
    })
    // The second release of `t` is misuse, and the model says so.
    expect(out.problems).toEqual([expect.stringContaining("not held")])
  })
})

describe("hierarchy discovery", () => {
  it("takes one mount per hierarchy: its whole tree, preferring /sys/fs/cgroup over a tool's copy", () => {
    const mountinfo = [
      "30 25 0:26 / /tmp/criu.cgyard/pids rw,relatime - cgroup cgroup rw,pids",
      "31 25 0:26 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
      "32 25 0:27 /sub /mnt/memsub rw - cgroup cgroup rw,memory",
      "33 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
      "34 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
    ].join("\n")
    expect(parseHierarchies(mountinfo)).toEqual([
      { mountPoint: "/sys/fs/cgroup/pids", controllers: "pids", version: 1 },
      { mountPoint: "/sys/fs/cgroup/memory", controllers: "memory", version: 1 },
      { mountPoint: "/sys/fs/cgroup/unified", controllers: "", version: 2 },
    ])
  })
})
