import { describe, expect, it } from "vitest"
import { blkioEntries, keyValues, netDev } from "../../effects/stats.ts"
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
      cpu: { usage: { total: 1, percpu: [1], kernel: 0, user: 1 }, throttling: { periods: 2, throttledPeriods: 1, throttledTime: 5 } },
      pids: { current: 3, limit: null },
      network: [],
    })
    expect(out).toMatchObject({ cpu: { throttling: { throttled_periods: 1, throttled_time: 5 } }, pids: { current: 3 }, network_interfaces: [] })
    expect(durationMs("5s")).toBe(5000)
    expect(durationMs("250ms")).toBe(250)
    expect(durationMs("5")).toBeUndefined()
  })
})
