/**
 * Through the library, on the real kernel: exec's `subCgroups` (runc's exec --cgroup) and the console
 * socket's bound (`consoleSocketTimeoutMs`), each refusal typed and naming what it is about.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { create, dispose, run } from "../../promise.ts"
import { bundle, capture, cgroupDirOf, cgroupLayout, expectNoTrace, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

const proc = (args: string[]) => ({ args, cwd: "/", user: { uid: 0, gid: 0 }, env: ["PATH=/bin:/usr/bin"] })

describe.skipIf(skipReason)("exec into a sub-cgroup (subCgroups)", () => {
  it("joins an existing sub-cgroup; a missing one or '..' is refused with nothing started", async () => {
    const id = uniq("subcg")
    const c = await run({ root, id, bundle: bundle(["sleep", "30"]).dir })
    try {
      const ctrl = cgroupLayout === "v2" ? "" : "memory"
      const dir = cgroupDirOf(id, "memory")
      fs.mkdirSync(path.join(dir, "sub"))
      const io = capture()
      const p = await c.exec({ process: proc(["sleep", "5"]), stdio: io.stdio, subCgroups: { [ctrl]: "sub" } })
      expect(fs.readFileSync(path.join(dir, "sub", "cgroup.procs"), "utf8").trim()).toBe(`${p.pid}`)
      await p.signal(9)
      await p.wait()
      io.close()
      await expect(c.exec({ process: proc(["true"]), subCgroups: { [ctrl]: "nope" } })).rejects.toMatchObject({
        _tag: "CgroupError",
        op: "join sub-cgroup",
        path: path.join(dir, "nope"),
      })
      await expect(c.exec({ process: proc(["true"]), subCgroups: { [ctrl]: "../x" } })).rejects.toMatchObject({ _tag: "ConfigError", path: "subCgroups" })
    } finally {
      await c.destroy({ force: true })
    }
    expect(expectNoTrace(root, id)).toEqual([])
  }, 60_000)
})

describe.skipIf(skipReason)("the console socket's bound (consoleSocketTimeoutMs)", () => {
  it("fails create with a SyscallError naming the socket when the listener never takes the connection", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-stuck-"))
    const sock = path.join(dir, "console.sock")
    const script = path.join(dir, "listener.mjs")
    // Backlog full, never accepting (its event loop blocked): the connect waits for room that never comes.
    fs.writeFileSync(
      script,
      `import * as net from "node:net"
net.createServer().listen({ path: ${JSON.stringify(sock)}, backlog: 1 })
for (let i = 0; i < 3; i++) net.connect(${JSON.stringify(sock)}).on("error", () => {})
process.stdout.write("ready\\n")
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
`,
    )
    const listener = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] })
    try {
      await new Promise<void>((resolve) => listener.stdout.once("data", () => resolve()))
      const id = uniq("stuckcons")
      const b = bundle(["sleep", "30"], (s) => ({ ...s, process: { ...s.process!, terminal: true } }))
      const t0 = Date.now()
      await expect(create({ root, id, bundle: b.dir, consoleSocket: sock, consoleSocketTimeoutMs: 700 })).rejects.toMatchObject({
        _tag: "SyscallError",
        syscall: "connect to the console socket",
        path: sock,
        errno: expect.stringMatching(/^ETIMEDOUT: no answer within 700 ms/),
      })
      expect(Date.now() - t0).toBeLessThan(8000)
      expect(expectNoTrace(root, id)).toEqual([])
    } finally {
      listener.kill(9)
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
