// Real-kernel tests of the native addon: every call goes to the kernel (we
// are root on Linux 6.x; nothing is mocked).
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, test } from "vitest"
import { addon, type ExitStatus, type Watch } from "../../native/addon.ts"
import { MAX_MSG } from "../../native/protocol.ts"

const O_CLOEXEC = 0o2000000
const O_NONBLOCK = fs.constants.O_NONBLOCK
const LOCK_EX = 2
const LOCK_NB = 4
const LOCK_UN = 8

const work = fs.mkdtempSync(join(tmpdir(), "xc-addon-"))
afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

/** The open flags of one of our fds, from /proc. */
const fdFlags = (fd: number): number => {
  const m = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))
  if (m?.[1] === undefined) throw new Error(`no flags for fd ${fd}`)
  return parseInt(m[1], 8)
}

const exitOf = (pidfd: number): Promise<ExitStatus | null> =>
  new Promise((resolve) => {
    addon.watchExit(pidfd, resolve)
  })

/** Collects stdout of a spawned helper: a fifo, read end non-blocking. */
const outputPipe = (name: string): { read: number; write: number } => {
  const path = join(work, name)
  addon.mkfifo(path, 0o600)
  const read = fs.openSync(path, fs.constants.O_RDONLY | O_NONBLOCK)
  const write = fs.openSync(path, fs.constants.O_WRONLY)
  return { read, write }
}

const readAll = (fd: number): string => {
  const chunks: Buffer[] = []
  const buf = Buffer.alloc(65536)
  for (;;) {
    let n: number
    try {
      n = fs.readSync(fd, buf)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") break
      throw e
    }
    if (n === 0) break
    chunks.push(Buffer.from(buf.subarray(0, n)))
  }
  return Buffer.concat(chunks).toString()
}

const shell = fs.realpathSync("/bin/sh")
const sealedShell = addon.sealHelper(shell)
const devNull = fs.openSync("/dev/null", "r+")

interface Spawned {
  pid: number
  pidfd: number
  output: () => string
  socket: number
}

/** Runs `sh -c script` from the sealed memfd, stdout/stderr to a fifo, fd 3 a socket. */
const spawnShell = (script: string, name: string): Spawned => {
  const out = outputPipe(name)
  const [mine, theirs] = addon.socketpair()
  const { pid, pidfd } = addon.spawnHelper({
    helperFd: sealedShell,
    argv: ["sh", "-c", script],
    env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
    stdio: [devNull, out.write, out.write],
    socketFd: theirs,
  })
  fs.closeSync(out.write)
  fs.closeSync(theirs)
  return { pid, pidfd, socket: mine, output: () => readAll(out.read) }
}

