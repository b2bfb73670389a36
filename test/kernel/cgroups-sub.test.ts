/**
 * Through the library, on the real kernel: exec's `subCgroups` (runc's exec --cgroup) and the console
 * socket's bound (`consoleSocketTimeoutMs`), each refusal typed and naming what it is about.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { create, dispose, run } from "../../promise.ts"
import { bundle, capture, cgroupDirOf, cgroupLayout, expectNoTrace, skipReason, stateRoot, stuckListener, uniq } from "./harness.ts"

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
    const { sock, stop } = await stuckListener()
    try {
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
      stop()
    }
  }, 60_000)
})
