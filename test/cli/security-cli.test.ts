/**
 * Issue 13 through bin/xcontainer on the real kernel: what a hostile config.json, process.json or
 * flag could do before (run as root, truncate at a NUL, hang or eat memory on a device or FIFO,
 * flood stderr, crash on nesting, take a symlinked rootfs, widen an rlimit, log secrets) is refused
 * with a ConfigError naming the field, and nothing is left behind.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { bundle, expectNoTrace, skipReason, stateRoot, uniq } from "../kernel/harness.ts"
import type { Spec } from "../../config/spec.ts"

const BIN = path.resolve(import.meta.dirname, "..", "..", "bin", "xcontainer")
const root = skipReason ? "" : stateRoot()
const running: string[] = []

/** Runs the CLI with its output in files (a detached container keeps its stdio open). */
const xc = (args: string[], timeout = 20_000) => {
  const dir = fs.mkdtempSync(path.join(root, "io-"))
  const [out, err] = [path.join(dir, "out"), path.join(dir, "err")]
  const fds = [fs.openSync("/dev/null", "r"), fs.openSync(out, "w"), fs.openSync(err, "w")]
  const t = Date.now()
  const r = spawnSync(BIN, ["--root", root, ...args], { stdio: fds, timeout })
  fds.forEach((fd) => fs.closeSync(fd))
  const res = { code: r.status, signal: r.signal, ms: Date.now() - t, out: fs.readFileSync(out, "utf8"), err: fs.readFileSync(err, "utf8") }
  fs.rmSync(dir, { recursive: true })
  return res
}

/** A bundle whose config.json is `text` as written (numbers past 2^53 kept as typed). */
const rawBundle = (text: (s: Spec) => string) => {
  const b = bundle(["true"])
  fs.writeFileSync(path.join(b.dir, "config.json"), text(b.spec))
  return b.dir
}

/** A running container for exec (deleted after the file). */
const sleeper = () => {
  const id = uniq("sec-sleep")
  expect(xc(["run", "-d", "-b", bundle(["sleep", "60"]).dir, id]).code).toBe(0)
  running.push(id)
  return id
}

afterAll(() => {
  for (const id of running) xc(["delete", "-f", id])
})

