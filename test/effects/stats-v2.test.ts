/** v2 stats in v1's shape: the parsers, and readStats through the v2 manager over a fake tree. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { CgroupsV2 } from "../../effects/cgroups-v2.ts"
import { readStats } from "../../effects/stats.ts"
import { cpuFromV2, ioFromV2 } from "../../effects/stats-v2.ts"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xc-stats2-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe("cgroup v2 stats", () => {
  it("maps cpu.stat to nanoseconds and io.stat to v1's tables", () => {
    expect(cpuFromV2("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n")).toEqual({
      usage: { total: 1_500_000, percpu: [], kernel: 500_000, user: 1_000_000 },
      throttling: { periods: 7, throttledPeriods: 2, throttledTime: 30_000 },
    })
    expect(ioFromV2("8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n")).toEqual({
      ioServiceBytesRecursive: [
        { major: 8, minor: 0, op: "Read", value: 4096 },
        { major: 8, minor: 0, op: "Write", value: 0 },
      ],
      ioServicedRecursive: [
        { major: 8, minor: 0, op: "Read", value: 1 },
        { major: 8, minor: 0, op: "Write", value: 0 },
      ],
    })
  })

  it("readStats gives the same typed shape from a v2 cgroup's files", async () => {
    const mount = path.join(tmp, "cg2")
    const dir = path.join(mount, "box")
    fs.mkdirSync(dir, { recursive: true })
    const files: Record<string, string> = {
      "cpu.stat": "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
      "memory.current": "8192\n",
      "memory.peak": "16384\n",
      "memory.max": "max\n",
      "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
      "memory.stat": "anon 4096\nfile 4096\n",
      "pids.current": "2\n",
      "pids.max": "64\n",
    }
    for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), v)
    const mountinfo = path.join(tmp, "mountinfo")
    fs.writeFileSync(mountinfo, `30 22 0:26 / ${mount} rw - cgroup2 cgroup2 rw\n`)
    const cgroup = path.join(tmp, "cgroup")
    fs.writeFileSync(cgroup, "0::/\n")
    const stats = await Effect.runPromise(Effect.provide(readStats({ [mount]: dir }, undefined), CgroupsV2({ mountinfo, procSelfCgroup: cgroup })))
    expect(stats).toEqual({
      cpu: { usage: { total: 10_000, percpu: [], kernel: 4000, user: 6000 }, throttling: { periods: 0, throttledPeriods: 0, throttledTime: 0 } },
      memory: { usage: { usage: 8192, max: 16384, limit: Number.MAX_SAFE_INTEGER, failcnt: 3 }, cache: 4096, rss: 4096, raw: { anon: 4096, file: 4096 } },
      pids: { current: 2, limit: 64 },
      network: [],
    })
  })
})
