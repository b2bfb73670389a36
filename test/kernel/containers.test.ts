/**
 * Real containers on the real kernel, through the Promise facade: isolation,
 * what the config asks for, exit codes and signals, and no trace left behind.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { create, dispose, load, run } from "../../promise.ts"
import { bundle, capture, expectNoTrace, runToEnd as runToEndIn, skipReason, stateRoot, uniq, withUserNs } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(async () => {
  await dispose()
})

const runToEnd = (args: string[], mutate?: Parameters<typeof bundle>[1]) => runToEndIn(root, args, mutate)

describe.skipIf(skipReason)("a container on the real kernel", () => {
  it("runs its program as PID 1 with the configured hostname", async () => {
    const r = await runToEnd(["sh", "-c", "echo pid=$$; hostname"], (s) => ({ ...s, hostname: "box-1" }))
    expect(r.out).toBe("pid=1\nbox-1\n")
    expect(r.status).toEqual({ code: 0, signal: null })
    expect(expectNoTrace(root, r.id)).toEqual([])
  })

  it("has exactly the configured capabilities and an empty inheritable set", async () => {
    const r = await runToEnd(["sh", "-c", "grep ^Cap /proc/self/status"])
    // CAP_KILL(5) | CAP_NET_BIND_SERVICE(10) | CAP_AUDIT_WRITE(29) = 0x20000420
    expect(r.out).toContain("CapEff:\t0000000020000420")
    expect(r.out).toContain("CapPrm:\t0000000020000420")
    expect(r.out).toContain("CapBnd:\t0000000020000420")
    expect(r.out).toContain("CapInh:\t0000000000000000")
  })

  it("sets no_new_privs when asked", async () => {
    const on = await runToEnd(["grep", "NoNewPrivs", "/proc/self/status"])
    expect(on.out).toMatch(/NoNewPrivs:\s+1/)
    const off = await runToEnd(["grep", "NoNewPrivs", "/proc/self/status"], (s) => ({ ...s, process: { ...s.process!, noNewPrivileges: false } }))
    expect(off.out).toMatch(/NoNewPrivs:\s+0/)
  })

  it("masks masked paths and makes readonly paths read-only", async () => {
    // /proc/kcore does not exist on this kernel: /proc/timer_list and /proc/keys are masked instead.
    const r = await runToEnd(["sh", "-c", "wc -c < /proc/timer_list; cat /proc/keys | wc -c; echo 1 > /proc/sys/kernel/domainname && echo wrote || echo refused"])
    expect(r.out).toBe("0\n0\nrefused\n")
    expect(r.err).toMatch(/Read-only file system/)
  })

  it("keeps the rootfs read-only when root.readonly is set", async () => {
    const r = await runToEnd(["sh", "-c", "touch /x 2>/dev/null && echo wrote || echo refused; touch /dev/shm/ok && echo tmpfs-ok"])
    expect(r.out).toBe("refused\ntmpfs-ok\n")
  })

  it("maps ids in a new user namespace", async () => {
    const r = await runToEnd(["sh", "-c", "id -u; cat /proc/self/uid_map"], withUserNs(200000))
    expect(r.err).toBe("")
    expect(r.out.split("\n")[0]).toBe("0")
    expect(r.out).toMatch(/^\s*0\s+200000\s+65536$/m)
    expect(r.status).toEqual({ code: 0, signal: null })
  })

  it("runs as the configured user with its additional groups", async () => {
    const r = await runToEnd(["sh", "-c", "id -u; id -g; id -G; echo $HOME"], (s) => ({
      ...s,
      process: { ...s.process!, user: { uid: 65534, gid: 65534, additionalGids: [7, 8] } },
    }))
    expect(r.out).toBe("65534\n65534\n65534 7 8\n/nonexistent\n")
  })

  it("passes the exit code through", async () => {
    const r = await runToEnd(["sh", "-c", "exit 42"])
    expect(r.status).toEqual({ code: 42, signal: null })
  })

  it("delivers signals through the pidfd and reports the killing signal", async () => {
    const b = bundle(["sh", "-c", "trap 'exit 7' USR1; echo ready; while :; do sleep 0.05; done"])
    const io = capture()
    const id = uniq("sig")
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    for (let i = 0; i < 100 && !io.out().includes("ready"); i++) await new Promise((r) => setTimeout(r, 20))
    await c.signal("USR1")
    expect(await c.wait()).toEqual({ code: 7, signal: null })
    await c.destroy()

    const c2 = await run({ root, id: `${id}-2`, bundle: b.dir, stdio: io.stdio })
    await c2.signal(9)
    expect(await c2.wait()).toEqual({ code: null, signal: 9 })
    await c2.destroy()
    io.close()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("is created, then started by a second handle loaded from the state dir", async () => {
    const b = bundle(["sh", "-c", "echo started"])
    const io = capture()
    const id = uniq("split")
    const c = await create({ root, id, bundle: b.dir, stdio: io.stdio })
    expect(c.status()).toBe("created")
    expect(c.state()).toMatchObject({ id, status: "created", pid: c.pid })
    await new Promise((r) => setTimeout(r, 100))
    expect(io.out()).toBe("")
    const other = await load({ root, id })
    expect(other.status()).toBe("created")
    await other.start()
    await c.wait()
    expect(io.out()).toBe("started\n")
    await other.release()
    const again = await load({ root, id })
    expect(again.status()).toBe("stopped")
    await again.destroy()
    io.close()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("refuses operations the state forbids, and they change nothing", async () => {
    const b = bundle(["sleep", "30"])
    const id = uniq("forbid")
    const c = await run({ root, id, bundle: b.dir })
    await expect(c.start()).rejects.toMatchObject({ _tag: "InvalidTransition", from: "running" })
    await expect(c.destroy()).rejects.toMatchObject({ _tag: "InvalidTransition" })
    expect(c.status()).toBe("running")
    expect(await c.processes()).toContain(c.pid)
    await c.destroy({ force: true })
    expect(c.status()).toBe("destroyed")
    await expect(c.signal(15)).rejects.toMatchObject({ _tag: "InvalidTransition", from: "destroyed" })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("joins its own cgroup in every hierarchy and removes it on delete", async () => {
    const b = bundle(["sh", "-c", "cat /proc/self/cgroup"])
    const io = capture()
    const id = uniq("cg")
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await c.wait()
    const lines = io.out().trim().split("\n")
    // One line per hierarchy, and the cgroup namespace is rooted at the container's own cgroup: "/" everywhere.
    expect(lines.length).toBe(fs.readFileSync("/proc/self/cgroup", "utf8").trim().split("\n").length)
    for (const l of lines) expect(l).toMatch(/:\/$/)
    await c.destroy()
    io.close()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("names the step that failed and leaves nothing behind: missing program", async () => {
    const b = bundle(["/bin/does-not-exist"])
    const id = uniq("bad")
    await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({
      _tag: "InitFailed",
      errno: "ENOENT",
      path: expect.stringContaining("does-not-exist"),
    })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("names the field of an invalid config and leaves nothing behind", async () => {
    const id = uniq("inval")
    const cases: Array<[Parameters<typeof bundle>[1], string]> = [
      [(s) => ({ ...s, mounts: [{ destination: "relative/path", type: "tmpfs", source: "tmpfs" }] }), "mounts[0].destination"],
      [(s) => ({ ...s, linux: { ...s.linux, namespaces: [{ type: "bogus" as "pid" }] } }), "linux.namespaces[0].type"],
      [(s) => ({ ...s, process: { ...s.process!, args: "sh" as unknown as string[] } }), "process.args"],
      [(s) => ({ ...s, root: { path: "/nonexistent/rootfs" } }), "root.path"],
    ]
    for (const [mutate, field] of cases) {
      const b = bundle(["true"], mutate)
      await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "ConfigError", path: field })
      expect(expectNoTrace(root, id)).toEqual([])
    }
    for (const bad of ["../x", "a/b", "", ".."])
      await expect(create({ root, id: bad, bundle: bundle(["true"]).dir })).rejects.toMatchObject({ _tag: "ConfigError", path: "id" })
  })

  it("refuses a duplicate id without touching the existing container", async () => {
    const b = bundle(["sleep", "30"])
    const id = uniq("dup")
    const c = await create({ root, id, bundle: b.dir })
    await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "ContainerExists" })
    expect((await load({ root, id })).status()).toBe("created")
    expect(fs.existsSync(path.join(root, id, "state.json"))).toBe(true)
    await c.destroy()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it('stdio: "pipe" gives the init\'s stdin as a Writable and its stdout/stderr as Readables', async () => {
    const id = uniq("pipe")
    const c = await run({ root, id, bundle: bundle(["sh", "-c", "tr a-z A-Z; echo oops >&2"]).dir, stdio: "pipe" })
    const read = (s: NodeJS.ReadableStream | undefined) =>
      new Promise<string>((resolve, reject) => {
        let text = ""
        s?.setEncoding("utf8")
        s?.on("data", (d: string) => (text += d))
        s?.on("end", () => resolve(text))
        s?.on("error", reject)
      })
    const [out, err] = [read(c.stdout), read(c.stderr)]
    c.stdin?.end("hello through a pipe\n")
    expect(await c.wait()).toEqual({ code: 0, signal: null })
    expect(await out).toBe("HELLO THROUGH A PIPE\n")
    expect(await err).toBe("oops\n")
    await c.destroy()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("emits typed state events and feeds an inspect observer", async () => {
    const inspected: string[] = []
    // Long enough to be seen running: a /bin/true may exit before start settles (then starting>stopped).
    const b = bundle(["sleep", "0.2"])
    const id = uniq("ev")
    const c = await create({ root, id, bundle: b.dir, inspect: (e) => inspected.push(e.type) })
    const seen: string[] = []
    c.subscribe((e) => seen.push(`${e.from}>${e.to}`))
    await c.start()
    await c.wait()
    await c.destroy()
    expect(seen).toEqual(["created>created", "created>starting", "starting>running", "running>stopped", "stopped>destroying", "destroying>destroyed"])
    expect(inspected).toContain("@xstate.snapshot")
  })
})
