/**
 * OOM notifications on the real kernel (v1 memory.oom_control + cgroup.event_control here): a
 * process allocating past a small memory limit is killed by the OOM killer, and the kill reaches
 * the library's onOom listener and `xcontainer events` as runc's {"type":"oom","id":…} line.
 */
import { execFileSync, spawn } from "node:child_process"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Spec } from "../../config/spec.ts"
import { create, dispose } from "../../promise.ts"
import type { OomEvent } from "../../machines/container.ts"
import { bundle, capture, expectNoTrace, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

const BIN = path.resolve(import.meta.dirname, "..", "..", "bin", "xcontainer")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// 32 MB of memory (and of memory+swap: no escape to swap) against a 200 MB string held by a shell.
const limited = (s: Spec): Spec => ({ ...s, linux: { ...s.linux, resources: { memory: { limit: 32 << 20, swap: 32 << 20 } } } })
const HOG = "x=$(head -c 200000000 /dev/zero | tr '\\0' x)"

describe.skipIf(skipReason)("OOM notifications on the real kernel", () => {
  // The CLI bundle and its start-up snapshot: slow on a loaded machine.
  beforeAll(() => {
    execFileSync("node", [path.resolve(import.meta.dirname, "..", "..", "cli", "bundle.mjs")], { cwd: path.resolve(import.meta.dirname, "..", "..") })
  }, 180_000)

  it("reports the OOM kill of the init, even when its exit is seen first", async () => {
    const id = uniq("oomev")
    const io = capture()
    const c = await create({ root, id, bundle: bundle(["sh", "-c", `${HOG}; echo survived`], limited).dir, stdio: io.stdio })
    const events: OomEvent[] = []
    const stop = await c.onOom((e) => events.push(e))
    await c.start()
    expect(await c.wait()).toEqual({ code: null, signal: 9 })
    expect(io.out()).toBe("")
    expect(events.length).toBeGreaterThanOrEqual(1)
    expect(events[0]).toMatchObject({ type: "oom", id })
    stop()
    await c.destroy()
    io.close()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("reports a kill inside a container that goes on running, as it happens", async () => {
    const id = uniq("oomlive")
    const io = capture()
    const c = await create({ root, id, bundle: bundle(["sh", "-c", `(${HOG}); echo after; sleep 30`], limited).dir, stdio: io.stdio })
    const events: OomEvent[] = []
    const stop = await c.onOom((e) => events.push(e))
    await c.start()
    for (let i = 0; i < 200 && events.length === 0; i++) await sleep(50)
    expect(events.length).toBeGreaterThanOrEqual(1)
    expect(c.status()).toBe("running")
    for (let i = 0; i < 100 && !io.out().includes("after"); i++) await sleep(50)
    expect(io.out()).toBe("after\n")
    stop()
    // No listener after the unsubscribe, and nothing left open that keeps the cgroup busy.
    await c.destroy({ force: true })
    io.close()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("xcontainer events prints runc's oom line, then ends when the container stops", async () => {
    const id = uniq("oomcli")
    const b = bundle(["sh", "-c", `sleep 1; (${HOG}); sleep 1`], limited)
    const started = spawn(BIN, ["--root", root, "run", "-d", "-b", b.dir, id], { stdio: "ignore" })
    expect(await new Promise((r) => started.on("exit", r))).toBe(0)
    const ev = spawn(BIN, ["--root", root, "events", "--interval", "60s", id], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    ev.stdout.on("data", (d: Buffer) => (out += d.toString()))
    const code = await new Promise((r) => ev.on("exit", r))
    expect(code).toBe(0)
    const lines = out.trim().split("\n").map((l) => JSON.parse(l) as { type: string })
    // The first stats line comes at once; the kill follows, exactly as runc encodes it (no data field).
    expect(lines.filter((l) => l.type === "oom")[0]).toEqual({ type: "oom", id })
    expect(out).toContain(`{"type":"oom","id":"${id}"}\n`)
    const del = spawn(BIN, ["--root", root, "delete", "-f", id], { stdio: "ignore" })
    expect(await new Promise((r) => del.on("exit", r))).toBe(0)
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("refuses events for a stopped container", async () => {
    const id = uniq("oomstop")
    const c = await create({ root, id, bundle: bundle(["true"]).dir })
    await c.start()
    await c.wait()
    const ev = spawn(BIN, ["--root", root, "events", id], { stdio: ["ignore", "pipe", "pipe"] })
    let err = ""
    ev.stderr.on("data", (d: Buffer) => (err += d.toString()))
    expect(await new Promise((r) => ev.on("exit", r))).toBe(1)
    expect(err).toMatch(/stopped/)
    await c.destroy()
  })
})