describe("socketpair, send, receive", () => {
  test("a datagram and an fd cross the socket", async () => {
    const [a, b] = addon.socketpair()
    expect(fdFlags(a) & O_CLOEXEC).toBe(O_CLOEXEC)
    const file = join(work, "passed")
    fs.writeFileSync(file, "through SCM_RIGHTS")
    const fileFd = fs.openSync(file, "r")

    const messages: { data: string; fds: number[] }[] = []
    const ended = new Promise<Error | null>((resolve) => {
      addon.receive(b, (data, fds) => messages.push({ data: data.toString(), fds }), resolve)
    })
    // uv_poll would make the socket O_NONBLOCK; the addon leaves it as it was.
    expect(fdFlags(b) & O_NONBLOCK).toBe(0)
    addon.send(a, Buffer.from("hello"), [fileFd])
    addon.send(a, new TextEncoder().encode("second"))
    fs.closeSync(fileFd)
    fs.closeSync(a)

    expect(await ended).toBeNull()
    expect(messages.map((m) => m.data)).toEqual(["hello", "second"])
    const [first, second] = messages
    expect(second?.fds).toEqual([])
    const received = first?.fds[0]
    expect(first?.fds).toHaveLength(1)
    if (received === undefined) throw new Error("no fd")
    expect(fdFlags(received) & O_CLOEXEC).toBe(O_CLOEXEC)
    expect(fs.readFileSync(received, "utf8")).toBe("through SCM_RIGHTS")
    fs.closeSync(received)
    fs.closeSync(b)
  })

  test("a message of XC_MAX_MSG (4 MiB) crosses; a longer one ends the watch with EMSGSIZE", async () => {
    const max = MAX_MSG
    const [a, b] = addon.socketpair()
    const sizes: number[] = []
    const ended = new Promise<Error | null>((resolve) => {
      addon.receive(b, (data) => sizes.push(data.length), resolve)
    })
    addon.send(a, Buffer.alloc(max, 7))
    addon.send(a, Buffer.alloc(max + 1))
    expect(await ended).toMatchObject({ code: "EMSGSIZE", syscall: "recvmsg" })
    expect(sizes).toEqual([max])
    fs.closeSync(a)
    fs.closeSync(b)
  })

  test("a closed watch calls nothing; close is idempotent", async () => {
    const [a, b] = addon.socketpair()
    let calls = 0
    const watch: Watch = addon.receive(b, () => calls++, () => calls++)
    watch.unref()
    watch.ref()
    watch.close()
    watch.close()
    addon.send(a, Buffer.from("late"))
    fs.closeSync(a)
    await new Promise((r) => setTimeout(r, 50))
    expect(calls).toBe(0)
    fs.closeSync(b)
  })

  test("send to a closed peer is EPIPE, not SIGPIPE", () => {
    const [a, b] = addon.socketpair()
    fs.closeSync(b)
    expect(() => addon.send(a, Buffer.from("x"))).toThrow(expect.objectContaining({ code: "EPIPE", syscall: "sendmsg" }))
    fs.closeSync(a)
  })

  test("an exception in onMessage is an uncaught exception, not a crash", () => {
    const addonPath = fileURLToPath(new URL("../../build/Release/xcontainer.node", import.meta.url))
    const script = `
      const a = require(${JSON.stringify(addonPath)})
      const [x, y] = a.socketpair()
      process.on("uncaughtException", (e) => { console.log("caught " + e.message) })
      a.receive(y, () => { throw new Error("boom") }, (e) => console.log("end " + e))
      a.send(x, Buffer.from("m")); require("fs").closeSync(x)`
    const out = execFileSync(process.execPath, ["-e", script], { encoding: "utf8" })
    expect(out).toBe("caught boom\nend null\n")
  })
})

describe("sealHelper", () => {
  test("the copy is sealed against writes, resizing and new seals", () => {
    const fd = addon.sealHelper("/bin/true")
    expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC)
    expect(fs.fstatSync(fd).size).toBe(fs.statSync("/bin/true").size)
    expect(fs.fstatSync(fd).mode & 0o777).toBe(0o555)
    expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toMatch(/^\/memfd:xcontainer-init/)
    expect(() => fs.writeSync(fd, "x", 0)).toThrow(expect.objectContaining({ code: "EPERM" }))
    expect(() => fs.ftruncateSync(fd, 0)).toThrow(expect.objectContaining({ code: "EPERM" }))
    fs.closeSync(fd)
  })

  test("a missing file is ENOENT with its path", () => {
    expect(() => addon.sealHelper("/nonexistent/helper")).toThrow(
      expect.objectContaining({ code: "ENOENT", errno: -2, syscall: "open", path: "/nonexistent/helper" }),
    )
  })
})

