/**
 * What the init does the way runc does it, where images and clients depend on it (issue 14, the init
 * items): bind sources a user namespace cannot reach, stdio owned by the process's user, a read-only
 * /dev, the createContainer hook's cwd, and tmpfs mounts with tmpcopyup.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import type { Spec } from "../../config/spec.ts"
import { create, dispose, run } from "../../promise.ts"
import { bundle, capture, expectNoTrace, skipReason, stateRoot, uniq, withUserNs } from "./harness.ts"
import { pipes } from "./pipes.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

type Mutate = (s: Spec) => Spec

/** Runs a container to its end with captured stdio; its stdout, stderr and exit code. */
async function runIt(b: { dir: string }) {
  const io = capture()
  const id = uniq("ri")
  try {
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio })
    const status = await c.wait()
    await c.destroy()
    return { out: io.out(), err: io.err(), code: status?.code ?? null, id }
  } finally {
    io.close()
  }
}

/** Reads a pty master until `until` shows up or the other side closes, at most 5 s. */
async function readAll(fd: number, until: string): Promise<string> {
  let out = ""
  const buf = Buffer.alloc(4096)
  const deadline = Date.now() + 5000
  while (Date.now() < deadline && !out.includes(until)) {
    const n = await new Promise<number>((resolve) => fs.read(fd, buf, 0, buf.length, null, (err, bytes) => resolve(err ? -1 : bytes)))
    if (n <= 0) break
    out += buf.subarray(0, n).toString()
  }
  return out
}

const withProcess =
  (p: Partial<NonNullable<Spec["process"]>>): Mutate =>
  (s) => ({ ...s, process: { ...s.process!, ...p } })

