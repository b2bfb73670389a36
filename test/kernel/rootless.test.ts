/**
 * Issue 18, rootless on this host: an unprivileged user (made here, with /etc/subuid and /etc/subgid
 * ranges) runs containers through bin/xcontainer and the library's run(), as runc's rootless mode
 * (`spec --rootless`, run under `runuser`): a user namespace mapping the user to 0, the state under
 * $XDG_RUNTIME_DIR, no cgroups (this v1 host's hierarchies are root's), and bad input refused with
 * the field or path named and nothing left behind.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runcSpec } from "../../cli/spec-command.ts"
import type { Spec } from "../../config/spec.ts"
import { defaultSpec } from "../../config/default-spec.ts"
import { makeBundle } from "../../examples/make-bundle.ts"
import { skipReason as kernelSkip, uniq } from "./harness.ts"
import { ensureRootlessUser, ROOTLESS_USER, rootlessSkip, type RootlessUser } from "./rootless-user.ts"

const REPO = path.resolve(import.meta.dirname, "..", "..")
const CLI = path.join(REPO, "bin", "xcontainer")
const skip = kernelSkip ?? rootlessSkip
if (skip && !kernelSkip) console.warn(`SKIPPING rootless tests: ${skip}`)

let user: RootlessUser
/** $XDG_RUNTIME_DIR of the test user (private to it, as pam_systemd makes one). */
let xdg: string

/** runc's `spec --rootless` for this user, running `args` over the shared busybox rootfs. */
const rootlessSpec =
  (args: readonly string[], edit: (s: Spec) => Spec = (s) => s) =>
  (s: Spec): Spec => {
    const r = runcSpec({ cgroupNs: false, rootless: { uid: user.uid, gid: user.gid } })
    return edit({ ...r, root: s.root!, process: { ...r.process!, terminal: false, args: [...args] } })
  }

/** Container ids 1..65535 from the user's subordinate range, 0 from its own id (podman's default map). */
const wideMaps = (s: Spec): Spec => ({
  ...s,
  linux: {
    ...s.linux,
    uidMappings: [
      { containerID: 0, hostID: user.uid, size: 1 },
      { containerID: 1, hostID: user.subuid, size: 65535 },
    ],
    gidMappings: [
      { containerID: 0, hostID: user.gid, size: 1 },
      { containerID: 1, hostID: user.subgid, size: 65535 },
    ],
  },
})

