/**
 * Containers through the library on a pure cgroup v2 host with systemd (the guest of
 * test/guest/run-suite.sh; skipped, saying so, on the hybrid development host): the live layer picks
 * the v2 manager, places the container beside our own cgroup (ours is a systemd service's), writes
 * every limit into its one directory before the init runs, and the container sees that directory as
 * its /sys/fs/cgroup. Pause/resume through cgroup.freeze, SIGKILL to all through cgroup.kill, OOM
 * kills from memory.events, stats, update, and a nested absolute cgroupsPath.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import type { ResourcesSpec, Spec } from "../../config/spec.ts"
import type { OomEvent } from "../../machines/container.ts"
import { create, dispose, run } from "../../promise.ts"
import { bundle, capture, cgroupDirsNamed, cgroupLayout, expectNoTrace, skipReason, stateRoot, uniq } from "./harness.ts"

const skip = skipReason ?? (cgroupLayout === "v2" ? undefined : `this host's cgroups are ${cgroupLayout}, not pure v2 (test/guest/run-suite.sh runs these in a v2 guest)`)
if (skip && !skipReason) console.warn(`SKIPPING pure cgroup v2 host tests: ${skip}`)

const root = skip ? "" : stateRoot()
const parents: string[] = []
afterAll(async () => {
  await dispose()
  for (const p of parents.reverse()) if (fs.existsSync(p)) fs.rmdirSync(p)
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const withResources = (resources: ResourcesSpec, cgroupsPath?: string) => (s: Spec): Spec => ({ ...s, linux: { ...s.linux, resources, ...(cgroupsPath ? { cgroupsPath } : {}) } })
const dirOf = (id: string) => {
  const dirs = cgroupDirsNamed(id)
  expect(dirs).toHaveLength(1)
  return dirs[0]!
}
const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), "utf8").trim()
const ticks = (pid: number) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return Number(f[11]) + Number(f[12])
}
/** Our own cgroup (a systemd service's in the guest): containers go beside it, under its parent. */
const ownCgroup = () => fs.readFileSync("/proc/self/cgroup", "utf8").trim().split("\n").find((l) => l.startsWith("0::"))!.slice(3)

