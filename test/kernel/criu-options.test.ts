/**
 * runc's remaining checkpoint/restore options on the real kernel with CRIU 4.1.1:
 * page server, lazy pages with a status fd, empty network namespace, auto-dedup,
 * pre-dump with parent images (where the kernel tracks dirty memory), a restored
 * terminal sent to a console socket, and what a process keeps across a restore
 * (an open file, a pipe and a unix socket pair, with data in flight).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { addon } from "../../native/addon.ts"
import { dispose, restore, run } from "../../promise.ts"
import type { Spec } from "../../config/spec.ts"
import { pipes } from "./pipes.ts"
import { COUNTER, CRIU, counter, criuSkip, images, sleep, withCriu } from "./criu-fixtures.ts"
import { bundle, expectNoTrace, stateRoot, uniq } from "./harness.ts"

const skipReason = criuSkip
if (skipReason) console.warn(`SKIPPING CRIU option tests: ${skipReason}`)

/** `criu check --feature X` exits 0 when this kernel has it: the measurement the skips below are based on. */
const criuHas = (feature: string) => !skipReason && spawnSync(CRIU, ["check", "--feature", feature], { stdio: "ignore" }).status === 0
const noMemTrack = criuHas("mem_dirty_track")
  ? undefined
  : "no memory dirty tracking here (`criu check --feature mem_dirty_track`: \"Dirty tracking is OFF\"; the kernel lacks CONFIG_MEM_SOFT_DIRTY): pre-dump and parent images cannot work"
const noUffd = criuHas("uffd-noncoop") ? undefined : "no userfaultfd here (`criu check --feature uffd-noncoop` fails): lazy pages cannot work"
const noIp = fs.existsSync("/usr/bin/nsenter") && (fs.existsSync("/usr/sbin/ip") || fs.existsSync("/sbin/ip")) ? undefined : "needs ip(8) and nsenter(1)"
const noCc = spawnSync("cc", ["--version"], { stdio: "ignore" }).status === 0 && fs.existsSync("/usr/lib/x86_64-linux-gnu/libc.a") ? undefined : "needs cc and a static libc"
const noPython = spawnSync("python3", ["--version"], { stdio: "ignore" }).status === 0 ? undefined : "needs python3 (the console-socket receiver)"
for (const r of [noMemTrack, noUffd, noIp, noCc, noPython]) if (!skipReason && r) console.warn(`SKIPPING some CRIU option tests: ${r}`)

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

/** A TCP port for a page server on loopback (random: other suites run in parallel). */
const port = () => 20000 + Math.floor(Math.random() * 20000)
/** Blocks (in the thread pool) for up to `n` bytes of `fd`; resolves with what came ("" at EOF). */
const readSome = (fd: number, n = 16) =>
  new Promise<Buffer>((res, rej) => {
    const buf = Buffer.alloc(n)
    fs.read(fd, buf, 0, n, null, (e, k) => (e ? rej(e) : res(buf.subarray(0, k))))
  })
/** Allocated bytes of the pages-*.img files of an image directory (holes do not count). */
const pagesBlocks = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((f) => /^pages-\d+\.img$/.test(f))
    .reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).blocks * 512, 0)
const pagesSize = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((f) => /^pages-\d+\.img$/.test(f))
    .reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0)
