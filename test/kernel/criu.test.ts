/**
 * Checkpoint and restore on the real kernel with CRIU 4.1.1 (/usr/local/sbin/criu,
 * installed by .ci/setup through ../shared/deps/criu/install.sh).
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Result } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { create, dispose, load, restore, run } from "../../promise.ts"
import type { Spec } from "../../config/spec.ts"
import { pipes } from "./pipes.ts"
import { COUNTER, counter, criuSkip, images, restoreOntoNewSource, sleep, withCriu } from "./criu-fixtures.ts"
import { bundle, expectNoTrace, stateRoot, WORK, uniq } from "./harness.ts"

const skipReason = criuSkip
if (skipReason) console.warn(`SKIPPING CRIU tests: ${skipReason}`)

describe.skipIf(skipReason)("the Criu service", () => {
  it("finds CRIU >= 4.1 and asks its version over swrk", async () => {
    const v = await withCriu((c) => c.check)
    expect(v.version).toBeGreaterThanOrEqual(40100)
    expect(v.text).toMatch(/^4\./)
  })

  it("a failing restore says why: the error lines of restore.log with their context", async () => {
    const images = path.join(WORK, uniq("empty-images"))
    fs.mkdirSync(images, { recursive: true })
    const r = await withCriu((c) => Effect.result(c.restore({ imagePath: images, root: "/" })))
    expect(Result.isFailure(r)).toBe(true)
    const e = Result.getFailure(r).pipe((o) => (o._tag === "Some" ? o.value : undefined))
    expect(e).toMatchObject({ _tag: "CriuFailed", action: "restore", logFile: path.join(images, "restore.log") })
    expect(e?.message).toContain("Error (criu/")
    expect(e?.message).toMatch(/inventory|empty-image/)
    // Context: the lines before the error are quoted too, numbered.
    expect((e as { log?: string }).log?.split("\n").length).toBeGreaterThan(3)
    fs.rmSync(images, { recursive: true, force: true })
  })

  it("a missing image directory is a typed error naming it, before CRIU runs", async () => {
    const images = path.join(WORK, uniq("no-images"))
    const r = await withCriu((c) => Effect.result(c.restore({ imagePath: images, root: "/" })))
    expect(Result.getFailure(r).pipe((o) => (o._tag === "Some" ? o.value : undefined))).toMatchObject({ _tag: "SyscallError", syscall: "open", errno: "ENOENT", path: images })
  })

  it("CriuMissing names what was found and how to install CRIU", async () => {
    const saved = process.env["XCONTAINER_CRIU"]
    process.env["XCONTAINER_CRIU"] = "/bin/true"
    try {
      const r = await withCriu((c) => Effect.result(c.check))
      const e = Result.getFailure(r).pipe((o) => (o._tag === "Some" ? o.value : undefined))
      expect(e).toMatchObject({ _tag: "CriuMissing", install: "bash ../shared/deps/criu/install.sh" })
      expect((e as { found?: string } | undefined)?.found).toContain("/bin/true")
    } finally {
      if (saved === undefined) delete process.env["XCONTAINER_CRIU"]
      else process.env["XCONTAINER_CRIU"] = saved
    }
  })
})

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())


describe.skipIf(skipReason)("checkpoint and restore of a container", () => {
  it("a checkpointed counter is restored under the same id and counts on from its value", async () => {
    const id = uniq("cr")
    const io = await pipes()
    const b = bundle(COUNTER)
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await sleep(500)
    const imagePath = images()
    const before = counter(c.pid!)
    await c.checkpoint({ imagePath })
    expect(c.status()).toBe("checkpointed")
    expect(c.state().status).toBe("stopped")
    expect(JSON.parse(fs.readFileSync(path.join(root, id, "state.json"), "utf8")).checkpoint.imagePath).toBe(imagePath)
    expect(fs.existsSync(path.join(imagePath, "inventory.img"))).toBe(true)
    // Another process sees it checkpointed too.
    const other = await load({ root, id })
    expect(other.status()).toBe("checkpointed")
    await other.release()
    await c.destroy()
    expect(expectNoTrace(root, id)).toEqual([])

    const r = await restore({ root, id, bundle: b.dir, imagePath, stdio: io.stdio })
    expect(r.status()).toBe("running")
    const first = counter(r.pid!)
    // From where it was (a tick or two passed between our read and the dump), not from 0.
    expect(first).toBeGreaterThanOrEqual(before)
    expect(first).toBeLessThanOrEqual(before + 3)
    // The restored tree sits in the new container's cgroups.
    expect(await r.processes()).toContain(r.pid)
    await sleep(400)
    const later = counter(r.pid!)
    expect(later).toBeGreaterThan(first)
    expect(later).toBeLessThan(first + 10)
    await r.signal(9)
    expect(await r.wait()).toEqual({ code: null, signal: 9 })
    await r.destroy()
    expect(expectNoTrace(root, id)).toEqual([])
    io.close()
  })
})

describe.skipIf(skipReason)("checkpoint and restore: variants and failures", () => {
  it("leaveRunning dumps and keeps the original counting; the images restore under a new id meanwhile", async () => {
    const id = uniq("crl")
    const io = await pipes()
    const b = bundle(COUNTER)
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await sleep(300)
    const imagePath = images()
    await c.checkpoint({ imagePath, leaveRunning: true })
    expect(c.status()).toBe("running")
    const pid = c.pid!
    const v = counter(pid)
    await sleep(300)
    expect(counter(pid)).toBeGreaterThan(v)
    // A second container from the same images while the first runs: its own pid, cgroups and count.
    const id2 = uniq("crl2")
    const io2 = await pipes()
    const r = await restore({ root, id: id2, bundle: b.dir, imagePath, stdio: io2.stdio })
    expect(r.pid).not.toBe(pid)
    expect(await r.processes()).toContain(r.pid)
    expect(await c.processes()).not.toContain(r.pid)
    await r.destroy({ force: true })
    await c.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    expect(expectNoTrace(root, id2)).toEqual([])
    io.close()
    io2.close()
  })

  it("restores under a new id after the checkpointed one was deleted", async () => {
    const id = uniq("cro")
    const io = await pipes()
    const b = bundle(COUNTER)
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await sleep(300)
    const imagePath = images()
    const before = counter(c.pid!)
    await c.checkpoint({ imagePath, workPath: path.join(imagePath, "work") })
    expect(fs.existsSync(path.join(imagePath, "work", "dump.log"))).toBe(true)
    await c.destroy()
    const id2 = uniq("crn")
    // From a config object this time, as create takes one.
    const r = await restore({ root, id: id2, config: b.spec, imagePath, stdio: io.stdio })
    expect(r.status()).toBe("running")
    expect(counter(r.pid!)).toBeGreaterThanOrEqual(before)
    const state = JSON.parse(fs.readFileSync(path.join(root, id2, "state.json"), "utf8"))
    expect(state).toMatchObject({ id: id2, status: "running", init: { pid: r.pid } })
    await r.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    expect(expectNoTrace(root, id2)).toEqual([])
    io.close()
  })

  it("a failing restore gives CriuFailed with restore.log's errors and leaves nothing; a missing image dir names it", async () => {
    const b = bundle(COUNTER)
    const empty = images()
    fs.mkdirSync(empty, { recursive: true })
    const id = uniq("crf")
    const err = await restore({ root, id, bundle: b.dir, imagePath: empty }).catch((e: unknown) => e)
    expect(err).toMatchObject({ _tag: "CriuFailed", action: "restore" })
    expect((err as Error).message).toMatch(/restore\.log[\s\S]*Error \(criu\//)
    expect(expectNoTrace(root, id)).toEqual([])
    const missing = path.join(WORK, uniq("missing"))
    const err2 = await restore({ root, id, bundle: b.dir, imagePath: missing }).catch((e: unknown) => e)
    expect(err2).toMatchObject({ _tag: "SyscallError", errno: "ENOENT", path: missing })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("refuses checkpoint of a container that is not running, touching nothing", async () => {
    const id = uniq("crx")
    const c = await create({ root, id, bundle: bundle(["sleep", "30"]).dir })
    await expect(c.checkpoint({ imagePath: images() })).rejects.toMatchObject({ _tag: "InvalidTransition", from: "created" })
    await c.destroy()
    expect(expectNoTrace(root, id)).toEqual([])
  })
})

describe.skipIf(skipReason)("checkpoint of a paused container", () => {
  it("leaveRunning keeps it paused; a full checkpoint ends it; the restore counts on from the frozen value", async () => {
    const id = uniq("crp")
    const io = await pipes()
    const b = bundle(COUNTER)
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await sleep(300)
    await c.pause()
    const frozenAt = counter(c.pid!)
    const keep = images()
    await c.checkpoint({ imagePath: keep, leaveRunning: true })
    expect(c.status()).toBe("paused")
    await sleep(300)
    expect(counter(c.pid!)).toBe(frozenAt)
    const imagePath = images()
    await c.checkpoint({ imagePath })
    expect(c.status()).toBe("checkpointed")
    await c.destroy()
    expect(expectNoTrace(root, id)).toEqual([])
    const r = await restore({ root, id, bundle: b.dir, imagePath, stdio: io.stdio })
    await sleep(300)
    const v = counter(r.pid!)
    expect(v).toBeGreaterThan(frozenAt)
    expect(v).toBeLessThan(frozenAt + 8)
    await r.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    io.close()
  })
})

describe.skipIf(skipReason)("what a restored process keeps", () => {
  it("an open file (with its offset) and a pipe between two processes survive", async () => {
    const id = uniq("crf")
    const io = await pipes()
    // The left side appends to fd 3 and writes into a pipe that cat copies to another file.
    const b = bundle(["sh", "-c", "exec 3>/dev/shm/log; i=0; while true; do echo $i >&3; echo $i; i=$((i+1)); sleep 0.1; done | cat > /dev/shm/piped"])
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await sleep(500)
    const imagePath = images()
    await c.checkpoint({ imagePath })
    await c.destroy()
    const r = await restore({ root, id: uniq("crf2"), bundle: b.dir, imagePath, stdio: io.stdio })
    await sleep(500)
    const lines = (f: string) => fs.readFileSync(`/proc/${r.pid!}/root/dev/shm/${f}`, "utf8").trim().split("\n").map(Number)
    // Both files count on without a gap or a restart: the offset of fd 3 and the pipe came back.
    for (const f of ["log", "piped"]) {
      const l = lines(f)
      expect(l.length).toBeGreaterThan(8)
      expect(l).toEqual(l.map((_, k) => k))
    }
    await r.destroy({ force: true })
    expect(expectNoTrace(root, r.id)).toEqual([])
    io.close()
  })
})

describe.skipIf(skipReason)("external bind mounts", () => {
  it("a host directory bound into the container is declared external and bound again from the restoring config", async () => {
    const id = uniq("crb")
    const [src1, src2] = [path.join(WORK, uniq("bind")), path.join(WORK, uniq("bind"))]
    fs.mkdirSync(src1, { recursive: true })
    fs.mkdirSync(src2, { recursive: true })
    const withBind = (src: string) => (s: Spec) => ({ ...s, mounts: [...(s.mounts ?? []), { destination: "/data", type: "bind", source: src, options: ["rbind", "rw"] }] })
    const loop = ["sh", "-c", "i=0; while true; do echo $i > /data/c; i=$((i+1)); sleep 0.1; done"]
    // The same program restored over another host directory: it writes there now, counting on.
    await restoreOntoNewSource({
      root, id, src1, src2, first: bundle(loop, withBind(src1)).dir, second: bundle(loop, withBind(src2)).dir,
      afterRestore: (at) => expect(Number(fs.readFileSync(path.join(src1, "c"), "utf8"))).toBe(at),
    })
  })
})

describe.skipIf(skipReason)("stdio outside the container", () => {
  it("the host's /dev/null and a host log file are external to CRIU; a restore's own stdio take their place", async () => {
    const id = uniq("crs")
    const out1 = path.join(WORK, uniq("out"))
    const out2 = path.join(WORK, uniq("out"))
    const nul = fs.openSync("/dev/null", "r")
    // O_APPEND, as log files are: CRIU checks the size of any other regular file it reopens.
    const o1 = fs.openSync(out1, "a")
    const b = bundle(["sh", "-c", "i=0; while true; do echo $i; echo $i > /dev/shm/c; i=$((i+1)); sleep 0.1; done"])
    const c = await run({ root, id, bundle: b.dir, stdio: [nul, o1, o1] })
    await sleep(400)
    const imagePath = images()
    await c.checkpoint({ imagePath })
    await c.destroy()
    const descriptors = JSON.parse(fs.readFileSync(path.join(imagePath, "descriptors.json"), "utf8")) as string[]
    expect(descriptors, descriptors.join(" ")).toEqual([expect.stringMatching(/^file\[/), expect.stringMatching(/^file\[/), expect.stringMatching(/^file\[/)])
    const before = fs.readFileSync(out1, "utf8").trim().split("\n").map(Number)
    const o2 = fs.openSync(out2, "a")
    const r = await restore({ root, id, bundle: b.dir, imagePath, stdio: [nul, o2, o2] })
    await sleep(400)
    const after = fs.readFileSync(out2, "utf8").trim().split("\n").map(Number)
    // It goes on writing, into the new file, from where it was.
    expect(after.length).toBeGreaterThan(1)
    expect(after[0]).toBeGreaterThanOrEqual(before.at(-1)!)
    expect(after[0]).toBeLessThanOrEqual(before.at(-1)! + 2)
    await r.destroy({ force: true })
    // A stdio of another kind (/dev/null for what was a file) is refused by CRIU, and says so.
    const err = await restore({ root, id, bundle: b.dir, imagePath, stdio: [nul, nul, nul] }).catch((e: unknown) => e)
    expect(err).toMatchObject({ _tag: "CriuFailed" })
    expect((err as Error).message).toMatch(/RESTORE failed: .*Error \(criu\/files-reg\.c:\d+\): File fd\/1 has bad mode/)
    expect(expectNoTrace(root, id)).toEqual([])
    for (const fd of [nul, o1, o2]) fs.closeSync(fd)
  })
})

describe.skipIf(skipReason)("a container with a terminal", () => {
  it("is restored with a new pty master (CRIU's orphan-pts-master), kept for console() without a socket", async () => {
    const id = uniq("crt")
    const tty = (s: Spec) => ({ ...s, process: { ...s.process!, terminal: true } })
    const b = bundle(["sh", "-c", "while read l; do echo got:$l; done"], tty)
    const c = await run({ root, id, bundle: b.dir })
    const m1 = c.console()!
    await sleep(200)
    const imagePath = images()
    await c.checkpoint({ imagePath })
    fs.closeSync(m1)
    await c.destroy()
    const r = await restore({ root, id, bundle: b.dir, imagePath })
    const master = r.console()
    expect(master).toBeGreaterThan(2)
    fs.writeSync(master!, "hello\n")
    let out = ""
    const buf = Buffer.alloc(256)
    for (let i = 0; i < 50 && !out.includes("got:hello"); i++) {
      const n = await new Promise<number>((res) => fs.read(master!, buf, 0, buf.length, null, (e, k) => res(e ? -1 : k)))
      if (n <= 0) break
      out += buf.subarray(0, n).toString()
    }
    expect(out).toContain("got:hello")
    await r.destroy({ force: true })
    fs.closeSync(master!)
    expect(expectNoTrace(root, id)).toEqual([])
  })
})

const noIp = fs.existsSync("/usr/sbin/ip") || fs.existsSync("/sbin/ip") ? undefined : "needs ip(8) (iproute2) to make a named network namespace"
describe.skipIf(skipReason ?? noIp)("a joined network namespace", () => {
  it("stays outside the images and the restored tree is put back into it", async () => {
    const ns = uniq("xcns")
    execFileSync("ip", ["netns", "add", ns])
    try {
      const nsPath = `/var/run/netns/${ns}`
      const id = uniq("crn")
      const io = await pipes()
      const joinNet = (s: Spec) => ({
        ...s,
        linux: { ...s.linux, namespaces: (s.linux?.namespaces ?? []).map((n) => (n.type === "network" ? { type: "network" as const, path: nsPath } : n)) },
      })
      const b = bundle(COUNTER, joinNet)
      const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
      const netns = fs.statSync(nsPath).ino
      expect(fs.statSync(`/proc/${c.pid}/ns/net`).ino).toBe(netns)
      await sleep(300)
      const imagePath = images()
      await c.checkpoint({ imagePath })
      await c.destroy()
      const r = await restore({ root, id, bundle: b.dir, imagePath, stdio: io.stdio })
      expect(fs.statSync(`/proc/${r.pid}/ns/net`).ino).toBe(netns)
      const v = counter(r.pid!)
      await sleep(300)
      expect(counter(r.pid!)).toBeGreaterThan(v)
      await r.destroy({ force: true })
      expect(expectNoTrace(root, id)).toEqual([])
      io.close()
    } finally {
      execFileSync("ip", ["netns", "delete", ns])
    }
  })
})

describe.skipIf(skipReason)("hooks on restore", () => {
  it("prestart and createRuntime run at CRIU's setup-namespaces, with the restored init's pid in the state", async () => {
    const id = uniq("crh")
    const io = await pipes()
    const log = path.join(WORK, uniq("hooks"))
    const hook = (name: string) => ({ path: "/bin/sh", args: ["sh", "-c", `cat >> ${log}; echo " ${name}" >> ${log}`] })
    const b = bundle(COUNTER, (s: Spec) => ({ ...s, hooks: { prestart: [hook("prestart")], createRuntime: [hook("createRuntime")] } }))
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await sleep(200)
    const imagePath = images()
    await c.checkpoint({ imagePath })
    await c.destroy()
    fs.rmSync(log, { force: true })
    const r = await restore({ root, id, bundle: b.dir, imagePath, stdio: io.stdio })
    const lines = fs.readFileSync(log, "utf8").trim().split("\n")
    expect(lines.map((l) => l.split(" ").at(-1))).toEqual(["prestart", "createRuntime"])
    const state = JSON.parse(lines[0]!.slice(0, lines[0]!.lastIndexOf("}") + 1)) as { id: string; pid: number; status: string }
    expect(state).toMatchObject({ id, status: "creating" })
    expect(state.pid).toBe(r.pid)
    await r.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    io.close()
  })
})
