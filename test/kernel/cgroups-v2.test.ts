/**
 * The cgroup v2 manager on the real kernel. On the hybrid development host
 * cgroup2 is at /sys/fs/cgroup/unified with no controller enabled for children,
 * but the core v2 features need none: cgroup.procs, cgroup.freeze +
 * cgroup.events, cgroup.kill and eBPF device programs. On a pure v2 host (the
 * guest of test/guest/run-suite.sh) cgroup2 is /sys/fs/cgroup with every
 * controller, and the resource writes and nested subtree_control run for real.
 * The manager is given a mountinfo that puts "its" cgroup2 mount at a fresh
 * subtree of the real one, so nothing outside that subtree is touched.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { Cgroups, type CgroupPaths } from "../../effects/cgroups.ts"
import { CgroupsV2 } from "../../effects/cgroups-v2.ts"
import { readStats } from "../../effects/stats.ts"
import { CGROUP2, isRoot, uniq, WORK } from "./harness.ts"

const UNIFIED = CGROUP2
const skip = !isRoot
  ? "needs root"
  : (() => {
      try {
        if (fs.statfsSync(UNIFIED).type !== 0x63677270) return `${UNIFIED} is not cgroup2`
        return fs.existsSync(path.join(UNIFIED, "cgroup.kill")) || fs.readdirSync(UNIFIED).length > 0 ? undefined : "no cgroup2 files"
      } catch {
        return `no ${UNIFIED}`
      }
    })()
if (skip) console.warn(`SKIPPING cgroup v2 real-kernel tests: ${skip}`)

const roots: string[] = []
const children: ChildProcess[] = []
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  // Deepest first: a cgroup with children cannot be removed.
  const under = (d: string): string[] =>
    fs.existsSync(d) ? [...fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => under(path.join(d, e.name))), d] : []
  for (const r of roots)
    for (const d of under(r))
      try {
        fs.rmdirSync(d)
      } catch {
        /* reported by the tests themselves */
      }
})

/** A v2 manager whose mount is a fresh subtree of the real cgroup2 mount. */
function manager() {
  const root = path.join(UNIFIED, uniq("v2t"))
  fs.mkdirSync(root)
  roots.push(root)
  fs.mkdirSync(WORK, { recursive: true })
  const mountinfo = path.join(WORK, `${path.basename(root)}.mountinfo`)
  fs.writeFileSync(mountinfo, `40 30 0:37 / ${root} rw,relatime - cgroup2 cgroup2 rw\n`)
  const procSelfCgroup = path.join(WORK, `${path.basename(root)}.cgroup`)
  fs.writeFileSync(procSelfCgroup, "0::/\n")
  const layer = CgroupsV2({ mountinfo, procSelfCgroup })
  const run = <A, E>(f: (c: Cgroups["Service"]) => Effect.Effect<A, E>) => Effect.runPromise(Effect.provide(Effect.flatMap(Cgroups, f), layer))
  const stats = (paths: CgroupPaths) => Effect.runPromise(Effect.provide(readStats(paths, undefined), layer))
  return { root, run, stats }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const ticks = (pid: number) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return Number(f[11]) + Number(f[12])
}
const exited = (c: ChildProcess) => new Promise<NodeJS.Signals | number | null>((r) => (c.exitCode !== null || c.signalCode !== null ? r(c.signalCode ?? c.exitCode) : c.once("exit", (code, sig) => r(sig ?? code))))
const busy = () => {
  const c = spawn("/bin/sh", ["-c", "while :; do :; done"], { stdio: "ignore" })
  children.push(c)
  return c
}

async function containerCgroup() {
  const m = manager()
  const paths: CgroupPaths = await m.run((c) => c.paths("/box", "box"))
  await m.run((c) => c.create(paths))
  return { ...m, paths, dir: Object.values(paths)[0]! }
}