/** Pids of the `criu restore` (swrk) processes working on `imagePath`. */
const criuRestoring = (imagePath: string) =>
  fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/cmdline`, "utf8").startsWith(`criu: restore --rpc -D ${imagePath}`)
      } catch {
        return false
      }
    })
    .map(Number)
/** A `criu` helper (page-server, lazy-pages) started with --status-fd 3; resolves once it says it is ready. */
async function criuDaemon(args: string[]): Promise<{ proc: ChildProcess; exited: Promise<number | null> }> {
  const proc = spawn(CRIU, [...args, "--status-fd", "3"], { stdio: ["ignore", "ignore", "ignore", "pipe"] })
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)))
  const ready = new Promise<boolean>((r) => {
    proc.stdio[3]!.once("data", () => r(true))
    void exited.then(() => r(false))
  })
  if (!(await ready)) throw new Error(`criu ${args.join(" ")} exited before it was ready`)
  return { proc, exited }
}

describe.skipIf(skipReason)("CRIU's features, as measured", () => {
  it("the feature check agrees with `criu check --feature`", async () => {
    const f = await withCriu((c) => c.features)
    expect(f.memTrack).toBe(noMemTrack === undefined)
    expect(f.lazyPages).toBe(criuHas("uffd"))
  })
})

describe.skipIf(skipReason)("pre-dump and parent images", () => {
  it.skipIf(noMemTrack === undefined)("a pre-dump here is refused naming the missing feature, and the container goes on untouched", async () => {
    const id = uniq("cpd")
    const io = await pipes()
    const c = await run({ root, id, bundle: bundle(COUNTER).dir, stdio: io.stdio })
    await sleep(300)
    const imagePath = images()
    const err = await c.checkpoint({ imagePath, preDump: true }).catch((e: unknown) => e)
    expect(err).toMatchObject({ _tag: "CriuFailed", action: "pre-dump" })
    expect((err as Error).message).toMatch(/missing features: MemTrack.*CONFIG_MEM_SOFT_DIRTY/)
    // A dump onto a parent needs the same tracking, and says so too.
    const err2 = await c.checkpoint({ imagePath, parentPath: "../x" }).catch((e: unknown) => e)
    expect((err2 as Error).message).toMatch(/MemTrack/)
    expect(c.status()).toBe("running")
    expect(fs.existsSync(imagePath)).toBe(false)
    const v = counter(c.pid!)
    await sleep(300)
    expect(counter(c.pid!)).toBeGreaterThan(v)
    await c.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    io.close()
  })

  it.skipIf(noMemTrack)("pre-dump, then a dump onto it as parent writes fewer pages; autoDedup punches the parent; the restore counts on", async () => {
    const id = uniq("cpd")
    const io = await pipes()
    // A 16 MiB tmpfs file mapped nowhere would not count: the shell's heap grows instead.
    const c = await run({ root, id, bundle: bundle(["sh", "-c", "x=$(head -c 4000000 /dev/zero | tr '\\0' a); i=0; while true; do echo $i > /dev/shm/c; i=$((i+1)); sleep 0.1; done"]).dir, stdio: io.stdio })
    await sleep(800)
    const base = images()
    await c.checkpoint({ imagePath: path.join(base, "pre"), preDump: true })
    expect(c.status()).toBe("running")
    const parentBefore = pagesBlocks(path.join(base, "pre"))
    await c.checkpoint({ imagePath: path.join(base, "dump"), parentPath: "../pre", autoDedup: true })
    expect(c.status()).toBe("checkpointed")
    expect(pagesSize(path.join(base, "dump"))).toBeLessThan(pagesSize(path.join(base, "pre")))
    expect(pagesBlocks(path.join(base, "pre"))).toBeLessThanOrEqual(parentBefore)
    await c.destroy()
    const r = await restore({ root, id, bundle: bundle(COUNTER).dir, imagePath: path.join(base, "dump"), stdio: io.stdio })
    const v = counter(r.pid!)
    await sleep(300)
    expect(counter(r.pid!)).toBeGreaterThan(v)
    await r.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    io.close()
  })
})

describe.skipIf(skipReason)("a page server", () => {
  it("receives the pages while the other images are written locally; together they restore", async () => {
    const id = uniq("cps")
    const io = await pipes()
    const b = bundle(COUNTER)
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await sleep(400)
    const imagePath = images()
    const remote = images()
    fs.mkdirSync(remote, { recursive: true })
    const p = port()
    const ps = await criuDaemon(["page-server", "--address", "127.0.0.1", "--port", String(p), "-D", remote, "-o", "page-server.log"])
    const before = counter(c.pid!)
    await c.checkpoint({ imagePath, pageServer: { address: "127.0.0.1", port: p } })
    expect(await ps.exited).toBe(0)
    await c.destroy()
    // The pages went over TCP: none here, all there.
    expect(pagesSize(imagePath)).toBe(0)
    expect(pagesSize(remote)).toBeGreaterThan(64 * 1024)
    expect(fs.existsSync(path.join(imagePath, "inventory.img"))).toBe(true)
    // The migration's last step: the pages join the rest of the images.
    for (const f of fs.readdirSync(remote).filter((f) => f.endsWith(".img"))) fs.copyFileSync(path.join(remote, f), path.join(imagePath, f))
    const r = await restore({ root, id, bundle: b.dir, imagePath, stdio: io.stdio })
    const v = counter(r.pid!)
    expect(v).toBeGreaterThanOrEqual(before)
    await sleep(300)
    expect(counter(r.pid!)).toBeGreaterThan(v)
    await r.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    io.close()
  })

  it("a bad address or port is a ConfigError naming the field, and nothing happens", async () => {
    const id = uniq("cpx")
    const io = await pipes()
    const c = await run({ root, id, bundle: bundle(COUNTER).dir, stdio: io.stdio })
    const imagePath = images()
    await expect(c.checkpoint({ imagePath, pageServer: { address: "127.0.0.1", port: 70000 } })).rejects.toMatchObject({ _tag: "ConfigError", path: "pageServer.port" })
    await expect(c.checkpoint({ imagePath, emptyNamespaces: ["pid"] })).rejects.toMatchObject({ _tag: "ConfigError", path: "emptyNamespaces[0]" })
    // A status fd is written only by a lazy dump, and must be writable.
    const [a, z] = addon.socketpair()
    await expect(c.checkpoint({ imagePath, statusFd: a })).rejects.toMatchObject({ _tag: "ConfigError", path: "statusFd" })
    const ro = fs.openSync("/dev/null", "r")
    await expect(c.checkpoint({ imagePath, lazyPages: true, statusFd: ro })).rejects.toMatchObject({ _tag: "ConfigError", path: "statusFd", reason: expect.stringMatching(/not open for writing/) })
    for (const fd of [a, z, ro]) fs.closeSync(fd)
    expect(fs.existsSync(imagePath)).toBe(false)
    expect(c.status()).toBe("running")
    await c.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    io.close()
  })
})

describe.skipIf(skipReason ?? noUffd)("lazy pages (post-copy migration)", () => {
  /**
   * On this machine (kernel 6.18, CRIU 4.1.1) the transfer itself fails inside the dumping CRIU
   * ("page-pipe: splice: -1: Bad file descriptor", then "Lazy pages transfer FAILED") with CRIU's own
   * command line too (criu dump --lazy-pages / criu lazy-pages / criu restore --lazy-pages, no runtime
   * involved). What is ours is tested either way: the feature check, the status fd, the options and
   * the restore's hand-off to the daemon; the end of the migration is asserted where CRIU completes it,
   * and otherwise the failure must come back as a CriuFailed quoting dump.log, with the container running.
   */
  it("the status fd says when the pages can be fetched; `criu lazy-pages` and a lazy restore fetch them", { timeout: 60_000 }, async () => {
    const id = uniq("clz")
    const io = await pipes()
    const b = bundle(COUNTER)
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await sleep(400)
    const imagePath = images()
    const p = port()
    const [statusRead, statusWrite] = addon.socketpair()
    const before = counter(c.pid!)
    const dumping = c.checkpoint({ imagePath, lazyPages: true, pageServer: { address: "127.0.0.1", port: p }, statusFd: statusWrite }).then(
      () => undefined,
      (e: unknown) => e as Error,
    )
    // One \0 once ready (as runc; then the checkpoint closes its copy of the fd).
    expect([...(await readSome(statusRead))]).toEqual([0])
    fs.closeSync(statusRead)
    // The images are there; the private anonymous pages wait in the dumping CRIU's memory.
    expect(fs.existsSync(path.join(imagePath, "inventory.img"))).toBe(true)
    const lazy = await criuDaemon(["lazy-pages", "--page-server", "--address", "127.0.0.1", "--port", String(p), "-D", imagePath, "-o", "lazy-pages.log"])
    const id2 = uniq("clz2")
    const restoring = restore({ root, id: id2, bundle: b.dir, imagePath, lazyPages: true, stdio: io.stdio }).catch((e: unknown) => e as Error)
    const dumpError = await dumping
    await lazy.exited
    // A restore whose pages never came sits in CRIU's failure path (wait4 on the killed tree) for
    // good: the CRIU this test started for it is stopped by its pid, and the restore must fail typed.
    if (dumpError !== undefined && (await Promise.race([restoring.then(() => true), sleep(5000).then(() => false)])) === false)
      for (const pid of criuRestoring(imagePath)) process.kill(pid, "SIGKILL")
    const restored = await restoring
    // A CRIU killed mid-restore leaves the cgroup yard it mounted under its work dir (here the images):
    // nobody else can take it down, so the test does, and then checks that no mount stays behind.
    const mountsUnder = (dir: string) =>
      fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "").filter((m) => m.startsWith(`${dir}/`))
    for (const yard of mountsUnder(imagePath).filter((m) => path.basename(m).startsWith(".criu.cgyard."))) spawnSync("umount", ["-l", yard])
    expect(mountsUnder(imagePath)).toEqual([])
    if (dumpError === undefined) {
      expect(c.status()).toBe("checkpointed")
      expect(restored).not.toBeInstanceOf(Error)
      const r = restored as Exclude<typeof restored, Error>
      const v = counter(r.pid!)
      expect(v).toBeGreaterThanOrEqual(before)
      await sleep(300)
      expect(counter(r.pid!)).toBeGreaterThan(v)
    } else {
      console.warn(`lazy pages: CRIU's own transfer failed here: ${dumpError.message.split("\n")[0]}`)
      expect(restored).toMatchObject({ _tag: "CriuFailed", action: "restore" })
      expect(dumpError).toMatchObject({ _tag: "CriuFailed", action: "dump", logFile: path.join(imagePath, "dump.log") })
      expect(dumpError.message).toContain("Lazy pages transfer FAILED")
      // CRIU let the tree go on: the container is running and counting.
      expect(c.status()).toBe("running")
      const v = counter(c.pid!)
      await sleep(300)
      expect(counter(c.pid!)).toBeGreaterThan(v)
    }
    if (!(restored instanceof Error)) await restored.destroy({ force: true })
    await c.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    expect(expectNoTrace(root, id2)).toEqual([])
    io.close()
  })
})