/** bin/xcontainer as the user. Output through files: a created container keeps our stdio open, and a pipe would wait for it. */
function asUser(args: readonly string[], env: Record<string, string> = { XDG_RUNTIME_DIR: xdg }, cwd = base) {
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`)
  const [out, err] = [path.join(base, uniq("out")), path.join(base, uniq("err"))]
  const fds = [fs.openSync(out, "w+"), fs.openSync(err, "w+")] as const
  try {
    const r = spawnSync("runuser", ["-u", ROOTLESS_USER, "--", "env", ...envArgs, CLI, ...args], { cwd, stdio: ["ignore", fds[0], fds[1]], timeout: 60_000 })
    return { status: r.status, out: fs.readFileSync(out, "utf8"), err: fs.readFileSync(err, "utf8") }
  } finally {
    for (const fd of fds) fs.closeSync(fd)
    for (const f of [out, err]) fs.rmSync(f, { force: true })
  }
}

/**
 * The user's bundles live apart from test/.work (private to root under the test's umask), over a busybox
 * rootfs of their own that everyone may read, as a user's image store would be.
 */
let base: string
function userBundle(args: readonly string[], edit?: (s: Spec) => Spec): { dir: string } {
  const dir = path.join(base, uniq("bundle"))
  fs.mkdirSync(dir)
  const spec = rootlessSpec(args, edit)({ ...defaultSpec(args), root: { path: path.join(base, "image", "rootfs"), readonly: true } })
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(spec))
  spawnSync("chown", ["-R", `${user.uid}:${user.gid}`, dir])
  return { dir }
}

const stateDir = () => path.join(xdg, "xcontainer")

describe.skipIf(skip)("rootless: an unprivileged user runs containers (issue 18)", () => {
  beforeAll(() => {
    user = ensureRootlessUser()
    base = fs.mkdtempSync(path.join(os.tmpdir(), "xc-rootless-"))
    makeBundle(path.join(base, "image"))
    spawnSync("chmod", ["-R", "a+rX", base])
    xdg = path.join(base, "xdg")
    fs.mkdirSync(xdg, { mode: 0o700 })
    fs.chownSync(xdg, user.uid, user.gid)
  })
  afterAll(() => {
    if (base) fs.rmSync(base, { recursive: true, force: true })
  })

  it("create/start/exec/kill/delete via bin/xcontainer: state under $XDG_RUNTIME_DIR, user mapped to 0, no host privilege", () => {
    const b = userBundle(["sleep", "30"])
    const id = uniq("rl")
    const c = asUser(["create", "--bundle", b.dir, id])
    expect(c.err).toBe("")
    expect(c.status).toBe(0)
    // runc: $XDG_RUNTIME_DIR/runc; ours the same place under our name, owned by the user.
    expect(fs.statSync(path.join(stateDir(), id)).uid).toBe(user.uid)
    expect(asUser(["start", id]).status).toBe(0)
    const st = JSON.parse(asUser(["state", id]).out) as { pid: number; status: string }
    expect(st.status).toBe("running")
    const status = fs.readFileSync(`/proc/${st.pid}/status`, "utf8")
    // The helper never setuid: every host id of the init is the user's.
    expect(status).toMatch(new RegExp(`^Uid:\\s+${user.uid}\\s+${user.uid}\\s+${user.uid}\\s+${user.uid}$`, "m"))
    expect(status).toMatch(new RegExp(`^Gid:\\s+${user.gid}\\s+${user.gid}\\s+${user.gid}\\s+${user.gid}$`, "m"))
    // Its capabilities are those of its own user namespace, a child of the host's: none count there.
    expect(fs.readlinkSync(`/proc/${st.pid}/ns/user`)).not.toBe(fs.readlinkSync("/proc/self/ns/user"))
    expect(fs.readFileSync(`/proc/${st.pid}/uid_map`, "utf8").trim().split(/\s+/)).toEqual(["0", String(user.uid), "1"])
    expect(fs.readFileSync(`/proc/${st.pid}/setgroups`, "utf8").trim()).toBe("deny")
    const e = asUser(["exec", id, "id"])
    expect(e.status).toBe(0)
    expect(e.out).toContain("uid=0(root) gid=0(root)")
    expect(asUser(["kill", id, "KILL"]).status).toBe(0)
    for (let i = 0; i < 50 && fs.existsSync(`/proc/${st.pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${st.pid}/status`, "utf8")); i++)
      spawnSync("sleep", ["0.1"])
    expect(asUser(["delete", id]).status).toBe(0)
    expect(fs.existsSync(path.join(stateDir(), id))).toBe(false)
  }, 60_000)

  it("run with ids 0..65535 inside: newuidmap/newgidmap write the maps from /etc/subuid, /etc/subgid", () => {
    const b = userBundle(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id"], wideMaps)
    const id = uniq("rlw")
    const r = asUser(["run", "--bundle", b.dir, id])
    expect(r.err).toBe("")
    expect(r.status).toBe(0)
    const lines = r.out.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" "))
    expect(lines.slice(0, 4)).toEqual([`0 ${user.uid} 1`, `1 ${user.subuid} 65535`, `0 ${user.gid} 1`, `1 ${user.subgid} 65535`])
    expect(lines[4]).toContain("uid=0(root)")
    expect(fs.existsSync(path.join(stateDir(), id))).toBe(false)
  }, 60_000)

  it("the library's run() as the user (node under runuser)", () => {
    const b = userBundle(["id"])
    const root = path.join(xdg, "lib")
    const script = path.join(base, `${uniq("lib")}.mts`)
    fs.writeFileSync(
      script,
      `import { run } from ${JSON.stringify(path.join(REPO, "index.ts"))}
const c = await run({ root: ${JSON.stringify(root)}, id: "lib1", bundle: ${JSON.stringify(b.dir)} })
const st = await c.wait()
await c.destroy()
process.stderr.write(JSON.stringify(st) + "\\n")
process.exit(0)
`,
      { mode: 0o644 },
    )
    try {
      const r = spawnSync("runuser", ["-u", ROOTLESS_USER, "--", path.join(REPO, "node_modules", ".bin", "tsx"), script], { encoding: "utf8", timeout: 90_000 })
      expect(r.stdout).toContain("uid=0(root) gid=0(root)")
      expect(r.stderr.trim().split("\n").pop()).toBe('{"code":0,"signal":null}')
      expect(fs.readdirSync(root)).toEqual([])
    } finally {
      fs.rmSync(script, { force: true })
    }
  }, 120_000)

  it("checkpoint and restore are refused with the reason (CRIU needs root or CAP_CHECKPOINT_RESTORE), the container untouched", () => {
    const b = userBundle(["sleep", "30"])
    const id = uniq("rlc")
    expect(asUser(["run", "-d", "--bundle", b.dir, id]).status).toBe(0)
    try {
      const images = path.join(xdg, uniq("images"))
      const c = asUser(["checkpoint", "--image-path", images, id])
      expect(c.status).toBe(1)
      expect(c.err).toContain("CAP_CHECKPOINT_RESTORE")
      expect(JSON.parse(asUser(["state", id]).out).status).toBe("running")
      const r = asUser(["restore", "--image-path", images, "--bundle", b.dir, uniq("rlr")])
      expect(r.status).toBe(1)
      expect(r.err).toContain("CAP_CHECKPOINT_RESTORE")
      expect(fs.readdirSync(stateDir())).toEqual([id])
      fs.rmSync(images, { recursive: true, force: true })
    } finally {
      asUser(["delete", "-f", id])
    }
    expect(fs.existsSync(path.join(stateDir(), id))).toBe(false)
  }, 60_000)

  describe("bad input: a typed error naming the field or path, nothing left behind", () => {
    const refused = (edit: (s: Spec) => Spec, env?: Record<string, string>, extra: readonly string[] = []) => {
      const b = userBundle(["true"], edit)
      const id = uniq("bad")
      const r = asUser([...extra, "create", "--bundle", b.dir, id], env)
      expect(r.status).toBe(1)
      expect(fs.existsSync(path.join(stateDir(), id))).toBe(false)
      return r.err
    }

    it("a host range outside /etc/subuid", () => {
      const err = refused((s) => {
        const w = wideMaps(s)
        return { ...w, linux: { ...w.linux, uidMappings: [w.linux!.uidMappings![0]!, { containerID: 1, hostID: user.subuid + 70000, size: 10 }] } }
      })
      expect(err).toContain("linux.uidMappings[1]")
      expect(err).toContain("/etc/subuid")
    })

    it("overlapping ranges", () => {
      const err = refused((s) => {
        const w = wideMaps(s)
        return { ...w, linux: { ...w.linux, gidMappings: [...w.linux!.gidMappings!, { containerID: 5, hostID: user.subgid + 100, size: 1 }] } }
      })
      expect(err).toContain("linux.gidMappings[2]")
      expect(err).toContain("overlap")
    })

    it("a rootfs the user cannot read", () => {
      const dir = path.join(base, uniq("private"))
      fs.mkdirSync(path.join(dir, "rootfs"), { recursive: true, mode: 0o700 })
      fs.chmodSync(dir, 0o700)
      try {
        const err = refused((s) => ({ ...s, root: { path: path.join(dir, "rootfs"), readonly: true } }))
        expect(err).toContain(path.join(dir, "rootfs"))
        expect(err).toMatch(/root\.path|EACCES/)
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    })

    it("a state root the user cannot write", () => {
      const err = refused((s) => s, undefined, ["--root", "/run/xc-rootless-denied"])
      expect(err).toContain("/run/xc-rootless-denied")
      expect(err).toContain("EACCES")
      expect(fs.existsSync("/run/xc-rootless-denied")).toBe(false)
    })

    it("a memory limit no writable cgroup can honour (runc: cannot set memory limit)", () => {
      const err = refused((s) => ({ ...s, linux: { ...s.linux, resources: { memory: { limit: 64 << 20 } } } }))
      expect(err).toContain("linux.resources.memory")
      expect(err).toContain("not writable")
    })

    it("no user namespace", () => {
      const err = refused((s) => {
        const { uidMappings: _u, gidMappings: _g, ...linux } = s.linux ?? {}
        return { ...s, linux: { ...linux, namespaces: (s.linux?.namespaces ?? []).filter((n) => n.type !== "user") } }
      })
      expect(err).toContain("linux.namespaces")
    })
  })
})