describe.skipIf(skip)("cgroup v2 manager on the real kernel", () => {
  it("lists the processes that joined; freezes a busy loop (no CPU time), thaws it, waited on by cgroup.events", async () => {
    const { run, stats, paths, dir } = await containerCgroup()
    const c = busy()
    await run((cg) => cg.join(paths, c.pid!))
    expect(await run((cg) => cg.pids(paths))).toEqual([c.pid])
    await sleep(100)
    const t0 = performance.now()
    await run((cg) => cg.freeze(paths, true))
    const freezeMs = performance.now() - t0
    console.log(`v2 freeze of a busy loop: ${freezeMs.toFixed(1)} ms`)
    expect(fs.readFileSync(path.join(dir, "cgroup.events"), "utf8")).toMatch(/^frozen 1$/m)
    expect(await run((cg) => cg.frozen(paths))).toBe(true)
    const at = ticks(c.pid!)
    await sleep(300)
    expect(ticks(c.pid!)).toBe(at)
    await run((cg) => cg.freeze(paths, false))
    expect(fs.readFileSync(path.join(dir, "cgroup.events"), "utf8")).toMatch(/^frozen 0$/m)
    await sleep(300)
    expect(ticks(c.pid!)).toBeGreaterThan(at)
    // cpu.stat is a core v2 file: usage is there without the cpu controller, in v1's shape (ns).
    const { cpu } = await stats(paths)
    expect(cpu?.usage.total).toBeGreaterThan(100e6)
    expect(cpu!.usage.user + cpu!.usage.kernel).toBeGreaterThan(0)
    c.kill("SIGKILL")
    await exited(c)
  })

  it("kills every process at once through cgroup.kill, frozen ones too, then destroys the cgroup", async () => {
    const { run, paths, dir } = await containerCgroup()
    const kids = [busy(), busy(), busy()]
    for (const k of kids) await run((cg) => cg.join(paths, k.pid!))
    await run((cg) => cg.freeze(paths, true))
    expect(await run((cg) => cg.killAll!(paths))).toBe(true)
    expect(await Promise.all(kids.map(exited))).toEqual(["SIGKILL", "SIGKILL", "SIGKILL"])
    // The cgroup empties once the dead are reaped (Node reaped them above); populated goes to 0.
    for (let i = 0; i < 100 && /populated 1/.test(fs.readFileSync(path.join(dir, "cgroup.events"), "utf8")); i++) await sleep(10)
    expect(await run((cg) => cg.pids(paths))).toEqual([])
    await run((cg) => cg.destroy(paths))
    expect(fs.existsSync(dir)).toBe(false)
  })

  it("applies device rules as an eBPF program: EPERM for what they do not allow; an update swaps it; one without devices keeps it", async () => {
    const { run, paths, dir } = await containerCgroup()
    // A node outside runc's defaults: c 1:11 (/dev/kmsg), made outside /dev.
    const node = path.join(WORK, uniq("kmsg"))
    expect(spawnSync("mknod", [node, "c", "1", "11"]).status).toBe(0)
    const opens = () =>
      spawnSync("/bin/sh", ["-c", `echo $$ > ${dir}/cgroup.procs; for d in /dev/null /dev/zero ${node}; do if (exec 3<>$d); then echo ok; else echo denied; fi; done`], {
        encoding: "utf8",
      })
        .stdout.trim()
        .split("\n")
    try {
      await run((cg) => cg.apply(paths, undefined))
      expect(opens()).toEqual(["ok", "ok", "denied"])
      await run((cg) => cg.apply(paths, { devices: [{ allow: true, type: "c", major: 1, minor: 11, access: "rw" }] }))
      expect(opens()).toEqual(["ok", "ok", "ok"])
      await run((cg) => cg.apply(paths, { pids: undefined }, { devices: false }))
      expect(opens()).toEqual(["ok", "ok", "ok"])
      await run((cg) => cg.apply(paths, { devices: [] }))
      expect(opens()).toEqual(["ok", "ok", "denied"])
    } finally {
      fs.rmSync(node, { force: true })
    }
  })
})

// What needs controllers: a pure v2 host (the guest); the hybrid host's cgroup2 carries none of these.
const offered = skip ? [] : fs.readFileSync(path.join(UNIFIED, "cgroup.controllers"), "utf8").trim().split(/\s+/).filter(Boolean)
const NEEDED = ["cpuset", "cpu", "io", "memory", "pids"]
const noControllers = skip ?? (NEEDED.every((c) => offered.includes(c)) ? undefined : `${UNIFIED} offers "${offered.join(" ")}", not all of ${NEEDED.join(" ")}`)
if (!skip && noControllers) console.warn(`SKIPPING cgroup v2 controller tests (pure v2 hosts only): ${noControllers}`)

