/**
 * Holes found from outside in what the init helper does (issue 13, ../shared/SECURITY.md "found here"
 * rows): each test builds the hostile or odd config for real and checks the container cannot use it.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import type { Spec } from "../../config/spec.ts"
import { create, dispose, run } from "../../promise.ts"
import { bundle, capture, expectNoTrace, skipReason, stateRoot, uniq, withUserNs } from "./harness.ts"

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

type Mutate = (s: Spec) => Spec
const withProcess =
  (p: Partial<NonNullable<Spec["process"]>>): Mutate =>
  (s) => ({ ...s, process: { ...s.process!, ...p } })

/** Runs a container to its end; its stdout, stderr and exit code. */
async function runIt(b: { dir: string }, opts: { noPivot?: boolean } = {}) {
  const io = capture()
  const id = uniq("si")
  try {
    const c = await run({ root, id, bundle: b.dir, stdio: io.stdio, ...opts })
    const status = await c.wait()
    await c.destroy()
    return { out: io.out(), err: io.err(), code: status?.code ?? null, id }
  } finally {
    io.close()
  }
}

describe.skipIf(skipReason)("init helper holes (issue 13)", () => {
  it("--no-pivot: a fresh procfs cannot be mounted from a new user namespace (host proc/sysfs are hidden)", async () => {
    const caps = ["CAP_SETFCAP", "CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN"]
    const b = bundle(
      ["sh", "-c", "unshare -mrpf sh -c 'mount -t proc none /proc && echo MOUNTED || echo REFUSED'"],
      withProcess({ capabilities: { bounding: caps, effective: caps, permitted: caps } }),
    )
    const r = await runIt(b, { noPivot: true })
    expect(r.out).toContain("REFUSED")
    expect(r.out).not.toContain("MOUNTED")
    expect(expectNoTrace(root, r.id)).toEqual([])
    // In a user namespace of its own the host's mounts are locked (no detach): they are covered instead.
    const u = bundle(["sh", "-c", "unshare -mrpf sh -c 'mount -t proc none /proc && echo MOUNTED || echo REFUSED'"], (s) =>
      withUserNs(300000)(withProcess({ capabilities: { bounding: caps, effective: caps, permitted: caps } })(s)),
    )
    const ru = await runIt(u, { noPivot: true })
    expect(ru.out).toContain("REFUSED")
    expect(ru.out).not.toContain("MOUNTED")
  })

  it("a startContainer hook runs as the process: its user, capabilities, no_new_privs and seccomp filter", async () => {
    const b = bundle(["true"], (s) => ({
      ...withProcess({ user: { uid: 1000, gid: 1000 }, noNewPrivileges: true })(s),
      hooks: { startContainer: [{ path: "/bin/sh", args: ["sh", "-c", "grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' /proc/self/status"] }] },
      linux: { ...s.linux, seccomp: { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["kexec_load"], action: "SCMP_ACT_ERRNO" }] } },
    }))
    const r = await runIt(b)
    const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "m").exec(r.out)?.[1]?.trim()
    expect(field("Uid")?.split(/\s+/)).toEqual(["1000", "1000", "1000", "1000"])
    expect(field("CapEff")).toBe("0000000000000000")
    expect(field("NoNewPrivs")).toBe("1")
    expect(field("Seccomp")).toBe("2")
  })

  it("rro: submounts of a read-only recursive bind are read-only too", async () => {
    const host = fs.mkdtempSync(path.join(os.tmpdir(), "xc-rro-"))
    fs.mkdirSync(path.join(host, "sub"))
    execFileSync("mount", ["-t", "tmpfs", "tmpfs", path.join(host, "sub")])
    try {
      const b = bundle(["sh", "-c", "touch /mnt/top 2>/dev/null && echo TOP-WRITABLE; touch /mnt/sub/x 2>/dev/null && echo SUB-WRITABLE; echo done"], (s) => ({
        ...s,
        mounts: [...(s.mounts ?? []), { destination: "/mnt", type: "bind", source: host, options: ["rbind", "rro", "rnosuid"] }],
      }))
      const r = await runIt(b)
      expect(r.out).toContain("done")
      expect(r.out).not.toContain("WRITABLE")
      expect(fs.readdirSync(host)).toEqual(["sub"])
      expect(fs.readdirSync(path.join(host, "sub"))).toEqual([])
    } finally {
      execFileSync("umount", [path.join(host, "sub")])
      fs.rmSync(host, { recursive: true })
    }
  })

  it("a recursive or idmap mount option we do not implement is a ConfigError naming the mount and the option", async () => {
    // idmap/ridmap are implemented since issue 18: without mappings they are refused naming the mount's uidMappings.
    for (const bad of ["rmand", "ridmap", "idmap", "rsync"]) {
      const b = bundle(["true"], (s) => ({ ...s, mounts: [...(s.mounts ?? []), { destination: "/mnt", type: "bind", source: "/tmp", options: ["rbind", bad] }] }))
      const n = (b.spec.mounts ?? []).length - 1
      const id = uniq("opt")
      const at = bad.includes("idmap") ? { path: `mounts[${n}].uidMappings`, reason: expect.stringContaining("uidMappings") } : { path: `mounts[${n}].options[1]`, reason: expect.stringContaining(bad) }
      await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "ConfigError", ...at })
      expect(expectNoTrace(root, id)).toEqual([])
    }
  })

  it("options podman and containerd write are accepted (flags, propagation, fs data)", async () => {
    const b = bundle(["true"], (s) => ({
      ...s,
      mounts: [
        ...(s.mounts ?? []),
        { destination: "/mnt", type: "bind", source: "/tmp", options: ["rbind", "rprivate", "nosuid", "nodev", "ro", "defaults"] },
        { destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "noexec", "mode=755", "size=65536k", "lazytime", "rnoatime"] },
      ],
    }))
    const r = await runIt(b)
    expect(r.code).toBe(0)
  })

  it("proc mounted through a symlink in the image is refused", async () => {
    const b = bundle(["true"], undefined, true)
    const rootfs = path.join(b.dir, "rootfs")
    fs.rmSync(path.join(rootfs, "proc"), { recursive: true, force: true })
    fs.mkdirSync(path.join(rootfs, "elsewhere"))
    fs.symlinkSync("elsewhere", path.join(rootfs, "proc"))
    const id = uniq("plink")
    await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({
      _tag: "InitFailed",
      op: "mount",
      path: expect.stringContaining('filesystem "proc" must be mounted on ordinary directory'),
    })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("a cwd that cannot exist fails create, naming it", async () => {
    for (const cwd of ["/etc/passwd", "/etc/passwd/below"]) {
      const b = bundle(["true"], withProcess({ cwd }))
      const id = uniq("cwd")
      await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ _tag: "InitFailed", path: cwd, errno: "ENOTDIR" })
      expect(expectNoTrace(root, id)).toEqual([])
    }
  })

  it("a missing cwd is created, and a root-only cwd works for a non-root user (chdir while privileged)", async () => {
    const b = bundle(["sh", "-c", "pwd; id -u"], withProcess({ cwd: "/made/by/init" }), true)
    expect((await runIt(b)).out).toBe("/made/by/init\n0\n")
    const b2 = bundle(["sh", "-c", "pwd; id -u"], withProcess({ cwd: "/secret", user: { uid: 1000, gid: 1000 } }), true)
    fs.mkdirSync(path.join(b2.dir, "rootfs", "secret"), { mode: 0o700 })
    fs.chmodSync(path.join(b2.dir, "rootfs", "secret"), 0o700)
    expect((await runIt(b2)).out).toBe("/secret\n1000\n")
  })

  it("tmpfs over /proc: the error names /proc", async () => {
    const b = bundle(["true"], (s) => ({ ...s, mounts: (s.mounts ?? []).map((m) => (m.destination === "/proc" ? { destination: "/proc", type: "tmpfs", source: "tmpfs" } : m)) }))
    const id = uniq("tproc")
    await expect(create({ root, id, bundle: b.dir })).rejects.toMatchObject({ path: expect.stringMatching(/^\/proc\b/) })
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("a 1 MB environment and 70 KB of annotations are accepted, as runc does", async () => {
    const env = Array.from({ length: 100 }, (_, i) => `V${i}=${"x".repeat(10000)}`)
    const annotations = Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`org.example.a${i}`, "y".repeat(1000)]))
    const b = bundle(["sh", "-c", 'echo ${#V99}'], (s) => ({ ...withProcess({ env: [...(s.process?.env ?? []), ...env] })(s), annotations }))
    const r = await runIt(b)
    expect(r.out).toBe("10000\n")
  })

  it("past the helper's bounds, the error is a ConfigError naming the field and the limit, and nothing is left", async () => {
    const env = Array.from({ length: 700 }, (_, i) => `V${i}=${"x".repeat(10000)}`)
    const b = bundle(["true"])
    const huge = { ...b.spec, root: { path: b.spec.root!.path }, process: { ...b.spec.process!, env } }
    const id = uniq("big")
    await expect(create({ root, id, bundle: b.dir, config: huge })).rejects.toMatchObject({ _tag: "ConfigError", path: "process.env", reason: expect.stringContaining("3 MiB") })
    expect(expectNoTrace(root, id)).toEqual([])
    const annotations = { big: "a".repeat(4 << 20) }
    const id2 = uniq("big")
    await expect(create({ root, id: id2, bundle: b.dir, config: { ...b.spec, annotations } })).rejects.toMatchObject({ _tag: "ConfigError", path: "annotations" })
    expect(expectNoTrace(root, id2)).toEqual([])
  })
})