describe.skipIf(skipReason ?? noIp)("an empty network namespace", () => {
  it("is neither dumped nor restored: the address added inside comes back only without emptyNamespaces", async () => {
    const id = uniq("cen")
    const io = await pipes()
    const b = bundle(COUNTER)
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    const inNet = (pid: number, ...args: string[]) => execFileSync("nsenter", ["-t", String(pid), "-n", "ip", ...args], { encoding: "utf8" })
    inNet(c.pid!, "addr", "add", "10.77.0.1/32", "dev", "lo")
    inNet(c.pid!, "link", "set", "lo", "up")
    await sleep(200)
    const [full, empty] = [images(), images()]
    await c.checkpoint({ imagePath: full, leaveRunning: true })
    await c.checkpoint({ imagePath: empty, emptyNamespaces: ["network"] })
    await c.destroy()
    const netImages = (dir: string) => fs.readdirSync(dir).filter((f) => /^(netns|netdev|ifaddr)-/.test(f))
    expect(netImages(full).length).toBeGreaterThan(0)
    expect(netImages(empty)).toEqual([])
    const r1 = await restore({ root, id, bundle: b.dir, imagePath: full, stdio: io.stdio })
    expect(inNet(r1.pid!, "addr", "show", "dev", "lo")).toContain("10.77.0.1")
    await r1.destroy({ force: true })
    const r2 = await restore({ root, id, bundle: b.dir, imagePath: empty, emptyNamespaces: ["network"], stdio: io.stdio })
    // Its own namespace still, but a fresh one: lo without the address.
    expect(fs.statSync(`/proc/${r2.pid}/ns/net`).ino).not.toBe(fs.statSync("/proc/self/ns/net").ino)
    expect(inNet(r2.pid!, "addr", "show", "dev", "lo")).not.toContain("10.77.0.1")
    const v = counter(r2.pid!)
    await sleep(300)
    expect(counter(r2.pid!)).toBeGreaterThan(v)
    await r2.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    io.close()
  })
})