describe("spawnHelper, watchExit, pidfds", () => {
  test("runs the sealed binary with exactly fds 0-3 and default signals", async () => {
    const child = spawnShell("echo hi; ls -l /proc/self/fd; grep -E '^Sig(Blk|Ign)' /proc/self/status", "out1")
    expect(child.pid).toBeGreaterThan(0)
    expect(fdFlags(child.pidfd) & O_CLOEXEC).toBe(O_CLOEXEC)
    expect(await exitOf(child.pidfd)).toEqual({ code: 0, signal: null })

    const out = child.output()
    const lines = out.split("\n")
    expect(lines[0]).toBe("hi")
    const fds = lines.flatMap((l) => {
      const m = / (\d+) -> (.*)$/.exec(l)
      return m?.[1] !== undefined ? [{ fd: Number(m[1]), target: m[2] }] : []
    })
    // 0-3 from the addon, 4 is ls reading /proc/self/fd: nothing leaked.
    expect(fds.map((f) => f.fd)).toEqual([0, 1, 2, 3, 4])
    expect(fds[3]?.target).toMatch(/^socket:/)
    // Node ignores SIGPIPE and blocks signals in its threads: none of it leaks.
    expect(out).toContain("SigBlk:\t0000000000000000")
    expect(out).toContain("SigIgn:\t0000000000000000")
    fs.closeSync(child.pidfd)
    fs.closeSync(child.socket)
  })

  test("a killed child reports its signal", async () => {
    const child = spawnShell("exec sleep 10", "out2")
    addon.pidfdSendSignal(child.pidfd, 9)
    expect(await exitOf(child.pidfd)).toEqual({ code: null, signal: 9 })
    fs.closeSync(child.pidfd)
    fs.closeSync(child.socket)
  })

  test("an exit code comes through", async () => {
    const child = spawnShell("exit 7", "out3")
    expect(await exitOf(child.pidfd)).toEqual({ code: 7, signal: null })
    fs.closeSync(child.pidfd)
    fs.closeSync(child.socket)
  })

  test("tryReap: null while running, the status once exited, ECHILD after", async () => {
    const child = spawnShell("exec sleep 10", "out4")
    expect(addon.tryReap(child.pidfd)).toBeNull()
    // pidfdOpen gives a second handle on the same process.
    const other = addon.pidfdOpen(child.pid)
    addon.pidfdSendSignal(other, 15)
    // The child's end of the socket closes as it dies: wait for that. The
    // kernel closes a dying task's files just before it becomes a zombie, so
    // tryReap may still see it running for a moment after the EOF.
    await new Promise<Error | null>((resolve) => addon.receive(child.socket, () => {}, resolve))
    let status = addon.tryReap(child.pidfd)
    for (let i = 0; status === null && i < 200; i++) {
      await new Promise((r) => setTimeout(r, 5))
      status = addon.tryReap(child.pidfd)
    }
    expect(status).toEqual({ code: null, signal: 15 })
    expect(() => addon.tryReap(other)).toThrow(expect.objectContaining({ code: "ECHILD", syscall: "waitid" }))
    fs.closeSync(other)
    fs.closeSync(child.pidfd)
    fs.closeSync(child.socket)
  })

  test("watchExit on a process that is not our child gives null", async () => {
    const child = spawnShell("sleep 10 >/dev/null 2>&1 & echo $!", "out5")
    expect(await exitOf(child.pidfd)).toEqual({ code: 0, signal: null })
    const orphan = Number(child.output().trim())
    const pidfd = addon.pidfdOpen(orphan)
    const exited = exitOf(pidfd)
    addon.pidfdSendSignal(pidfd, 9)
    expect(await exited).toBeNull()
    fs.closeSync(pidfd)
    fs.closeSync(child.pidfd)
    fs.closeSync(child.socket)
  })

  test("a failing exec is thrown with its errno, the child reaped", () => {
    const text = join(work, "not-a-binary")
    fs.writeFileSync(text, "plain text\n")
    const fd = addon.sealHelper(text)
    const [, theirs] = addon.socketpair()
    const spawn = (helperFd: number, socketFd: number) => () =>
      addon.spawnHelper({ helperFd, argv: ["x"], env: [], stdio: [devNull, devNull, devNull], socketFd })
    expect(spawn(fd, theirs)).toThrow(expect.objectContaining({ code: "ENOEXEC", syscall: "execveat" }))
    expect(spawn(sealedShell, 987654)).toThrow(expect.objectContaining({ code: "EBADF", syscall: "fcntl" }))
    fs.closeSync(fd)
  })

  test("pidfd errors carry code and syscall", () => {
    expect(() => addon.pidfdOpen(0x3fffffff)).toThrow(expect.objectContaining({ code: "ESRCH", syscall: "pidfd_open" }))
    expect(() => addon.pidfdSendSignal(devNull, 0)).toThrow(expect.objectContaining({ code: "EBADF", syscall: "pidfd_send_signal" }))
  })
})