describe.skipIf(skipReason)("issue 13 through the command line", () => {
  it("item 2: uid or gid 4294967295 ((uid_t)-1) is refused, never run as root", () => {
    for (const user of [{ uid: 4294967295, gid: 4294967295 }, { uid: 1000, gid: 4294967295 }, { uid: 0, gid: 0, additionalGids: [4294967295] }]) {
      const id = uniq("sec-uid")
      const r = xc(["run", "-b", bundle(["sh", "-c", "id -u; id -G"], (s) => ({ ...s, process: { ...s.process!, user } })).dir, id])
      expect(r).toMatchObject({ code: 1, out: "", err: expect.stringMatching(/config process\.user\.\w+(\[0\])?: uids and gids must be in range 0-2147483647/) })
      expect(expectNoTrace(root, id)).toEqual([])
    }
    const id = sleeper()
    for (const u of ["4294967295:4294967295", "4294967295", "1000:4294967295", "2147483648"])
      expect(xc(["exec", "-u", u, id, "id", "-u"])).toMatchObject({ code: 255, out: "", err: expect.stringMatching(/--user: uids and gids must be in range 0-2147483647/) })
    expect(xc(["exec", "--additional-gids", "4294967295", id, "id", "-G"])).toMatchObject({ code: 255, out: "", err: expect.stringMatching(/additionalGids\[\d+\]: uids and gids must be in range/) })
    const pj = path.join(root, uniq("process") + ".json")
    fs.writeFileSync(pj, JSON.stringify({ args: ["id", "-u"], cwd: "/", user: { uid: 4294967295, gid: 4294967295 } }))
    expect(xc(["exec", "-p", pj, id])).toMatchObject({ code: 255, out: "", err: expect.stringMatching(/process\.user\.uid: uids and gids must be in range/) })
    // The largest id runc takes still works.
    expect(xc(["exec", "-u", "2147483647:2147483647", id, "id", "-u"])).toMatchObject({ code: 0, out: "2147483647\n" })
  }, 120_000)

  it("item 8: a NUL byte in args, env or a mount destination is refused, not cut short", () => {
    const cases: [(s: Spec) => Spec, RegExp][] = [
      [(s) => ({ ...s, process: { ...s.process!, args: ["sh", "-c", "echo cut\0short"] } }), /process\.args\[2\]: contains a null byte/],
      [(s) => ({ ...s, process: { ...s.process!, args: ["sh", "-c", "echo $A"], env: ["A=b\0c"] } }), /process\.env\[0\]: contains a null byte/],
      [(s) => ({ ...s, mounts: [...(s.mounts ?? []), { destination: "/tmp\0/../../etc", type: "tmpfs", source: "tmpfs" }] }), /mounts\[\d+\]\.destination: contains a null byte/],
    ]
    for (const [mutate, err] of cases) {
      const id = uniq("sec-nul")
      expect(xc(["run", "-b", bundle(["true"], mutate).dir, id])).toMatchObject({ code: 1, out: "", err: expect.stringMatching(err) })
      expect(expectNoTrace(root, id)).toEqual([])
    }
    const id = sleeper()
    const pj = path.join(root, uniq("process") + ".json")
    fs.writeFileSync(pj, JSON.stringify({ args: ["sh", "-c", "echo $A"], env: ["A=b\0c"], cwd: "/", user: { uid: 0, gid: 0 } }))
    expect(xc(["exec", "-p", pj, id])).toMatchObject({ code: 255, out: "", err: expect.stringMatching(/process\.env\[0\]: contains a null byte/) })
  }, 120_000)

  it("item 9: config.json, exec -p and update -r on a device or a FIFO fail at once", () => {
    for (const target of ["/dev/zero", "/dev/urandom", "fifo"]) {
      const b = bundle(["true"])
      const file = path.join(b.dir, "config.json")
      fs.rmSync(file)
      if (target === "fifo") spawnSync("mkfifo", [file])
      else fs.symlinkSync(target, file)
      const id = uniq("sec-file")
      const r = xc(["create", "-b", b.dir, id], 15_000)
      expect(r).toMatchObject({ code: 1, signal: null, err: expect.stringMatching(/config\.json: the file is not a regular file/) })
      expect(r.ms).toBeLessThan(10_000)
      expect(expectNoTrace(root, id)).toEqual([])
    }
    const big = bundle(["true"])
    fs.writeFileSync(path.join(big.dir, "config.json"), Buffer.alloc(9 * 1024 * 1024, 0x20))
    expect(xc(["create", "-b", big.dir, uniq("sec-big")]).err).toMatch(/larger than 8388608 bytes/)

    const id = sleeper()
    const fifo = path.join(root, uniq("fifo"))
    spawnSync("mkfifo", [fifo])
    const link = path.join(root, uniq("zero"))
    fs.symlinkSync("/dev/zero", link)
    for (const f of [fifo, link]) {
      const e = xc(["exec", "-p", f, id], 15_000)
      expect(e).toMatchObject({ code: 255, signal: null, err: expect.stringMatching(/--process: .*(not a regular file|is a symbolic link)/) })
      const u = xc(["update", "-r", f, id], 15_000)
      expect(u).toMatchObject({ code: 1, signal: null, err: expect.stringMatching(/--resources: .*(not a regular file|is a symbolic link)/) })
    }
    // containerd pipes the resources in on stdin ("-"): still read, but capped.
    const viaStdin = (input: string | Buffer) => spawnSync(BIN, ["--root", root, "update", "-r", "-", id], { input, encoding: "utf8", timeout: 20_000 })
    expect(viaStdin(JSON.stringify({ pids: { limit: 123 } }))).toMatchObject({ status: 0 })
    expect(viaStdin(Buffer.alloc(9 * 1024 * 1024, 0x20))).toMatchObject({ status: 1, stderr: expect.stringMatching(/--resources: stdin is larger than 8388608 bytes/) })
  }, 120_000)

  it("item 11: a huge value is echoed cut short; deep nesting and --preserve-fds 99999999999 are ConfigErrors", () => {
    const huge = "a".repeat(4 * 1024 * 1024)
    const r = xc(["run", "-b", bundle(["true"], (s) => ({ ...s, process: { ...s.process!, cwd: huge } })).dir, uniq("sec-huge")])
    expect(r).toMatchObject({ code: 1, err: expect.stringMatching(/config process\.cwd: \\?"a+…\[\d+ characters cut\]…a+\\?" is not an absolute path/) })
    expect(r.err.length).toBeLessThan(1000)
    const deep = rawBundle((s) => JSON.stringify(s).replace(/^\{/, `{"annotations":{"x":${"[".repeat(3000)}${"]".repeat(3000)}},`))
    expect(xc(["run", "-b", deep, uniq("sec-deep")])).toMatchObject({ code: 1, err: expect.stringMatching(/config annotations\.x\[0\]\S*: nests deeper than 64 levels/) })
    for (const cmd of [["run", "-b", bundle(["true"]).dir], ["create", "-b", bundle(["true"]).dir]]) {
      const id = uniq("sec-fds")
      expect(xc([...cmd, "--preserve-fds", "99999999999", id])).toMatchObject({ code: 1, err: expect.stringMatching(/config --preserve-fds: \\?"99999999999\\?" is not a count of fds from 0 to 1048576/) })
      expect(expectNoTrace(root, id)).toEqual([])
    }
    expect(xc(["exec", "--preserve-fds", "99999999999", sleeper(), "true"])).toMatchObject({ code: 255, err: expect.stringMatching(/--preserve-fds/) })
  }, 120_000)

  it("item 14a: a symlinked rootfs is refused as runc refuses it", () => {
    const b = bundle(["true"], undefined, true)
    fs.symlinkSync("rootfs", path.join(b.dir, "linked"))
    const spec = JSON.parse(fs.readFileSync(path.join(b.dir, "config.json"), "utf8")) as Spec
    fs.writeFileSync(path.join(b.dir, "config.json"), JSON.stringify({ ...spec, root: { path: "linked" } }))
    const id = uniq("sec-rootfs")
    expect(xc(["run", "-b", b.dir, id])).toMatchObject({ code: 1, err: expect.stringMatching(/config root\.path: invalid rootfs: not an absolute path, or a symlink/) })
    expect(expectNoTrace(root, id)).toEqual([])
  }, 60_000)

  it("item 14b: an rlimit of 2^64 or more is refused; 2^64-1 is RLIM_INFINITY", () => {
    const rlimit = (hard: string) => rawBundle((s) => JSON.stringify({ ...s, process: { ...s.process!, args: ["sh", "-c", "ulimit -H -c"], rlimits: [{ type: "RLIMIT_CORE", soft: 0, hard: 1 }] } }).replace('"hard":1', `"hard":${hard}`))
    for (const big of ["18446744073709551616", "99999999999999999999999"]) {
      const id = uniq("sec-rlim")
      expect(xc(["run", "-b", rlimit(big), id])).toMatchObject({ code: 1, out: "", err: expect.stringMatching(/config process\.rlimits\[0\]\.hard: must be an integer from 0 to 18446744073709551615/) })
      expect(expectNoTrace(root, id)).toEqual([])
    }
    expect(xc(["run", "-b", rlimit("18446744073709551615"), uniq("sec-rlim")])).toMatchObject({ code: 0, out: "unlimited\n" })
    expect(xc(["run", "-b", rlimit("4096"), uniq("sec-rlim")])).toMatchObject({ code: 0, out: "8\n" })
  }, 60_000)

  it("item 14c: the debug log shows the plan without env values", () => {
    const log = path.join(root, uniq("debug") + ".log")
    const b = bundle(["true"], (s) => ({ ...s, process: { ...s.process!, env: [...(s.process!.env ?? []), "API_TOKEN=hunter2-secret"] }, hooks: { createContainer: [{ path: "/bin/true", env: ["HOOK_KEY=hook-secret"] }] } }))
    expect(xc(["--debug", "--log", log, "run", "-b", b.dir, uniq("sec-log")]).code).toBe(0)
    const text = fs.readFileSync(log, "utf8")
    expect(text).toMatch(/init plan/)
    expect(text).toMatch(/API_TOKEN=<redacted>/)
    expect(text).toMatch(/HOOK_KEY=<redacted>/)
    expect(text).not.toMatch(/hunter2-secret|hook-secret/)
  }, 60_000)
})