describe.skipIf(skipReason)("auto-dedup on restore", () => {
  it("punches each page out of the images once restored: the pages files keep their size but lose their blocks", async () => {
    const id = uniq("cad")
    const io = await pipes()
    const b = bundle(COUNTER)
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await sleep(300)
    const imagePath = images()
    await c.checkpoint({ imagePath })
    await c.destroy()
    const [size, blocks] = [pagesSize(imagePath), pagesBlocks(imagePath)]
    expect(blocks).toBeGreaterThan(64 * 1024)
    const r = await restore({ root, id, bundle: b.dir, imagePath, autoDedup: true, stdio: io.stdio })
    expect(pagesSize(imagePath)).toBe(size)
    expect(pagesBlocks(imagePath)).toBeLessThan(blocks / 4)
    const v = counter(r.pid!)
    await sleep(300)
    expect(counter(r.pid!)).toBeGreaterThan(v)
    await r.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    io.close()
  })
})

/**
 * One process passing a counter through a unix socket pair and a pipe, with the value in flight in
 * both while it sleeps (where a dump catches it), and appending what came back to an open file.
 */
const SOCKLOOP = `
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
  int sv[2], p[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || pipe(p)) return 1;
  int out = open("/dev/shm/log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (int i = 0;; i++) {
    int a = -1, b = -1;
    if (write(sv[0], &i, sizeof i) != sizeof i || write(p[1], &i, sizeof i) != sizeof i) return 2;
    usleep(100000);
    if (read(sv[1], &a, sizeof a) != sizeof a || read(p[0], &b, sizeof b) != sizeof b) return 3;
    dprintf(out, a == i && b == i ? "%d\\n" : "BAD %d %d %d\\n", i, a, b);
  }
}
`

