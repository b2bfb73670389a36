/** runc's decisions around CRIU's mounts and configuration file, without a kernel or CRIU (effects/criu-mounts.ts). */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import type { Spec } from "../../config/spec.ts"
import { hostBinds } from "../../effects/checkpoint.ts"
import { criuConfigFile, inRootfs, prepareRestoreMountpoints } from "../../effects/criu-mounts.ts"

const dirs: string[] = []
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "xc-criu-mounts-"))
  dirs.push(d)
  return d
}
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })))

describe("inRootfs (securejoin)", () => {
  it("follows symlinks with the rootfs as /, keeps what does not exist, and stops .. at the root", () => {
    const root = tmp()
    fs.mkdirSync(path.join(root, "mnt", "real"), { recursive: true })
    fs.symlinkSync("/mnt/real", path.join(root, "abs"))
    fs.symlinkSync("mnt/real", path.join(root, "rel"))
    fs.symlinkSync("../../../../etc", path.join(root, "mnt", "up"))
    expect(inRootfs(root, "/abs")).toBe("/mnt/real")
    expect(inRootfs(root, "/rel/sub/x")).toBe("/mnt/real/sub/x")
    expect(inRootfs(root, "/mnt/up/passwd")).toBe("/etc/passwd")
    expect(inRootfs(root, "/../../missing/./a")).toBe("/missing/a")
    expect(inRootfs("/nonexistent/rootfs", "/data")).toBe("/data")
  })

  it("a symlink loop leaves the destination as written (runc keeps it when securejoin fails)", () => {
    const root = tmp()
    fs.symlinkSync("/b", path.join(root, "a"))
    fs.symlinkSync("/a", path.join(root, "b"))
    expect(inRootfs(root, "/a/x")).toBe("/a/x")
  })

  it("hostBinds keys a bind at a symlink by the path it resolves to, where CRIU finds the mount", () => {
    const root = tmp()
    fs.mkdirSync(path.join(root, "mnt", "real"), { recursive: true })
    fs.symlinkSync("/mnt/real", path.join(root, "link"))
    const spec = { ...defaultSpec(["sh"]), mounts: [{ destination: "/link", type: "bind", source: "/srv/data", options: ["rbind"] }] }
    expect(Object.fromEntries(hostBinds(spec, root, "/b", {}, "v1"))).toEqual({ "/mnt/real": "/srv/data" })
  })
})

describe("criuConfigFile (org.criu.config)", () => {
  it("names the annotation's file, none for an empty one, /etc/criu/runc.conf without it (runc's handleCriuConfigurationFile)", () => {
    expect(criuConfigFile({ "org.criu.config": "/etc/criu/mine.conf" })).toBe("/etc/criu/mine.conf")
    expect(criuConfigFile({ "org.criu.config": "" })).toBeUndefined()
    expect(criuConfigFile({ other: "x" })).toBe("/etc/criu/runc.conf")
    expect(criuConfigFile(undefined)).toBe("/etc/criu/runc.conf")
  })
})

describe("prepareRestoreMountpoints", () => {
  const withMounts = (mounts: NonNullable<Spec["mounts"]>): Spec => ({ ...defaultSpec(["sh"]), mounts })

  it("makes the mountpoints in the rootfs, a file for a file's bind, and those nested in a bind in its source", () => {
    const [root, outer, inner, bundle] = [tmp(), tmp(), tmp(), tmp()]
    fs.writeFileSync(path.join(bundle, "hosts"), "")
    const spec = withMounts([
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/proc/sys/x", type: "tmpfs", source: "tmpfs" },
      { destination: "/data", type: "bind", source: outer, options: ["rbind"] },
      { destination: "/data/sub/deep", type: "bind", source: inner, options: ["bind"] },
      { destination: "/etc/hosts", type: "none", source: "hosts", options: ["bind"] },
      { destination: "/scratch", type: "tmpfs", source: "tmpfs" },
      { destination: "/scratch/in", type: "bind", source: inner, options: ["rbind"] },
      { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup" },
    ])
    Effect.runSync(prepareRestoreMountpoints(spec, root, bundle))
    expect(fs.statSync(path.join(root, "proc")).isDirectory()).toBe(true)
    // In proc and in a tmpfs: the kernel, or CRIU with the tmpfs's content, provides those.
    expect(fs.existsSync(path.join(root, "proc", "sys"))).toBe(false)
    expect(fs.existsSync(path.join(root, "scratch", "in"))).toBe(false)
    expect(fs.statSync(path.join(root, "data")).isDirectory()).toBe(true)
    // Nested in the /data bind: made in its source, not in the rootfs under it.
    expect(fs.statSync(path.join(outer, "sub", "deep")).isDirectory()).toBe(true)
    expect(fs.existsSync(path.join(root, "data", "sub"))).toBe(false)
    expect(fs.statSync(path.join(root, "etc", "hosts")).isFile()).toBe(true)
    expect(fs.statSync(path.join(root, "scratch")).isDirectory()).toBe(true)
    expect(fs.existsSync(path.join(root, "sys"))).toBe(false)
  })

  it("follows a symlinked destination inside the rootfs, never out of it", () => {
    const [root, src] = [tmp(), tmp()]
    const outside = tmp()
    fs.symlinkSync(outside, path.join(root, "escape"))
    Effect.runSync(prepareRestoreMountpoints(withMounts([{ destination: "/escape/x", type: "bind", source: src, options: ["rbind"] }]), root, "/b"))
    expect(fs.readdirSync(outside)).toEqual([])
    expect(fs.statSync(path.join(root, outside, "x")).isDirectory()).toBe(true)
  })

  it("a mountpoint that cannot be made is a SyscallError naming it", () => {
    const [root, src] = [tmp(), tmp()]
    fs.writeFileSync(path.join(root, "file"), "")
    const r = Effect.runSync(Effect.result(prepareRestoreMountpoints(withMounts([{ destination: "/file/x", type: "bind", source: src, options: ["rbind"] }]), root, "/b")))
    expect(r).toMatchObject({ _tag: "Failure", failure: { _tag: "SyscallError", syscall: "mkdir", path: path.join(root, "file", "x") } })
  })
})

describe("destinations below a bind", () => {
  it("a symlink in the outer bind's source is followed there, with the container's / as its root", () => {
    const [root, outer, inner] = [tmp(), tmp(), tmp()]
    fs.mkdirSync(path.join(root, "real"), { recursive: true })
    fs.mkdirSync(path.join(outer, "target"), { recursive: true })
    // Relative: stays in the outer source; absolute: from the container's root, i.e. the rootfs.
    fs.symlinkSync("target", path.join(outer, "rel"))
    fs.symlinkSync("/real", path.join(outer, "abs"))
    const binds = [{ dest: "/data", source: outer }]
    expect(inRootfs(root, "/data/rel/x", binds)).toBe("/data/target/x")
    expect(inRootfs(root, "/data/abs", binds)).toBe("/real")
    const spec = {
      ...defaultSpec(["sh"]),
      mounts: [
        { destination: "/data", type: "bind", source: outer, options: ["rbind"] },
        { destination: "/data/rel", type: "bind", source: inner, options: ["rbind"] },
      ],
    }
    expect(Object.fromEntries(hostBinds(spec, root, "/b", {}, "v1"))).toEqual({ "/data": outer, "/data/target": inner })
    Effect.runSync(prepareRestoreMountpoints(spec, root, "/b"))
    expect(fs.existsSync(path.join(root, "data", "target"))).toBe(false)
    expect(fs.lstatSync(path.join(outer, "rel")).isSymbolicLink()).toBe(true)
  })
})
