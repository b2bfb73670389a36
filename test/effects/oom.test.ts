/**
 * OOM watching without the kernel's help: the v2 path against a fake memory.events file (inotify
 * sees our writes as it sees cgroupfs's), the addon's eventfd watch signalled by hand, and the
 * choice of source. The real v1 path is test/kernel/oom.test.ts.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { oomKills, oomSource, watchOom } from "../../effects/oom.ts"
import { addon } from "../../native/addon.ts"

const dirs: string[] = []
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "xc-oom-"))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

const until = async (cond: () => boolean, ms = 2000) => {
  for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 5))
  return cond()
}

const events = (oomKill: number) => `low 0\nhigh 0\nmax 7\noom ${oomKill + 1}\noom_kill ${oomKill}\noom_group_kill 0\n`

describe("OOM sources", () => {
  it("reads the oom_kill counter of memory.events", () => {
    expect(oomKills(events(3))).toBe(3)
    expect(oomKills("low 0\n")).toBe(0)
  })

  it("prefers v1's memory.oom_control with cgroup.event_control, else memory.events, else none", () => {
    const v1 = tmp()
    const v2 = tmp()
    fs.writeFileSync(path.join(v1, "memory.oom_control"), "oom_kill_disable 0\n")
    fs.writeFileSync(path.join(v1, "cgroup.event_control"), "")
    fs.writeFileSync(path.join(v2, "memory.events"), events(0))
    expect(oomSource({ "/a": v2, "/b": v1 })).toEqual({ version: 1, dir: v1 })
    expect(oomSource({ "/a": v2 })).toEqual({ version: 2, dir: v2 })
    expect(oomSource({ "/a": tmp() })).toBeUndefined()
  })

  it("fails with a CgroupError where no memory cgroup reports OOM", async () => {
    const exit = await Effect.runPromise(Effect.result(watchOom({ "/x": tmp() }, () => undefined)))
    expect(exit._tag).toBe("Failure")
    if (exit._tag === "Failure") expect(exit.failure).toMatchObject({ _tag: "CgroupError", reason: expect.stringMatching(/memory\.events/) })
  })
})

describe("OOM on cgroup v2 (a fake memory.events)", () => {
  it("reports the growth of oom_kill as it is written, not what was there before", async () => {
    const dir = tmp()
    const file = path.join(dir, "memory.events")
    fs.writeFileSync(file, events(5))
    const seen: number[] = []
    const w = await Effect.runPromise(watchOom({ "/sys/fs/cgroup/unified": dir }, (n) => seen.push(n)))
    expect(w.source).toBe("memory.events")
    fs.writeFileSync(file, events(7))
    expect(await until(() => seen.length > 0)).toBe(true)
    expect(seen).toEqual([2])
    // Other counters changing are no OOM.
    fs.writeFileSync(file, events(7).replace("max 7", "max 9"))
    await new Promise((r) => setTimeout(r, 50))
    expect(seen).toEqual([2])
    w.close()
    fs.writeFileSync(file, events(9))
    await new Promise((r) => setTimeout(r, 50))
    expect(seen).toEqual([2])
  })

  it("drain reports a kill written but not yet delivered by inotify; close drains too", async () => {
    const dir = tmp()
    const file = path.join(dir, "memory.events")
    fs.writeFileSync(file, events(0))
    const seen: number[] = []
    const w = await Effect.runPromise(watchOom({ "/u": dir }, (n) => seen.push(n)))
    fs.writeFileSync(file, events(1))
    expect(w.drain()).toBe(1) // synchronously, before the loop turns
    expect(w.drain()).toBe(0)
    fs.writeFileSync(file, events(4))
    w.close()
    expect(seen).toEqual([1, 3])
  })

  it("ends quietly when the cgroup goes away", async () => {
    const dir = tmp()
    fs.writeFileSync(path.join(dir, "memory.events"), events(0))
    const seen: number[] = []
    const w = await Effect.runPromise(watchOom({ "/u": dir }, (n) => seen.push(n)))
    fs.rmSync(dir, { recursive: true })
    await new Promise((r) => setTimeout(r, 50))
    expect(w.drain()).toBe(0)
    w.close()
    expect(seen).toEqual([])
  })
})

describe("the addon's eventfd watch", () => {
  const signal = (fd: number, n: number) => {
    const b = Buffer.alloc(8)
    b.writeBigUInt64LE(BigInt(n))
    fs.writeSync(fd, b)
  }

  it("reads and resets the counter on each signal, on the event loop", async () => {
    const fd = addon.eventfd()
    const counts: number[] = []
    const w = addon.watchEventfd(fd, (err, n) => {
      expect(err).toBeNull()
      counts.push(n!)
    })
    signal(fd, 1)
    signal(fd, 2)
    expect(await until(() => counts.length > 0)).toBe(true)
    expect(counts).toEqual([3])
    signal(fd, 1)
    expect(await until(() => counts.length > 1)).toBe(true)
    expect(counts).toEqual([3, 1])
    w.close()
    signal(fd, 4)
    expect(addon.readEventfd(fd)).toBe(4)
    expect(addon.readEventfd(fd)).toBe(0) // non-blocking: nothing pending
    fs.closeSync(fd)
  })
})
