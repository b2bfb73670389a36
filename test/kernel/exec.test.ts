/** Processes exec'd into running containers, on the real kernel. */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { dispose, run } from "../../promise.ts"
import { bundle, capture, expectNoTrace, skipReason, stateRoot, uniq, withUserNs } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

const proc = (args: string[], extra: Record<string, unknown> = {}) => ({
  args,
  cwd: "/",
  user: { uid: 0, gid: 0 },
  env: ["PATH=/bin:/usr/bin"],
  ...extra,
})

/** Our zombie children: processes whose parent is us and whose state is Z. */
function zombies(): number[] {
  const out: number[] = []
  for (const p of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, "utf8")
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      if (f[0] === "Z" && Number(f[1]) === process.pid) out.push(Number(p))
    } catch {
      /* gone */
    }
  }
  return out
}

describe.skipIf(skipReason)("exec into a container", () => {
  it("runs in the container's namespaces, as its own process, with its own exit status", async () => {
    const c = await run({ root, id: uniq("ex"), bundle: bundle(["sleep", "30"], (s) => ({ ...s, hostname: "inside" })).dir })
    const io = capture()
    const p = await c.exec({ process: proc(["sh", "-c", "echo $$; hostname; cat /proc/1/cmdline; echo; ls /proc/self/fd | tr '\\n' ' '; exit 5"]), stdio: io.stdio })
    expect(await p.wait()).toEqual({ code: 5, signal: null })
    const [pid, host, initCmd, fds] = io.out().split("\n")
    expect(Number(pid)).toBeGreaterThan(1)
    expect(host).toBe("inside")
    expect(initCmd?.replaceAll("\0", " ").trim()).toBe("sleep 30")
    // CVE-2024-21626: nothing but stdio (and ls's own directory fd).
    expect(fds?.trim()).toBe("0 1 2 3")
    io.close()
    await c.destroy({ force: true })
  })

  it("applies the process's user, cwd, env and capabilities, and joins the container's cgroup", async () => {
    const c = await run({ root, id: uniq("exu"), bundle: bundle(["sleep", "30"]).dir })
    const io = capture()
    const p = await c.exec({
      process: proc(["sh", "-c", "id -u; id -g; pwd; echo $FOO; grep CapEff /proc/self/status; sleep 0.3"], {
        cwd: "/tmp",
        user: { uid: 1000, gid: 1001 },
        env: ["PATH=/bin", "FOO=bar"],
        capabilities: { bounding: ["CAP_KILL"], effective: [], permitted: [] },
      }),
      stdio: io.stdio,
    })
    await new Promise((r) => setTimeout(r, 100))
    expect(await c.processes()).toContain(p.pid)
    await p.wait()
    expect(io.out()).toBe("1000\n1001\n/tmp\nbar\nCapEff:\t0000000000000000\n")
    io.close()
    await c.destroy({ force: true })
  })

  it("with args only, starts from the container's own process (user, cwd, env, caps, noNewPrivileges, rlimits) as runc exec", async () => {
    const b = bundle(["sleep", "30"], (s) => ({
      ...s,
      process: {
        ...s.process!,
        cwd: "/tmp",
        user: { uid: 1000, gid: 1001 },
        env: ["PATH=/bin", "FOO=fromconfig"],
        noNewPrivileges: true,
        rlimits: [{ type: "RLIMIT_NOFILE", hard: 77, soft: 66 }],
      },
    }))
    const c = await run({ root, id: uniq("exd"), bundle: b.dir })
    const script = "id -u; id -g; pwd; echo $FOO $BAR; grep NoNewPrivs /proc/self/status; ulimit -n"
    const io = capture()
    const p = await c.exec({ args: ["sh", "-c", script], stdio: io.stdio })
    expect(await p.wait()).toEqual({ code: 0, signal: null })
    expect(io.out()).toBe("1000\n1001\n/tmp\nfromconfig\nNoNewPrivs:\t1\n66\n")
    io.close()
    // The options change it, as runc's flags do (the CLI builds its process by the same rule).
    const io2 = capture()
    const p2 = await c.exec({ args: ["sh", "-c", script], cwd: "/", env: ["BAR=added"], user: { uid: 2000 }, stdio: io2.stdio })
    expect(await p2.wait()).toEqual({ code: 0, signal: null })
    expect(io2.out()).toBe("2000\n1001\n/\nfromconfig added\nNoNewPrivs:\t1\n66\n")
    io2.close()
    // Neither args nor a process: a ConfigError naming args, nothing started.
    await expect(c.exec({ stdio: io2.stdio })).rejects.toMatchObject({ _tag: "ConfigError", path: "args" })
    await c.destroy({ force: true })
  })

  it('stdio: "pipe" on exec gives its stdin/stdout/stderr as Node streams', async () => {
    const c = await run({ root, id: uniq("exp"), bundle: bundle(["sleep", "30"]).dir })
    const p = await c.exec({ args: ["sh", "-c", "read line; echo got $line; echo err >&2; exit 3"], stdio: "pipe" })
    const read = (s: NodeJS.ReadableStream | undefined) =>
      new Promise<string>((resolve) => {
        let text = ""
        s?.setEncoding("utf8")
        s?.on("data", (d: string) => (text += d))
        s?.on("end", () => resolve(text))
      })
    const [out, err] = [read(p.stdout), read(p.stderr)]
    p.stdin?.end("ping\n")
    expect(await p.wait()).toEqual({ code: 3, signal: null })
    expect(await out).toBe("got ping\n")
    expect(await err).toBe("err\n")
    await c.destroy({ force: true })
  })

  it("works in a user namespace", async () => {
    const c = await run({ root, id: uniq("exn"), bundle: bundle(["sleep", "30"], withUserNs(500000)).dir })
    const io = capture()
    const p = await c.exec({ process: proc(["sh", "-c", "id -u; cat /proc/self/uid_map"]), stdio: io.stdio })
    expect(await p.wait()).toEqual({ code: 0, signal: null })
    expect(io.out()).toMatch(/^0\n\s*0\s+500000\s+65536\n$/)
    io.close()
    await c.destroy({ force: true })
  })

  it("passes preserved fds at 3, 4, … to the init and to exec'd processes (runc's --preserve-fds)", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "xc-pfd-")), "f")
    fs.writeFileSync(file, "kept\n")
    // Three open file descriptions: each reader has its own offset.
    const fds = [fs.openSync(file, "r"), fs.openSync(file, "r"), fs.openSync(file, "r")]
    const io = capture()
    const c = await run({ root, id: uniq("pfd"), bundle: bundle(["sh", "-c", "cat <&3; cat <&4; sleep 30"]).dir, stdio: io.stdio, preserveFds: fds.slice(0, 2) })
    const io2 = capture()
    const p = await c.exec({ process: proc(["sh", "-c", "cat <&3; ls /proc/self/fd | tr '\\n' ' '"]), stdio: io2.stdio, preserveFds: [fds[2]!] })
    await p.wait()
    for (let i = 0; i < 50 && io.out() !== "kept\nkept\n"; i++) await new Promise((r) => setTimeout(r, 20))
    expect(io.out()).toBe("kept\nkept\n")
    expect(io2.out()).toBe("kept\n0 1 2 3 4 ")
    fds.forEach((fd) => fs.closeSync(fd))
    io.close()
    io2.close()
    await c.destroy({ force: true })
  })

  it("gets the container's seccomp filter", async () => {
    const seccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 28 }] } as const
    const c = await run({ root, id: uniq("exsc"), bundle: bundle(["sleep", "30"], (s) => ({ ...s, linux: { ...s.linux, seccomp } })).dir })
    const io = capture()
    const p = await c.exec({ process: proc(["sh", "-c", "mkdir /tmp/x 2>&1; grep Seccomp: /proc/self/status"]), stdio: io.stdio })
    await p.wait()
    expect(io.out()).toMatch(/No space left on device/)
    expect(io.out()).toMatch(/Seccomp:\s+2/)
    io.close()
    await c.destroy({ force: true })
  })

  it("is signalled through its pidfd", async () => {
    const c = await run({ root, id: uniq("exs"), bundle: bundle(["sleep", "30"]).dir })
    const p = await c.exec({ process: proc(["sleep", "30"]) })
    await p.signal("KILL")
    expect(await p.wait()).toEqual({ code: null, signal: 9 })
    await c.destroy({ force: true })
  })

  it("names what is wrong: a missing program, an invalid process, a stopped container", async () => {
    const id = uniq("exbad")
    const c = await run({ root, id, bundle: bundle(["sleep", "30"]).dir })
    await expect(c.exec({ process: proc(["/bin/nope"]) })).rejects.toMatchObject({ _tag: "InitFailed", errno: "ENOENT" })
    await expect(c.exec({ process: proc(["true"], { cwd: "relative" }) })).rejects.toMatchObject({ _tag: "ConfigError", path: "process.cwd" })
    // CVE-2024-21626: a cwd through a leaked fd does not land outside.
    for (let n = 3; n < 8; n++)
      await c.exec({ process: proc(["pwd"], { cwd: `/proc/self/fd/${n}` }) }).then(
        (p) => p.wait(),
        (e: unknown) => expect(e).toMatchObject({ _tag: "InitFailed" }),
      )
    await c.signal("KILL")
    await c.wait()
    await expect(c.exec({ process: proc(["true"]) })).rejects.toMatchObject({ _tag: "InvalidTransition", from: "stopped" })
    await c.destroy()
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("leaves no zombie and no fd behind after 200 concurrent short processes", async () => {
    const c = await run({ root, id: uniq("exz"), bundle: bundle(["sleep", "30"]).dir })
    const fdsBefore = fs.readdirSync("/proc/self/fd").length
    const statuses = await Promise.all(Array.from({ length: 200 }, () => c.exec({ process: proc(["true"]) }).then((p) => p.wait())))
    expect(statuses.every((s) => s?.code === 0)).toBe(true)
    expect(zombies()).toEqual([])
    // Pidfds, sockets and watches of all 200 are closed again (a little slack for libuv's own).
    expect(fs.readdirSync("/proc/self/fd").length).toBeLessThanOrEqual(fdsBefore + 2)
    await c.destroy({ force: true })
    expect(zombies()).toEqual([])
  })

  // The container's /etc/passwd is the container's: the manager reads it (for HOME) as hostile input.
  it("reads HOME from the container's /etc/passwd capped, regular files only, and not at all when env has HOME", async () => {
    const b = bundle(["sleep", "30"], undefined, true)
    const passwd = path.join(b.dir, "rootfs", "etc", "passwd")
    const id = uniq("pw")
    const c = await run({ root, id, bundle: b.dir })
    const homeOf = async (env: string[] = ["PATH=/bin"]) => {
      const io = capture()
      try {
        const p = await c.exec({ process: proc(["sh", "-c", "echo $HOME"], { user: { uid: 1000, gid: 1000 }, env }), stdio: io.stdio })
        await p.wait()
        return io.out().trim()
      } finally {
        io.close()
      }
    }
    const entry = "u:x:1000:1000::/home/u:/bin/sh\n"
    fs.appendFileSync(passwd, entry)
    expect(await homeOf()).toBe("/home/u")
    // Its entry past 5 MiB of other lines: refused, naming the file and the cap (not read whole into the host's memory).
    fs.writeFileSync(passwd, "#".repeat(1023) + "\n")
    fs.appendFileSync(passwd, Buffer.alloc(5 << 20, "#\n"))
    fs.appendFileSync(passwd, entry)
    const big = { _tag: "ConfigError", path: "process.user.uid", reason: expect.stringMatching(/\/etc\/passwd is larger than the 4 MiB the runtime reads/) }
    await expect(homeOf()).rejects.toMatchObject(big)
    // A sparse 1 GiB file without a newline: the same, quickly.
    fs.truncateSync(passwd, 1 << 30)
    const t0 = Date.now()
    await expect(homeOf()).rejects.toMatchObject(big)
    expect(Date.now() - t0).toBeLessThan(2000)
    // HOME in the env: nothing is read.
    expect(await homeOf(["PATH=/bin", "HOME=/given"])).toBe("/given")
    // A FIFO (a synchronous open would hang every exec) and a symlink: refused.
    fs.rmSync(passwd)
    execFileSync("mkfifo", [passwd])
    await expect(homeOf()).rejects.toMatchObject({ _tag: "ConfigError", reason: expect.stringMatching(/\/etc\/passwd is not a regular file/) })
    fs.rmSync(passwd)
    fs.symlinkSync("group", passwd)
    await expect(homeOf()).rejects.toMatchObject({ _tag: "ConfigError", reason: expect.stringMatching(/\/etc\/passwd is a symlink/) })
    // None at all: HOME is "/".
    fs.rmSync(passwd)
    expect(await homeOf()).toBe("/")
    await c.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("create refuses a /etc/passwd it will not read (a FIFO) before anything exists; HOME in env skips the lookup", async () => {
    const b = bundle(["sh", "-c", "echo $HOME"], undefined, true)
    const passwd = path.join(b.dir, "rootfs", "etc", "passwd")
    fs.rmSync(passwd)
    execFileSync("mkfifo", [passwd])
    const id = uniq("pwc")
    await expect(run({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "ConfigError", reason: expect.stringMatching(/\/etc\/passwd is not a regular file/) })
    expect(expectNoTrace(root, id)).toEqual([])
    const spec = JSON.parse(fs.readFileSync(path.join(b.dir, "config.json"), "utf8")) as { process: { env: string[] } }
    spec.process.env.push("HOME=/given")
    fs.writeFileSync(path.join(b.dir, "config.json"), JSON.stringify(spec))
    const io = capture()
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await c.wait()
    expect(io.out()).toBe("/given\n")
    await c.destroy()
    io.close()
    expect(expectNoTrace(root, id)).toEqual([])
  })
})
