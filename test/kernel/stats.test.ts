/** stats() of a real container: its cgroups' counters move with what it does. */
import { afterAll, describe, expect, it } from "vitest"
import { dispose, run } from "../../promise.ts"
import { bundle, cgroupLayout, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

describe.skipIf(skipReason)("stats", () => {
  it("counts cpu, memory and pids of the container, with its limits", async () => {
    const b = bundle(["sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30"], (s) => ({
      ...s,
      linux: { ...s.linux, resources: { ...(s.linux?.resources as object), memory: { limit: 64 * 2 ** 20 }, pids: { limit: 32 } } },
    }))
    const c = await run({ root, id: uniq("st"), bundle: b.dir })
    await new Promise((r) => setTimeout(r, 300))
    const s = await c.stats()
    expect(s.cpu?.usage.total).toBeGreaterThan(1_000_000)
    // v1's cpuacct.usage_percpu; cgroup2's cpu.stat has no per-cpu split (runc's fs2 reports none either).
    if (cgroupLayout === "v2") expect(s.cpu?.usage.percpu).toEqual([])
    else expect(s.cpu?.usage.percpu.length).toBeGreaterThan(0)
    expect(s.memory?.usage.usage).toBeGreaterThan(0)
    expect(s.memory?.usage.limit).toBe(64 * 2 ** 20)
    expect(s.pids).toEqual({ current: expect.any(Number), limit: 32 })
    expect(s.pids!.current).toBeGreaterThanOrEqual(1)
    // A new network namespace: only lo, which is left out.
    expect(s.network).toEqual([])
    await c.destroy({ force: true })
  })
})