describe.skipIf(skip)("containers on a pure cgroup v2 host", () => {
  it("writes the limits into one directory beside our cgroup before the init runs; the container sees it as /sys/fs/cgroup", async () => {
    const id = uniq("v2c")
    const io = capture()
    const b = bundle(
      ["sh", "-c", "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max; cat /proc/self/cgroup"],
      withResources({ memory: { limit: 64 << 20, swap: 64 << 20, reservation: 32 << 20 }, cpu: { shares: 512, quota: 25000, period: 50000, cpus: "0" }, pids: { limit: 16 } }),
    )
    const c = await create({ root, id, bundle: b.dir, stdio: io.stdio })
    try {
      const dir = dirOf(id)
      expect(dir).toBe(path.join("/sys/fs/cgroup", path.posix.dirname(ownCgroup()), id))
      expect({
        max: read(dir, "memory.max"),
        swap: read(dir, "memory.swap.max"),
        low: read(dir, "memory.low"),
        weight: read(dir, "cpu.weight"),
        cpuMax: read(dir, "cpu.max"),
        cpus: read(dir, "cpuset.cpus"),
        pids: read(dir, "pids.max"),
        procs: read(dir, "cgroup.procs"),
      }).toEqual({ max: `${64 << 20}`, swap: "0", low: `${32 << 20}`, weight: "59", cpuMax: "25000 50000", cpus: "0", pids: "16", procs: `${c.pid}` })
      await c.start()
      expect(await c.wait()).toEqual({ code: 0, signal: null })
      // Its own directory, bound at /sys/fs/cgroup; in its cgroup namespace it is the root.
      expect(io.out()).toBe(`${64 << 20}\n16\n25000 50000\n0::/\n`)
    } finally {
      await c.destroy({ force: true })
      io.close()
    }
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("pauses through cgroup.freeze (no CPU time), resumes, and SIGKILLs a paused container's every process", async () => {
    const id = uniq("v2f")
    const c = await run({ root, id, bundle: bundle(["sh", "-c", "sleep 60 & while :; do :; done"]).dir })
    const dir = dirOf(id)
    await sleep(200)
    await c.pause()
    expect(c.status()).toBe("paused")
    expect(read(dir, "cgroup.freeze")).toBe("1")
    expect(read(dir, "cgroup.events")).toMatch(/^frozen 1$/m)
    const at = ticks(c.pid!)
    await sleep(500)
    expect(ticks(c.pid!)).toBe(at)
    await c.resume()
    expect(read(dir, "cgroup.events")).toMatch(/^frozen 0$/m)
    await sleep(500)
    expect(ticks(c.pid!)).toBeGreaterThan(at)
    await c.pause()
    expect((await c.processes()).length).toBe(2)
    await c.signal(9, { all: true })
    expect(await c.wait()).toEqual({ code: null, signal: 9 })
    await c.destroy()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("reports an OOM kill from memory.events while the container goes on", async () => {
    const id = uniq("v2o")
    const io = capture()
    const hog = "x=$(head -c 100000000 /dev/zero | tr '\\0' x)"
    const c = await create({ root, id, bundle: bundle(["sh", "-c", `(${hog}); echo after; sleep 60`], withResources({ memory: { limit: 16 << 20, swap: 16 << 20 } })).dir, stdio: io.stdio })
    const events: OomEvent[] = []
    const stop = await c.onOom((e) => events.push(e))
    await c.start()
    for (let i = 0; i < 600 && events.length === 0; i++) await sleep(100)
    expect(events[0]).toMatchObject({ type: "oom", id })
    expect(read(dirOf(id), "memory.events")).toMatch(/^oom_kill [1-9]/m)
    for (let i = 0; i < 300 && !io.out().includes("after"); i++) await sleep(100)
    expect(io.out()).toBe("after\n")
    expect(c.status()).toBe("running")
    stop()
    await c.destroy({ force: true })
    io.close()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("stats and update: counters from the v2 files, limits rewritten live and recorded", async () => {
    const id = uniq("v2u")
    const c = await run({
      root,
      id,
      bundle: bundle(["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 60"], withResources({ memory: { limit: 32 << 20, swap: 48 << 20 }, pids: { limit: 32 } })).dir,
    })
    const dir = dirOf(id)
    await sleep(300)
    const s = await c.stats()
    expect(s.cpu?.usage.total).toBeGreaterThan(0)
    expect(s.memory?.usage.usage).toBeGreaterThan(0)
    expect(s.memory?.usage.limit).toBe(32 << 20)
    expect(s.pids).toEqual({ current: expect.any(Number), limit: 32 })
    // Above the old memory+swap, as runc update would be asked.
    await c.update({ memory: { limit: 256 << 20, swap: 512 << 20 }, pids: { limit: 40 }, cpu: { shares: 2048, quota: 50000, period: 100000 } })
    expect({ max: read(dir, "memory.max"), swap: read(dir, "memory.swap.max"), pids: read(dir, "pids.max"), weight: read(dir, "cpu.weight"), cpu: read(dir, "cpu.max") }).toEqual({
      max: `${256 << 20}`,
      swap: `${256 << 20}`,
      pids: "40",
      weight: "174",
      cpu: "50000 100000",
    })
    expect(JSON.parse(fs.readFileSync(path.join(root, id, "state.json"), "utf8")).spec.linux.resources).toMatchObject({ pids: { limit: 40 }, memory: { limit: 256 << 20 } })
    await expect(c.update({ pids: { limit: -7 } })).rejects.toMatchObject({ _tag: "ConfigError", path: "linux.resources.pids.limit" })
    expect(read(dir, "pids.max")).toBe("40")
    await c.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("a nested absolute cgroupsPath: controllers enabled at each level, only the leaf removed", async () => {
    const id = uniq("v2n")
    const top = `/${uniq("xcg")}`
    parents.push(path.join("/sys/fs/cgroup", top), path.join("/sys/fs/cgroup", top, "inner"))
    const c = await run({ root, id, bundle: bundle(["sleep", "60"], withResources({ memory: { limit: 64 << 20 }, pids: { limit: 8 } }, `${top}/inner/${id}`)).dir })
    const dir = path.join("/sys/fs/cgroup", top, "inner", id)
    expect(read(dir, "cgroup.procs")).toBe(`${c.pid}`)
    expect([read(dir, "memory.max"), read(dir, "pids.max")]).toEqual([`${64 << 20}`, "8"])
    for (const level of [path.join("/sys/fs/cgroup", top), path.join("/sys/fs/cgroup", top, "inner")])
      expect(read(level, "cgroup.subtree_control").split(" ")).toEqual(expect.arrayContaining(["cpu", "memory", "pids"]))
    await c.destroy({ force: true })
    expect(fs.existsSync(dir)).toBe(false)
    expect(fs.existsSync(path.join("/sys/fs/cgroup", top, "inner"))).toBe(true)
    expect(expectNoTrace(root, id)).toEqual([])
  })
})
