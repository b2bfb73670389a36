/**
 * pause/resume on the real kernel (v1 freezer here, cgroup.freeze on pure v2): a frozen busy loop gets no
 * CPU time, another process loading the container sees it paused, and a
 * paused container can still be killed (SIGKILL thaws to deliver) and deleted.
 */
import * as fs from "node:fs"
import { afterAll, describe, expect, it } from "vitest"
import { dispose, load, run } from "../../promise.ts"
import { bundle, cgroupDirOf, cgroupLayout, expectNoTrace, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** utime + stime of `pid` in clock ticks (fields 14 and 15 of /proc/PID/stat). */
function cpuTicks(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return Number(fields[11]) + Number(fields[12])
}

/** v1's freezer.state, or on pure v2 the same word from cgroup.events' "frozen" line. */
const freezerState = (id: string) =>
  cgroupLayout === "v2"
    ? /^frozen 1$/m.test(fs.readFileSync(`${cgroupDirOf(id, "")}/cgroup.events`, "utf8"))
      ? "FROZEN"
      : "THAWED"
    : fs.readFileSync(`${cgroupDirOf(id, "freezer")}/freezer.state`, "utf8").trim()

describe.skipIf(skipReason)("pause and resume on the real kernel", () => {
  it("freezes a busy loop: no CPU time while paused, some again after resume", async () => {
    const id = uniq("frz")
    const c = await run({ root, id, bundle: bundle(["sh", "-c", "while :; do :; done"]).dir })
    await sleep(100)
    await c.pause()
    expect(c.status()).toBe("paused")
    expect(c.state().status).toBe("paused")
    expect(freezerState(id)).toBe("FROZEN")
    const frozenAt = cpuTicks(c.pid!)
    await sleep(300)
    expect(cpuTicks(c.pid!)).toBe(frozenAt)
    // Another process (the CLI's next command) finds it paused from the kernel's word.
    const other = await load({ root, id })
    expect(other.status()).toBe("paused")
    await other.release()
    await c.resume()
    expect(c.status()).toBe("running")
    expect(freezerState(id)).toBe("THAWED")
    await sleep(300)
    expect(cpuTicks(c.pid!)).toBeGreaterThan(frozenAt)
    await c.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("refuses pause when not running and resume when not paused, touching nothing", async () => {
    const id = uniq("frz")
    const c = await run({ root, id, bundle: bundle(["sleep", "30"]).dir })
    await expect(c.resume()).rejects.toMatchObject({ _tag: "InvalidTransition", from: "running" })
    await c.pause()
    await expect(c.pause()).rejects.toMatchObject({ _tag: "InvalidTransition", from: "paused" })
    await expect(c.destroy()).rejects.toMatchObject({ _tag: "InvalidTransition", from: "paused" })
    expect(freezerState(id)).toBe("FROZEN")
    await c.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it.each([false, true])("kills a paused container with SIGKILL (all: %s): the freezer thaws to deliver", async (all) => {
    const id = uniq("frz")
    const c = await run({ root, id, bundle: bundle(["sh", "-c", "sleep 30 & sleep 30"]).dir })
    await c.pause()
    await c.signal(9, { all })
    expect(await c.wait()).toEqual({ code: null, signal: 9 })
    expect(c.status()).toBe("stopped")
    await c.destroy()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("keeps other signals pending while paused; they land on resume", async () => {
    const id = uniq("frz")
    const c = await run({ root, id, bundle: bundle(["sh", "-c", "trap 'exit 3' USR1; while :; do sleep 0.02; done"]).dir })
    await sleep(100)
    await c.pause()
    await c.signal("USR1")
    await sleep(100)
    expect(c.status()).toBe("paused")
    await c.resume()
    expect(await c.wait()).toEqual({ code: 3, signal: null })
    await c.destroy()
    expect(expectNoTrace(root, id)).toEqual([])
  })
})
