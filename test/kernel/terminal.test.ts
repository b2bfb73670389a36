/** process.terminal: a pty from the container's devpts, its master with us or sent to a console socket. */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { create, dispose, run } from "../../promise.ts"
import { bundle, expectNoTrace, skipReason, stateRoot, uniq } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

/** Reads the master until `until` shows up or the process side closes (EIO), at most 5 s. */
async function readAll(fd: number, until?: string): Promise<string> {
  let out = ""
  const buf = Buffer.alloc(4096)
  const deadline = Date.now() + 5000
  while (Date.now() < deadline && !(until && out.includes(until))) {
    const n = await new Promise<number>((resolve) => fs.read(fd, buf, 0, buf.length, null, (err, bytes) => resolve(err ? -1 : bytes)))
    if (n <= 0) break
    out += buf.subarray(0, n).toString()
  }
  return out
}

const tty = (s: Parameters<NonNullable<Parameters<typeof bundle>[1]>>[0]) => ({ ...s, process: { ...s.process!, terminal: true, consoleSize: { height: 33, width: 101 } } })

describe.skipIf(skipReason)("terminals", () => {
  it("gives the init a pty of the container's devpts as stdio, controlling terminal and /dev/console", async () => {
    const id = uniq("tty")
    const c = await run({ root, id, bundle: bundle(["sh", "-c", "tty; stty size; test -t 0 && echo interactive; stat -c '%t' /dev/console"], tty).dir })
    const master = c.console()
    expect(master).toBeGreaterThan(2)
    const out = (await readAll(master!)).replaceAll("\r", "")
    expect(out).toBe("/dev/pts/0\n33 101\ninteractive\n88\n")
    expect(await c.wait()).toEqual({ code: 0, signal: null })
    fs.closeSync(master!)
    await c.destroy()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("takes input through the master and resizes", async () => {
    const c = await run({ root, id: uniq("tin"), bundle: bundle(["sh", "-c", "read line; echo got:$line; stty size"], tty).dir })
    const master = c.console()!
    await c.resize(40, 120)
    fs.writeSync(master, "hello\n")
    const out = (await readAll(master, "120")).replaceAll("\r", "")
    expect(out).toContain("got:hello")
    expect(out).toContain("40 120")
    await c.wait()
    fs.closeSync(master)
    await c.destroy()
  })

  it("sends the master to a console socket, as runc's --console-socket", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-console-"))
    const sock = path.join(dir, "console.sock")
    // A receiver that takes the fd (SCM_RIGHTS), reads what the container prints, and reports it.
    const receiver = spawn("python3", [
      "-c",
      `import socket,os,sys
s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); print("ready",flush=True)
c,_=s.accept(); name,fds,_,_=socket.recv_fds(c,1024,1); out=b""
while True:
  try: d=os.read(fds[0],4096)
  except OSError: break
  if not d: break
  out+=d
print(name.decode(), out.decode().replace("\\r",""), flush=True)`,
      sock,
    ])
    let got = ""
    receiver.stdout.on("data", (d: Buffer) => (got += d.toString()))
    for (let i = 0; i < 100 && !got.includes("ready"); i++) await new Promise((r) => setTimeout(r, 20))
    const c = await create({ root, id: uniq("tcs"), bundle: bundle(["sh", "-c", "echo on-the-socket"], tty).dir, consoleSocket: sock })
    expect(c.console()).toBeUndefined()
    await c.start()
    await c.wait()
    await new Promise((r) => receiver.on("exit", r))
    expect(got).toContain("/dev/ptmx on-the-socket")
    await c.destroy()
  })

  it("gives an exec'd process its own terminal", async () => {
    const c = await run({ root, id: uniq("tex"), bundle: bundle(["sleep", "30"]).dir })
    const p = await c.exec({ process: { args: ["sh", "-c", "tty; test -t 1 && echo yes"], cwd: "/", user: { uid: 0, gid: 0 }, terminal: true, env: ["PATH=/bin"] } })
    expect(p.console).toBeGreaterThan(2)
    const out = (await readAll(p.console!)).replaceAll("\r", "")
    expect(out).toMatch(/^\/dev\/pts\/\d+\nyes\n$/)
    await p.wait()
    fs.closeSync(p.console!)
    await c.destroy({ force: true })
  })
})