describe.skipIf(skipReason)("runc's init behaviour (issue 14)", () => {
  it("in a user namespace, binds a host directory the mapped root cannot reach (sources opened as host root)", async () => {
    // A root-only directory on the path: uid 100000 (the container's root) cannot traverse it.
    const priv = fs.mkdtempSync(path.join(os.tmpdir(), "xc-priv-"))
    fs.chmodSync(priv, 0o700)
    const data = path.join(priv, "data")
    fs.mkdirSync(data, { mode: 0o755 })
    fs.writeFileSync(path.join(data, "hello"), "reached\n", { mode: 0o644 })
    try {
      fs.writeFileSync(path.join(priv, "single"), "file too\n", { mode: 0o644 })
      const b = bundle(["cat", "/tmp/hello", "/etc/group"], (s) =>
        withUserNs(100000)({
          ...s,
          mounts: [...(s.mounts ?? []), { destination: "/tmp", type: "bind", source: data, options: ["rbind", "ro"] }, { destination: "/etc/group", type: "bind", source: path.join(priv, "single"), options: ["bind"] }],
        }),
      )
      const r = await runIt(b)
      expect(r.err).toBe("")
      expect(r.out).toBe("reached\nfile too\n")
      expect(r.code).toBe(0)
      expect(expectNoTrace(root, r.id)).toEqual([])
    } finally {
      fs.rmSync(priv, { recursive: true, force: true })
    }
  })

  it("a bind source's host mount flags stay locked in the user namespace (the source is cloned inside the container's mount namespace)", async () => {
    // Opening the source in the host's namespace would give a clone whose ro the container's root may lift.
    const src = fs.mkdtempSync(path.join(os.tmpdir(), "xc-rosrc-"))
    const { execFileSync } = await import("node:child_process")
    execFileSync("mount", ["--bind", src, src])
    execFileSync("mount", ["-o", "remount,bind,ro", src])
    try {
      const caps = ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"]
      const b = bundle(
        ["sh", "-c", "mount -o remount,bind,rw /tmp 2>/dev/null && echo REMOUNTED-RW; touch /tmp/x 2>/dev/null && echo WROTE; echo done"],
        (s) => withUserNs(100000)(withProcess({ capabilities: { bounding: caps, effective: caps, permitted: caps } })({ ...s, mounts: [...(s.mounts ?? []), { destination: "/tmp", type: "bind", source: src, options: ["rbind"] }] })),
      )
      const r = await runIt(b)
      expect(r.out).toBe("done\n")
    } finally {
      execFileSync("umount", [src])
      fs.rmSync(src, { recursive: true, force: true })
    }
  })

  it("chowns the process's stdio pipes to its user, not /dev/null (runc's fixStdioPermissions)", async () => {
    const p = await pipes()
    const io = capture()
    const id = uniq("stdio")
    try {
      const b = bundle(["sh", "-c", "echo $(stat -L -c %u /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2) $(id -u)"], withProcess({ user: { uid: 1000, gid: 1000 } }))
      const c = await run({ root, id, bundle: b.dir, stdio: p.stdio })
      const status = await c.wait()
      await c.destroy()
      const out = await readAll(p.out, "\n")
      expect(status?.code).toBe(0)
      expect(out).toBe("1000 1000 1000 1000\n")
      // /dev/null as stdin is left alone (it is the container's /dev/null's device): still root's.
      const b2 = bundle(["sh", "-c", "stat -L -c %u /proc/self/fd/0"], withProcess({ user: { uid: 1000, gid: 1000 } }))
      const c2 = await run({ root, id: uniq("stdio"), bundle: b2.dir, stdio: io.stdio })
      await c2.wait()
      await c2.destroy()
      expect(io.out()).toBe("0\n")
    } finally {
      p.close()
      io.close()
    }
  })

  it("chowns the terminal to the process's user", async () => {
    const id = uniq("ttyown")
    const b = bundle(["sh", "-c", "stat -c 'owner=%u' $(tty)"], (s) => withProcess({ terminal: true, user: { uid: 1000, gid: 1000 } })(s))
    const c = await run({ root, id, bundle: b.dir })
    const master = c.console()!
    const out = (await readAll(master, "owner=")).replaceAll("\r", "")
    await c.wait()
    fs.closeSync(master)
    await c.destroy()
    expect(out).toMatch(/owner=1000\n/)
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("a read-only /dev is populated first (devices, links, pts, shm, console), then made read-only", async () => {
    const b = bundle(
      ["sh", "-c", "test -c /dev/null && test -L /dev/ptmx && test -c /dev/pts/ptmx && test -d /dev/shm && echo populated; touch /dev/x 2>/dev/null || echo read-only; grep ' /dev ' /proc/self/mountinfo | grep -c ' ro,'"],
      (s) => ({ ...s, mounts: (s.mounts ?? []).map((m) => (m.destination === "/dev" ? { ...m, options: [...(m.options ?? []), "ro"] } : m)) }),
    )
    const r = await runIt(b)
    expect(r.err).toBe("")
    expect(r.out).toBe("populated\nread-only\n1\n")
    // With a terminal: /dev/console is bound before the remount.
    const t = bundle(["sh", "-c", "test -c /dev/console && echo console-ok"], (s) => ({
      ...withProcess({ terminal: true })(s),
      mounts: (s.mounts ?? []).map((m) => (m.destination === "/dev" ? { ...m, options: [...(m.options ?? []), "ro"] } : m)),
    }))
    const c = await run({ root, id: uniq("rodev"), bundle: t.dir })
    const master = c.console()!
    const out = await readAll(master, "console-ok")
    await c.wait()
    fs.closeSync(master)
    await c.destroy()
    expect(out).toContain("console-ok")
  })

  it("a read-only tmpfs can hold nested mountpoints: it is made read-only once everything is mounted", async () => {
    const host = fs.mkdtempSync(path.join(os.tmpdir(), "xc-nested-"))
    fs.writeFileSync(path.join(host, "key"), "k\n")
    try {
      const b = bundle(["sh", "-c", "cat /run/secrets/key; touch /run/x 2>/dev/null || echo read-only"], (s) => ({
        ...s,
        mounts: [...(s.mounts ?? []), { destination: "/run", type: "tmpfs", source: "tmpfs", options: ["ro", "nosuid", "nodev"] }, { destination: "/run/secrets", type: "bind", source: host, options: ["rbind", "ro"] }],
      }))
      const r = await runIt(b)
      expect(r.err).toBe("")
      expect(r.out).toBe("k\nread-only\n")
    } finally {
      fs.rmSync(host, { recursive: true, force: true })
    }
  })

  it("createContainer hooks run with the rootfs as their working directory", async () => {
    const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "xc-hookcwd-")), "log")
    const b = bundle(["true"], (s) => ({ ...s, hooks: { createContainer: [{ path: "/bin/sh", args: ["sh", "-c", `pwd > ${log}`] }] } }))
    const r = await runIt(b)
    expect(r.code).toBe(0)
    expect(fs.readFileSync(log, "utf8")).toBe(`${b.spec.root!.path}\n`)
  })

  it("tmpcopyup: a tmpfs over /etc starts with the image's /etc (its mode; files, dirs, links, modes, owners); writes stay in it", async () => {
    const b = bundle(
      ["sh", "-c", "stat -c %a /etc; cat /etc/xc-copyup /etc/sub/deep; readlink /etc/link; stat -c '%a %u %g' /etc/xc-copyup /etc/sub; echo changed > /etc/rw; echo new > /etc/newfile; cat /etc/rw; grep -c root /etc/passwd"],
      (s) => ({ ...s, mounts: [...(s.mounts ?? []), { destination: "/etc", type: "tmpfs", source: "tmpfs", options: ["tmpcopyup", "nosuid"] }] }),
      true,
    )
    const etc = path.join(b.dir, "rootfs", "etc")
    fs.writeFileSync(path.join(etc, "xc-copyup"), "from-image\n", { mode: 0o604 })
    fs.chownSync(path.join(etc, "xc-copyup"), 1234, 5678)
    fs.mkdirSync(path.join(etc, "sub"), { mode: 0o750 })
    fs.chmodSync(path.join(etc, "sub"), 0o750)
    fs.writeFileSync(path.join(etc, "sub", "deep"), "deep\n")
    fs.symlinkSync("/etc/xc-copyup", path.join(etc, "link"))
    fs.writeFileSync(path.join(etc, "rw"), "orig\n")
    const r = await runIt(b)
    expect(r.err).toBe("")
    // The tmpfs's root takes the mode of the /etc it covers (runc chmods it), not tmpfs's 1777.
    expect(r.out).toBe("755\nfrom-image\ndeep\n/etc/xc-copyup\n604 1234 5678\n750 0 0\nchanged\n1\n")
    expect(fs.readFileSync(path.join(etc, "rw"), "utf8")).toBe("orig\n")
    expect(fs.existsSync(path.join(etc, "newfile"))).toBe(false)
    expect(expectNoTrace(root, r.id)).toEqual([])
  })

  it("tmpcopyup: a read-only one is filled, then read-only; in a user namespace too; on a non-tmpfs it is a ConfigError", async () => {
    const b = bundle(
      ["sh", "-c", "cat /etc/xc-copyup; touch /etc/x 2>/dev/null || echo read-only"],
      (s) => withUserNs(100000)({ ...s, mounts: [...(s.mounts ?? []), { destination: "/etc", type: "tmpfs", source: "tmpfs", options: ["tmpcopyup", "ro", "nosuid"] }] }),
      true,
    )
    fs.writeFileSync(path.join(b.dir, "rootfs", "etc", "xc-copyup"), "from-image\n")
    // The image is the user namespace's: its root must be able to read it.
    const { execFileSync } = await import("node:child_process")
    execFileSync("chown", ["-R", "100000:100000", path.join(b.dir, "rootfs")])
    const r = await runIt(b)
    expect(r.err).toBe("")
    expect(r.out).toBe("from-image\nread-only\n")
    const bad = bundle(["true"], (s) => ({ ...s, mounts: [...(s.mounts ?? []), { destination: "/mnt", type: "bind", source: "/tmp", options: ["rbind", "tmpcopyup"] }] }))
    const n = (bad.spec.mounts ?? []).length - 1
    const id = uniq("cu")
    await expect(create({ root, id, bundle: bad.dir })).rejects.toMatchObject({ _tag: "ConfigError", path: `mounts[${n}].options[1]`, reason: expect.stringContaining("tmpfs mounts only") })
    expect(expectNoTrace(root, id)).toEqual([])
  })
})
