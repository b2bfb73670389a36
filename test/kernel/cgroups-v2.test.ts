/**
 * The cgroup v2 manager on the real kernel. This host is hybrid: cgroup2 is at
 * /sys/fs/cgroup/unified with no controller enabled for children, but the core
 * v2 features need none: cgroup.procs, cgroup.freeze + cgroup.events,
 * cgroup.kill and eBPF device programs. The manager is given a mountinfo that
 * puts "its" cgroup2 mount at a fresh subtree of the real one, so nothing
 * outside that subtree is touched.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { Cgroups, type CgroupPaths } from "../../effects/cgroups.ts"
import { CgroupsV2 } from "../../effects/cgroups-v2.ts"
import { readStats } from "../../effects/stats.ts"
import { isRoot, uniq, WORK } from "./harness.ts"

const UNIFIED = "/sys/fs/cgroup/unified"
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
  for (const r of roots)
    for (const d of [...fs.readdirSync(r, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(r, e.name)), r])
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