/** A block device's MAJ:MIN (the guest's root disk), for io.max. */
const blockDevice = (): string | undefined => {
  try {
    return fs
      .readdirSync("/sys/block")
      .filter((d) => !/^(loop|ram|zram|nbd)/.test(d))
      .map((d) => fs.readFileSync(`/sys/block/${d}/dev`, "utf8").trim())[0]
  } catch {
    return undefined
  }
}

describe.skipIf(noControllers)("cgroup v2 manager with controllers (pure v2 host)", () => {
  it("a nested cgroupsPath gets every controller in subtree_control at each level, and every resource lands in its files", async () => {
    // The manager's mount is a child of the real root: the real root must hand the controllers down to it.
    for (const c of offered)
      try {
        fs.writeFileSync(path.join(UNIFIED, "cgroup.subtree_control"), `+${c}`)
      } catch {
        /* a controller the root cannot enable here; the checks below name what is missing */
      }
    const m = manager()
    const paths: CgroupPaths = await m.run((c) => c.paths("/outer/inner/box", "box"))
    const dir = Object.values(paths)[0]!
    expect(dir).toBe(path.join(m.root, "outer/inner/box"))
    await m.run((c) => c.create(paths))
    for (const level of [m.root, path.join(m.root, "outer"), path.join(m.root, "outer/inner")])
      expect(fs.readFileSync(path.join(level, "cgroup.subtree_control"), "utf8").trim().split(" ")).toEqual(expect.arrayContaining(NEEDED))
    const dev = blockDevice()
    const huge = fs.existsSync(path.join(dir, "hugetlb.2MB.max"))
    const hasBfq = fs.existsSync(path.join(dir, "io.bfq.weight"))
    if (!dev) console.warn("SKIPPING io.max: no block device")
    if (!huge) console.warn("SKIPPING hugetlb limits: no hugetlb.2MB.max (no hugetlb controller or 2 MB pages)")
    console.warn("SKIPPING rdma.max: no RDMA device in the guest (the write would be refused by the kernel, as runc's)")
    const [maj, min] = (dev ?? "0:0").split(":").map(Number)
    await m.run((c) =>
      c.apply(paths, {
        cpu: { shares: 512, quota: 25000, period: 50000, burst: 1000, idle: 0, cpus: "0", mems: "0" },
        memory: { limit: 64 << 20, swap: 96 << 20, reservation: 16 << 20 },
        pids: { limit: 20 },
        blockIO: { weight: 500, ...(dev ? { throttleReadBpsDevice: [{ major: maj!, minor: min!, rate: 1 << 20 }], throttleWriteIOPSDevice: [{ major: maj!, minor: min!, rate: 100 }] } : {}) },
        ...(huge ? { hugepageLimits: [{ pageSize: "2MB", limit: 4 << 20 }] } : {}),
        unified: { "memory.high": `${48 << 20}`, "pids.max": "24" },
      }),
    )
    const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8").trim()
    expect({
      cpus: read("cpuset.cpus"),
      mems: read("cpuset.mems"),
      weight: read("cpu.weight"),
      max: read("cpu.max"),
      burst: read("cpu.max.burst"),
      idle: read("cpu.idle"),
      memMax: read("memory.max"),
      swapMax: read("memory.swap.max"),
      low: read("memory.low"),
      high: read("memory.high"),
      pids: read("pids.max"),
    }).toEqual({
      cpus: "0",
      mems: "0",
      weight: "59", // runc's conversion of 512 shares
      max: "25000 50000",
      burst: "1000",
      idle: "0",
      memMax: `${64 << 20}`,
      swapMax: `${32 << 20}`, // OCI's memory+swap minus the memory
      low: `${16 << 20}`,
      high: `${48 << 20}`, // unified: written as given
      pids: "24", // unified wins over pids.limit (written last, runc's order)
    })
    expect(read(hasBfq ? "io.bfq.weight" : "io.weight")).toMatch(hasBfq ? /^default 500$/m : /^default 4950$/m)
    if (dev) expect(read("io.max")).toBe(`${dev} rbps=${1 << 20} wbps=max riops=max wiops=100`)
    if (huge) {
      expect(read("hugetlb.2MB.max")).toBe(`${4 << 20}`)
      if (fs.existsSync(path.join(dir, "hugetlb.2MB.rsvd.max"))) expect(read("hugetlb.2MB.rsvd.max")).toBe(`${4 << 20}`)
    }
    // A refused value is a CgroupError naming the file, not a throw.
    expect(await m.run((c) => Effect.flip(c.apply(paths, { unified: { "memory.max": "lots" } }, { devices: false })))).toMatchObject({
      _tag: "CgroupError",
      path: path.join(dir, "memory.max"),
    })
    // A process joins the leaf; cgroup.kill ends it; destroy removes the leaf and leaves the levels above.
    const c = busy()
    await m.run((cg) => cg.join(paths, c.pid!))
    expect(fs.readFileSync(`/proc/${c.pid}/cgroup`, "utf8").trim()).toBe(`0::${dir.slice(UNIFIED.length)}`)
    expect(await m.run((cg) => cg.killAll!(paths))).toBe(true)
    expect(await exited(c)).toBe("SIGKILL")
    for (let i = 0; i < 100 && /populated 1/.test(fs.readFileSync(path.join(dir, "cgroup.events"), "utf8")); i++) await sleep(10)
    await m.run((cg) => cg.destroy(paths))
    expect(fs.existsSync(dir)).toBe(false)
    expect(fs.existsSync(path.join(m.root, "outer/inner"))).toBe(true)
  })

  it("reports OOM kills through memory.events and counts them in stats", async () => {
    const { run, stats, paths, dir } = await containerCgroup()
    await run((cg) => cg.apply(paths, { memory: { limit: 16 << 20, swap: 16 << 20 } }, { devices: false }))
    // The shell joins first, then holds a 100 MB string: the OOM killer ends it.
    const hog = spawnSync("/bin/sh", ["-c", `echo $$ > ${dir}/cgroup.procs; x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived`], { encoding: "utf8" })
    expect(hog.signal).toBe("SIGKILL")
    expect(hog.stdout).toBe("")
    expect(fs.readFileSync(path.join(dir, "memory.events"), "utf8")).toMatch(/^oom_kill [1-9]/m)
    const s = await stats(paths)
    expect(s.memory?.usage.limit).toBe(16 << 20)
  })

  it("threaded cgroups by name: levels inside a threaded subtree are made threaded; they take cpu and pids, memory is refused naming the type", async () => {
    const m = manager()
    // tp is made a threaded subtree's root ("domain threaded") by its threaded child t.
    const tp = path.join(m.root, "tp")
    fs.mkdirSync(path.join(tp, "t"), { recursive: true })
    fs.writeFileSync(path.join(tp, "t", "cgroup.type"), "threaded")
    expect(fs.readFileSync(path.join(tp, "cgroup.type"), "utf8").trim()).toBe("domain threaded")
    // A new cgroup there is "domain invalid" (no process could join it) until made threaded, which create does.
    const ok: CgroupPaths = await m.run((c) => c.paths("/tp/box/leaf", "x"))
    const dir = Object.values(ok)[0]!
    await m.run((c) => c.create(ok))
    for (const d of [path.join(tp, "box"), dir]) expect(fs.readFileSync(path.join(d, "cgroup.type"), "utf8").trim()).toBe("threaded")
    const refused = await m.run((c) => Effect.flip(c.apply(ok, { memory: { limit: 64 << 20 }, pids: { limit: 5 } }, { devices: false })))
    expect(refused).toMatchObject({ _tag: "CgroupError", op: "apply", path: dir })
    expect(refused.reason).toMatch(/"threaded".*memory\.max/)
    await m.run((c) => c.apply(ok, { pids: { limit: 5 }, cpu: { shares: 512 } }, { devices: false }))
    expect(fs.readFileSync(path.join(dir, "pids.max"), "utf8").trim()).toBe("5")
    expect(fs.readFileSync(path.join(dir, "cpu.weight"), "utf8").trim()).toBe("59")
    // A whole process joins a threaded cgroup (its resource domain is tp).
    const c = busy()
    await m.run((cg) => cg.join(ok, c.pid!))
    expect(await m.run((cg) => cg.pids(ok))).toEqual([c.pid])
    c.kill("SIGKILL")
    await exited(c)
    for (let i = 0; i < 100 && /populated 1/.test(fs.readFileSync(path.join(dir, "cgroup.events"), "utf8")); i++) await sleep(10)
    await m.run((c) => c.destroy(ok))
  })
})