describe.skipIf(skipReason ?? noCc)("what a restored process keeps", () => {
  it("an open file with its offset, a pipe and a unix socket pair, each with data in flight", async () => {
    const id = uniq("cks")
    const io = await pipes()
    const b = bundle(["/bin/sockloop"], undefined, true)
    const src = path.join(b.dir, "sockloop.c")
    fs.writeFileSync(src, SOCKLOOP)
    execFileSync("cc", ["-static", "-O2", "-o", path.join(b.dir, "rootfs", "bin", "sockloop"), src])
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    await sleep(550)
    const imagePath = images()
    await c.checkpoint({ imagePath })
    await c.destroy()
    // What was in flight is in the images: the pipe's bytes and the socket's queue.
    for (const f of ["pipes-data.img", "sk-queues.img"]) expect(fs.statSync(path.join(imagePath, f)).size, f).toBeGreaterThan(8)
    const r = await restore({ root, id, bundle: b.dir, imagePath, stdio: io.stdio })
    await sleep(600)
    const lines = fs.readFileSync(`/proc/${r.pid!}/root/dev/shm/log`, "utf8").trim().split("\n")
    // No BAD line, no gap, no restart: the in-flight values came back in the socket and the pipe.
    expect(lines.length).toBeGreaterThan(8)
    expect(lines).toEqual(lines.map((_, k) => String(k)))
    await r.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    io.close()
  })
})

describe.skipIf(skipReason ?? noPython)("a checkpointed terminal restored with a console socket", () => {
  it("sends CRIU's new pty master (orphan-pts-master) to the socket, as runc's --console-socket, and the program answers through it", async () => {
    const id = uniq("cct")
    const tty = (s: Spec) => ({ ...s, process: { ...s.process!, terminal: true } })
    const b = bundle(["sh", "-c", "while read l; do echo got:$l; done"], tty)
    const c = await run({ root, id, bundle: b.dir })
    const m1 = c.console()!
    await sleep(200)
    const imagePath = images()
    await c.checkpoint({ imagePath })
    fs.closeSync(m1)
    await c.destroy()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-console-"))
    const sock = path.join(dir, "console.sock")
    const receiver = spawn("python3", [
      "-c",
      `import socket,os,sys,time
s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); print("ready",flush=True)
c,_=s.accept(); name,fds,_,_=socket.recv_fds(c,1024,1); m=fds[0]
os.write(m,b"hello\\n"); out=b""; end=time.time()+5
while b"got:hello" not in out and time.time()<end: out+=os.read(m,4096)
print(name.decode(), out.decode().replace("\\r",""), flush=True)`,
      sock,
    ])
    let got = ""
    receiver.stdout.on("data", (d: Buffer) => (got += d.toString()))
    for (let i = 0; i < 100 && !got.includes("ready"); i++) await sleep(20)
    const r = await restore({ root, id, bundle: b.dir, imagePath, consoleSocket: sock })
    // The master went away on the socket: none is kept here.
    expect(r.console()).toBeUndefined()
    await new Promise((res) => receiver.on("exit", res))
    expect(got).toMatch(/\/dev\/ptmx [\s\S]*got:hello/)
    await r.destroy({ force: true })
    fs.rmSync(dir, { recursive: true, force: true })
    expect(expectNoTrace(root, id)).toEqual([])
  })
})
