import { describe, expect, it } from "vitest"
import { blkioEntries, cpuList, keyValues, netDev } from "../../effects/stats.ts"
import { goJson } from "../../cli/go-json.ts"
import { durationMs, runcStats } from "../../cli/events-command.ts"

describe("stats parsing", () => {
  it("reads key/value files, blkio lines and /proc/net/dev", () => {
    expect(keyValues("user 12\nsystem 3\n")).toEqual({ user: 12, system: 3 })
    expect(blkioEntries("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n")).toEqual([
      { major: 8, minor: 0, op: "Read", value: 4096 },
      { major: 8, minor: 0, op: "Write", value: 0 },
    ])
    const dev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1000      10    1    2    0     0          0         0     2000      20    3    4    0     0       0          0
`
    expect(netDev(dev)).toEqual([{ name: "eth0", rxBytes: 1000, rxPackets: 10, rxErrors: 1, rxDropped: 2, txBytes: 2000, txPackets: 20, txErrors: 3, txDropped: 4 }])
  })

  it("prints runc's field names and reads runc's durations", () => {
    const out = runcStats({
      cpu: { usage: { total: 1, percpu: [1], kernel: 0, user: 1 }, throttling: { periods: 2, throttledPeriods: 1, throttledTime: 0 } },
      pids: { current: 3, limit: null },
      network: [],
    })
    // runc's types.Stats: throttledPeriods (camel case), zero omitempty fields left out, every part present.
    expect(out).toMatchObject({ cpu: { throttling: { periods: 2, throttledPeriods: 1, throttledTime: undefined } }, pids: { current: 3, limit: undefined }, network_interfaces: null })
    expect(Object.keys(out)).toEqual(["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"])
    expect(goJson(out)).toMatch(/"memory":\{"usage":\{"limit":0,"failcnt":0\},"swap":/)
    expect(goJson({ limit: 2 ** 63 - 4096, f: 0.5, s: "a\"b", a: [1, null] })).toBe('{"limit":9223372036854771712,"f":0.5,"s":"a\\"b","a":[1,null]}')
    expect(cpuList("0-2,5")).toEqual([0, 1, 2, 5])
    expect(durationMs("5s")).toBe(5000)
    expect(durationMs("250ms")).toBe(250)
    expect(durationMs("5")).toBeUndefined()
  })
})
