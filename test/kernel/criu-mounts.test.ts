/**
 * The mounts CRIU is told about on the real kernel (runc's addCriuDumpMount, addCriuRestoreMount,
 * prepareCriuRestoreMounts, handleCriuConfigurationFile): a bind whose destination is a symlink in
 * the rootfs, binds nested in other mounts, and the container's own CRIU configuration file.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { dispose, restore, run } from "../../promise.ts"
import type { Spec } from "../../config/spec.ts"
import { pipes } from "./pipes.ts"
import { criuSkip, images, restoreOntoNewSource, sleep } from "./criu-fixtures.ts"
import { bundle, expectNoTrace, stateRoot, WORK, uniq } from "./harness.ts"

const skipReason = criuSkip
if (skipReason) console.warn(`SKIPPING CRIU mount tests: ${skipReason}`)

const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())

/** A shell that counts into `file` every 0.1 s. */
const countInto = (file: string) => ["sh", "-c", `i=0; while true; do echo $i > ${file}; i=$((i+1)); sleep 0.1; done`]
const hostDir = () => {
  const d = path.join(WORK, uniq("bind"))
  fs.mkdirSync(d, { recursive: true })
  return d
}
const withMounts = (...mounts: NonNullable<Spec["mounts"]>) => (s: Spec) => ({ ...s, mounts: [...(s.mounts ?? []), ...mounts] })
const bind = (destination: string, source: string) => ({ destination, type: "bind", source, options: ["rbind", "rw"] })

describe.skipIf(skipReason)("external bind mounts, where CRIU sees them", () => {
  it("a bind whose destination is a symlink in the rootfs is keyed by the path it resolves to", async () => {
    const id = uniq("crsym")
    const [src1, src2] = [hostDir(), hostDir()]
    const loop = countInto("/link/c")
    // The symlink is absolute: it resolves inside the rootfs, to /mnt/real, which is what the mountinfo shows.
    const make = (src: string) => {
      const b = bundle(loop, withMounts(bind("/link", src)), true)
      fs.mkdirSync(path.join(b.dir, "rootfs", "mnt", "real"), { recursive: true })
      fs.symlinkSync("/mnt/real", path.join(b.dir, "rootfs", "link"))
      return b
    }
    await restoreOntoNewSource({
      root, id, src1, src2, first: make(src1).dir, second: make(src2).dir,
      afterRestore: (at) => expect(Number(fs.readFileSync(path.join(src1, "c"), "utf8"))).toBe(at),
    })
  })

  it("a bind below another bind, at a symlink in the outer one's source, is keyed by where it landed", async () => {
    const id = uniq("crsym2")
    const [outer, src1, src2] = [hostDir(), hostDir(), hostDir()]
    fs.mkdirSync(path.join(outer, "target"))
    fs.symlinkSync("target", path.join(outer, "link"))
    const loop = countInto("/data/link/c")
    const mounts = (src: string) => withMounts(bind("/data", outer), bind("/data/link", src))
    await restoreOntoNewSource({ root, id, src1, src2, first: bundle(loop, mounts(src1)).dir, second: bundle(loop, mounts(src2)).dir })
  })
})

describe.skipIf(skipReason)("mountpoints of nested binds on restore", () => {
  it("a bind inside a tmpfs: restored into a rootfs that never had the mountpoints", async () => {
    const id = uniq("crtmp")
    const [src1, src2] = [hostDir(), hostDir()]
    const loop = countInto("/data/sub/c")
    const mounts = (src: string) => withMounts({ destination: "/data", type: "tmpfs", source: "tmpfs", options: ["nosuid", "mode=755"] }, bind("/data/sub", src))
    const b2 = bundle(loop, mounts(src2), true)
    expect(fs.existsSync(path.join(b2.dir, "rootfs", "data"))).toBe(false)
    await restoreOntoNewSource({ root, id, src1, src2, first: bundle(loop, mounts(src1), true).dir, second: b2.dir })
  })

  it("a bind inside another bind: the outer one's new source lacks the inner mountpoint", async () => {
    const id = uniq("crnest")
    const [outer1, outer2, src1, src2] = [hostDir(), hostDir(), hostDir(), hostDir()]
    const loop = countInto("/data/sub/c")
    const mounts = (outer: string, src: string) => withMounts(bind("/data", outer), bind("/data/sub", src))
    const b2 = bundle(loop, mounts(outer2, src2), true)
    expect(fs.existsSync(path.join(outer2, "sub"))).toBe(false)
    await restoreOntoNewSource({
      root, id, src1, src2, first: bundle(loop, mounts(outer1, src1), true).dir, second: b2.dir,
      afterRestore: () => expect(fs.statSync(path.join(outer2, "sub")).isDirectory()).toBe(true),
    })
  })
})

describe.skipIf(skipReason)("the container's CRIU configuration file (org.criu.config)", () => {
  const annotated = (file: string | undefined) => (s: Spec) => (file === undefined ? s : { ...s, annotations: { ...s.annotations, "org.criu.config": file } })
  /** A configuration file that sends CRIU's log to `log` (in the work directory): its settings win over the request's. */
  const config = (log: string) => {
    const f = path.join(WORK, uniq("criu.conf"))
    fs.writeFileSync(f, `log-file ${log}\n`)
    return f
  }

  it("the annotation names the file CRIU reads on checkpoint and on restore, each from its own config", async () => {
    const id = uniq("crconf")
    const io = await pipes()
    const c = await run({ root, id, bundle: bundle(countInto("/dev/shm/c"), annotated(config("ckpt-by-conf.log"))).dir, stdio: io.stdio })
    await sleep(200)
    const imagePath = images()
    await c.checkpoint({ imagePath })
    await c.destroy()
    expect(fs.readFileSync(path.join(imagePath, "ckpt-by-conf.log"), "utf8")).toMatch(/Dumping finished successfully/)
    expect(fs.existsSync(path.join(imagePath, "dump.log"))).toBe(false)
    const r = await restore({ root, id, bundle: bundle(countInto("/dev/shm/c"), annotated(config("rst-by-conf.log"))).dir, imagePath, stdio: io.stdio })
    expect(fs.readFileSync(path.join(imagePath, "rst-by-conf.log"), "utf8")).toMatch(/Restore finished successfully/)
    expect(fs.existsSync(path.join(imagePath, "restore.log"))).toBe(false)
    await r.destroy({ force: true })
    expect(expectNoTrace(root, id)).toEqual([])
    io.close()
  })

  it("without the annotation CRIU is pointed at /etc/criu/runc.conf (and goes on when there is none); an empty one names no file", async () => {
    const dumpLog = async (annotation: string | undefined) => {
      const id = uniq("crconf")
      const io = await pipes()
      const c = await run({ root, id, bundle: bundle(countInto("/dev/shm/c"), annotated(annotation)).dir, stdio: io.stdio })
      await sleep(200)
      const imagePath = images()
      await c.checkpoint({ imagePath })
      await c.destroy()
      expect(expectNoTrace(root, id)).toEqual([])
      io.close()
      return fs.readFileSync(path.join(imagePath, "dump.log"), "utf8")
    }
    // CRIU says at debug level which file it was given (cr-service.c setup_opts_from_req).
    expect(await dumpLog(undefined)).toContain("Would overwrite RPC settings with values from /etc/criu/runc.conf")
    expect(await dumpLog("")).not.toContain("Would overwrite RPC settings")
  })
})