describe("mkfifo, flock, openInRoot", () => {
  test("mkfifo creates a fifo; twice is EEXIST", () => {
    const path = join(work, "exec.fifo")
    addon.mkfifo(path, 0o622)
    expect(fs.statSync(path).isFIFO()).toBe(true)
    expect(() => addon.mkfifo(path, 0o622)).toThrow(expect.objectContaining({ code: "EEXIST", syscall: "mkfifo", path }))
  })

  test("flock excludes another open file description; LOCK_NB gives EWOULDBLOCK", async () => {
    const path = join(work, "lock")
    fs.writeFileSync(path, "")
    const one = fs.openSync(path, "r")
    const two = fs.openSync(path, "r")
    await addon.flock(one, LOCK_EX)
    await expect(addon.flock(two, LOCK_EX | LOCK_NB)).rejects.toMatchObject({ code: "EWOULDBLOCK", syscall: "flock" })
    // A blocking flock waits on the thread pool until the holder lets go.
    let got = false
    const waiting = addon.flock(two, LOCK_EX).then(() => (got = true))
    await new Promise((r) => setTimeout(r, 30))
    expect(got).toBe(false)
    await addon.flock(one, LOCK_UN)
    await waiting
    expect(got).toBe(true)
    fs.closeSync(one)
    fs.closeSync(two)
  })

  test("openInRoot resolves .., absolute symlinks and magic links inside the root", () => {
    const root = join(work, "rootfs")
    fs.mkdirSync(join(root, "etc"), { recursive: true })
    fs.writeFileSync(join(root, "etc/passwd"), "inside\n")
    fs.symlinkSync("/etc/passwd", join(root, "link"))
    const read = (path: string) => {
      const fd = addon.openInRoot(root, path, fs.constants.O_RDONLY)
      expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC)
      const text = fs.readFileSync(fd, "utf8")
      fs.closeSync(fd)
      return text
    }
    expect(read("../../etc/passwd")).toBe("inside\n")
    expect(read("/etc/passwd")).toBe("inside\n")
    expect(read("link")).toBe("inside\n")

    const empty = join(work, "empty-rootfs")
    fs.mkdirSync(empty)
    fs.symlinkSync("/etc/passwd", join(empty, "link"))
    expect(() => addon.openInRoot(empty, "link", fs.constants.O_RDONLY)).toThrow(
      expect.objectContaining({ code: "ENOENT", syscall: "openat2" }),
    )
    // /proc/self/root would lead out of any root: magic links are refused.
    expect(() => addon.openInRoot("/", "/proc/self/root/etc/passwd", fs.constants.O_RDONLY)).toThrow(
      expect.objectContaining({ code: "ELOOP", syscall: "openat2" }),
    )
    expect(() => addon.openInRoot(join(work, "nope"), "x", 0)).toThrow(
      expect.objectContaining({ code: "ENOENT", syscall: "open", path: join(work, "nope") }),
    )
  })

  test("openInRoot with O_CREAT creates inside the root", () => {
    const root = join(work, "rootfs-create")
    fs.mkdirSync(root)
    const fd = addon.openInRoot(root, "../new", fs.constants.O_CREAT | fs.constants.O_WRONLY)
    fs.writeSync(fd, "made")
    fs.closeSync(fd)
    expect(fs.readFileSync(join(root, "new"), "utf8")).toBe("made")
  })
})
