/**
 * Regression tests for the breakouts runc and crun suffered (../shared/SECURITY.md):
 * each builds the hostile situation for real and checks that the host is untouched.
 */
import { spawn } from "node:child_process"
import * as net from "node:net"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { helperPath } from "../../native/addon.ts"
import { create, dispose, run } from "../../promise.ts"
import { bundle, capture, expectNoTrace, skipReason, stateRoot, uniq, withUserNs } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

const userns = withUserNs(300000)

/** A host directory holding one marker file, and a function telling whether it is still exactly that. */
function hostMarkerDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-host-"))
  fs.writeFileSync(path.join(dir, "marker"), "host")
  return { dir, untouched: () => fs.readdirSync(dir).join(",") === "marker" && fs.readFileSync(path.join(dir, "marker"), "utf8") === "host" }
}

describe.skipIf(skipReason)("breakouts that must not happen", () => {
  it("CVE-2019-5736: the init runs from a sealed memfd that cannot be rewritten", async () => {
    const before = fs.readFileSync(helperPath())
    const c = await create({ root, id: uniq("exe"), bundle: bundle(["true"]).dir })
    const exe = fs.readlinkSync(`/proc/${c.pid}/exe`)
    expect(exe).toMatch(/^\/memfd:xcontainer-init/)
    expect(() => fs.openSync(`/proc/${c.pid}/exe`, "r+")).toThrow(/EPERM|ETXTBSY|EACCES/)
    await c.destroy()
    expect(fs.readFileSync(helperPath()).equals(before)).toBe(true)
  })

  it("CVE-2016-9962: the init is not dumpable until it execs the program", async () => {
    // A non-dumpable process's /proc files belong to root; a dumpable one's to its (mapped) owner.
    const b = bundle(["sleep", "30"], userns)
    const c = await create({ root, id: uniq("dump"), bundle: b.dir })
    expect(fs.statSync(`/proc/${c.pid}/mem`).uid).toBe(0)
    await c.start()
    await new Promise((r) => setTimeout(r, 50))
    expect(fs.statSync(`/proc/${c.pid}/mem`).uid).toBe(300000)
    await c.destroy({ force: true })
  })

  it("CVE-2024-21626: no host fd reaches the program", async () => {
    const io = capture()
    const spare = fs.openSync("/", "r") // a host directory fd open in the manager, without O_CLOEXEC games
    const c = await run({ root, id: uniq("fds"), bundle: bundle(["ls", "/proc/self/fd"]).dir, stdio: io.stdio })
    await c.wait()
    await c.destroy()
    fs.closeSync(spare)
    // 0-2 are stdio, 3 is ls's own directory fd.
    expect(io.out().trim().split("\n").sort()).toEqual(["0", "1", "2", "3"])
    io.close()
  })

  it("CVE-2024-21626: a cwd through /proc/self/fd cannot land outside the container", async () => {
    for (let n = 3; n <= 12; n++) {
      const io = capture()
      const b = bundle(["sh", "-c", "pwd; ls -d ../../../*/ | head -50"], (s) => ({ ...s, process: { ...s.process!, cwd: `/proc/self/fd/${n}` } }))
      const id = uniq("cwd")
      try {
        const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
        await c.wait()
        await c.destroy()
        // If it ran at all, it ran inside the container's root.
        expect(io.out()).not.toContain(path.basename(root))
      } catch (e) {
        expect(e).toMatchObject({ _tag: "InitFailed", op: "chdir" })
      }
      io.close()
      expect(expectNoTrace(root, id)).toEqual([])
    }
  })

  it("CVE-2024-45310 / CVE-2021-30465: mount destinations never resolve through a symlink to the host", async () => {
    const host = hostMarkerDir()
    const b = bundle(
      ["true"],
      (s) => ({ ...s, mounts: [...(s.mounts ?? []), { destination: "/escape/sub", type: "tmpfs", source: "tmpfs" }, { destination: "/escape2", type: "tmpfs", source: "tmpfs" }] }),
      true,
    )
    fs.symlinkSync(host.dir, path.join(b.dir, "rootfs", "escape"))
    fs.symlinkSync(host.dir, path.join(b.dir, "rootfs", "escape2"))
    const id = uniq("link")
    try {
      const c = await run({ root, id, bundle: b.dir })
      await c.wait()
      await c.destroy()
    } catch (e) {
      // Refusing is as good as confining: the symlink's target does not exist inside the rootfs.
      expect(e).toMatchObject({ _tag: "InitFailed", op: "mount" })
    }
    expect(host.untouched()).toBe(true)
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("CVE-2021-30465: a symlink swapped in while mounts are made never redirects them to the host", async () => {
    const host = hostMarkerDir()
    const b = bundle(
      ["sh", "-c", "grep -c ' /race/mnt ' /proc/self/mountinfo"],
      (s) => ({ ...s, mounts: [...(s.mounts ?? []), { destination: "/race/mnt", type: "tmpfs", source: "tmpfs" }] }),
      true,
    )
    const rootfs = path.join(b.dir, "rootfs")
    fs.mkdirSync(path.join(rootfs, "race", "mnt"), { recursive: true })
    // Swap /race between a real directory and a symlink to the host directory, as fast as we can.
    const swapper = spawn("sh", ["-c", `cd ${rootfs}; while :; do mv race race.d; ln -s ${host.dir} race; rm race; mv race.d race; done`])
    let mounted = 0
    let refused = 0
    try {
      for (let i = 0; i < 15; i++) {
        const io = capture()
        const id = uniq("race")
        try {
          const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
          await c.wait()
          await c.destroy()
          // It ran: the tmpfs went on the directory the fd resolved inside the rootfs, wherever the
          // swap left that directory's name (so /race/mnt may or may not show it).
          mounted++
        } catch (e) {
          expect(e).toMatchObject({ _tag: "InitFailed" })
          refused++
        }
        io.close()
        expect(expectNoTrace(root, id)).toEqual([])
        expect(host.untouched()).toBe(true)
      }
    } finally {
      swapper.kill("SIGKILL")
    }
    expect(mounted + refused).toBe(15)
    expect(mounted).toBeGreaterThan(0)
  })

  it("CVE-2026-41579 family: a rootfs whose /dev links to a host directory leaves that directory alone", async () => {
    const host = hostMarkerDir()
    const b = bundle(["ls", "/dev"], undefined, true)
    fs.rmSync(path.join(b.dir, "rootfs", "dev"), { recursive: true })
    fs.symlinkSync(host.dir, path.join(b.dir, "rootfs", "dev"))
    const id = uniq("devlink")
    try {
      const c = await run({ root, id, bundle: b.dir })
      await c.wait()
      await c.destroy()
    } catch (e) {
      expect(e).toMatchObject({ _tag: "InitFailed" })
    }
    expect(host.untouched()).toBe(true)
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("CVE-2025-31133: a /dev/null that is not the null device is never used to mask", async () => {
    // No fresh /dev: the rootfs's own /dev/null is a symlink to a procfs file the mask would expose.
    const b = bundle(
      ["cat", "/proc/keys"],
      (s) => ({ ...s, mounts: (s.mounts ?? []).filter((m) => !m.destination.startsWith("/dev")), linux: { ...s.linux, maskedPaths: ["/proc/keys"] } }),
      true,
    )
    fs.symlinkSync("/proc/sys/kernel/core_pattern", path.join(b.dir, "rootfs", "dev", "null"))
    const id = uniq("null")
    await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "InitFailed", op: "mask" })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("CVE-2019-16884 family: a sysctl is written only to procfs", async () => {
    // A tmpfs over /proc/sys stands in for an image whose /proc is not procfs.
    const b = bundle(["true"], (s) => ({
      ...s,
      mounts: [...(s.mounts ?? []), { destination: "/proc/sys", type: "tmpfs", source: "tmpfs" }],
      linux: { ...s.linux, readonlyPaths: [], sysctl: { "net.ipv4.ip_forward": "1" } },
    }))
    const id = uniq("sysctl")
    await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "InitFailed", op: "sysctl" })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("CVE-2023-25809: /sys/fs/cgroup is read-only inside", async () => {
    const io = capture()
    const c = await run({ root, id: uniq("cgro"), bundle: bundle(["sh", "-c", "mkdir /sys/fs/cgroup/pids/x || echo refused"]).dir, stdio: io.stdio })
    await c.wait()
    await c.destroy()
    expect(io.out()).toBe("refused\n")
    expect(io.err()).toMatch(/Read-only file system/)
    io.close()
  })

  it("CVE-2022-29162: the inheritable set is empty even when the config grants capabilities", async () => {
    const io = capture()
    const caps = ["CAP_CHOWN", "CAP_KILL"]
    const b = bundle(["grep", "^Cap", "/proc/self/status"], (s) => ({ ...s, process: { ...s.process!, capabilities: { bounding: caps, effective: caps, permitted: caps } } }))
    const c = await run({ root, id: uniq("inh"), bundle: b.dir, stdio: io.stdio })
    await c.wait()
    await c.destroy()
    expect(io.out()).toContain("CapInh:\t0000000000000000")
    expect(io.out()).toContain("CapEff:\t0000000000000021")
    io.close()
  })
})

describe.skipIf(skipReason)("issue 13: ids and NUL bytes through the library", () => {
  it("item 2: a uid or gid of 4294967295 ((uid_t)-1: setresuid leaves it unchanged) is refused, never run as root", async () => {
    for (const user of [{ uid: 4294967295, gid: 4294967295 }, { uid: 1000, gid: 4294967295 }, { uid: 4294967295, gid: 1000 }]) {
      const io = capture()
      const id = uniq("uidmax")
      const b = bundle(["sh", "-c", "id -u; id -g"], (s) => ({ ...s, process: { ...s.process!, user } }))
      const e = await run({ root, id, bundle: b.dir, stdio: io.stdio }).then(async (c) => {
        await c.wait()
        await c.destroy()
        return undefined
      }, (err: unknown) => err)
      expect(io.out()).toBe("") // today: "0\n0\n", the program ran as root
      expect(e).toMatchObject({ _tag: "ConfigError", reason: "uids and gids must be in range 0-2147483647" })
      expect(expectNoTrace(root, id)).toEqual([])
      io.close()
    }
    const io = capture()
    const c = await run({ root, id: uniq("uidmax"), bundle: bundle(["sleep", "30"]).dir, stdio: io.stdio })
    await expect(c.exec({ process: { args: ["id", "-u"], cwd: "/", user: { uid: 4294967295, gid: 4294967295 } }, stdio: io.stdio })).rejects.toMatchObject({ _tag: "ConfigError", path: "process.user.uid" })
    await c.destroy({ force: true })
    expect(io.out()).toBe("")
    io.close()
  })

  it("item 8: a console socket path with a NUL byte is refused, not connected cut short", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-sock-"))
    let connected = 0
    const server = net.createServer((s) => {
      connected++
      s.destroy()
    })
    await new Promise<void>((r) => server.listen(path.join(dir, "sock"), r))
    const id = uniq("nulsock")
    const b = bundle(["true"], (s) => ({ ...s, process: { ...s.process!, terminal: true } }))
    const e = await create({ root, id, bundle: b.dir, consoleSocket: `${path.join(dir, "sock")}\0/elsewhere` }).then(
      async (c) => (await c.destroy({ force: true }), "created"),
      (err: unknown) => err,
    )
    expect(e).toMatchObject({ _tag: "ConfigError", path: "consoleSocket", reason: "contains a null byte" })
    await new Promise<void>((r) => server.close(() => r()))
    expect(connected).toBe(0)
    expect(expectNoTrace(root, id)).toEqual([])
    fs.rmSync(dir, { recursive: true, force: true })
  })
})
