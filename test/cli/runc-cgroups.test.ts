/**
 * The cgroup side of runc's behaviour (issue 14) and two bounded waits (issue 19), from the command
 * line on the real kernel: `delete --force` of a container that made sub-cgroups, create's warning on
 * a non-empty cgroup and its refusal of a frozen one, the freezer's bounded waits, `exec --cgroup`,
 * runc's `update` flags and write orders, device access letters, and a console socket that never answers.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { bundle, cgroupDirOf, cgroupLayout, expectNoTrace, skipReason, stateRoot, stuckListener, uniq } from "../kernel/harness.ts"

const BIN = path.resolve(import.meta.dirname, "..", "..", "bin", "xcontainer")
const root = skipReason ? "" : stateRoot()
const v1Why = skipReason ?? (cgroupLayout === "v2" ? "these cases write cgroup v1 files (freezer.state, memory.memsw …)" : undefined)
if (v1Why && !skipReason) console.warn(`SKIPPING cgroup v1 cases: ${v1Why}`)

/** One CLI call: status, stdout, stderr (stdio in files: a detached container keeps what it is given), and how long it took. */
const xc = (args: string[], env: Record<string, string> = {}) =>
  new Promise<{ code: number; out: string; err: string; ms: number }>((resolve) => {
    const dir = fs.mkdtempSync(path.join(root, "io-"))
    const fds = [fs.openSync("/dev/null", "r"), fs.openSync(path.join(dir, "out"), "w"), fs.openSync(path.join(dir, "err"), "w")]
    const t0 = Date.now()
    // Asynchronously, and bounded: a hang is a failure, not a stuck worker.
    const child = spawn(BIN, ["--root", root, ...args], { stdio: fds, timeout: 20_000, env: { ...process.env, ...env } })
    child.on("close", (code, signal) => {
      fds.forEach((fd) => fs.closeSync(fd))
      const res = {
        code: code ?? 128 + (signal ? os.constants.signals[signal] : 0),
        out: fs.readFileSync(path.join(dir, "out"), "utf8"),
        err: fs.readFileSync(path.join(dir, "err"), "utf8"),
        ms: Date.now() - t0,
      }
      fs.rmSync(dir, { recursive: true })
      resolve(res)
    })
  })

/** The v1 hierarchies and the unified one, as directories (symlinked co-mounts skipped). */
const hierarchies = () =>
  fs
    .readdirSync("/sys/fs/cgroup", { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => path.join("/sys/fs/cgroup", e.name))

/** Removes `rel` (absolute below each hierarchy's root) everywhere, children first, thawing frozen ones. */
const rmCgroup = (rel: string) => {
  for (const h of hierarchies()) {
    const walk = (d: string) => {
      if (!fs.existsSync(d)) return
      if (fs.existsSync(path.join(d, "freezer.state"))) fs.writeFileSync(path.join(d, "freezer.state"), "THAWED")
      for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name))
      try {
        fs.rmdirSync(d)
      } catch {
        /* reported by the leak checks */
      }
    }
    walk(path.join(h, rel))
  }
}

const made: string[] = []
/** A unique absolute cgroupsPath prefix, removed after the file. */
const cgPath = () => {
  const p = `/${uniq("xc-rcg")}`
  made.push(p)
  return p
}
afterAll(() => made.forEach(rmCgroup))

const withCgroupsPath = (p: string) => (s: Parameters<NonNullable<Parameters<typeof bundle>[1]>>[0]) => ({ ...s, linux: { ...s.linux, cgroupsPath: p } })
const read = (f: string) => fs.readFileSync(f, "utf8").trim()

describe.skipIf(v1Why)("delete --force and sub-cgroups (runc's RemovePath)", () => {
  it("removes the container's child cgroups depth-first, with a task moved into one of them", async () => {
    const id = uniq("rcgsub")
    const b = bundle(["sleep", "60"])
    expect((await xc(["run", "-d", "-b", b.dir, id])).code).toBe(0)
    const init = (JSON.parse((await xc(["state", id])).out) as { pid: number }).pid
    // What a container with a writable cgroup mount does (or a tool on the host): sub-cgroups, nested,
    // in a v1 hierarchy and in the unified one, and a task of the container moved down into one.
    const mem = cgroupDirOf(id, "memory")
    fs.mkdirSync(path.join(mem, "sub", "deeper"), { recursive: true })
    fs.mkdirSync(path.join(mem, "other"))
    fs.mkdirSync(path.join(cgroupDirOf(id, "pids"), "sub"))
    const unified = path.join("/sys/fs/cgroup/unified", path.relative("/sys/fs/cgroup/memory", mem))
    if (fs.existsSync(unified)) fs.mkdirSync(path.join(unified, "sub"))
    fs.writeFileSync(path.join(mem, "sub", "deeper", "cgroup.procs"), `${init}`)
    const del = await xc(["delete", "--force", id])
    expect(del.err).toBe("")
    expect(del.code).toBe(0)
    // Not the old 101 attempts: the subtree goes at once.
    expect(del.ms).toBeLessThan(5000)
    expect(expectNoTrace(root, id)).toEqual([])
  }, 60_000)
})

describe.skipIf(v1Why)("create in a cgroup that exists (runc's factory checks)", () => {
  it("warns that the cgroup is not empty, naming the count, and goes on", async () => {
    const cg = cgPath()
    const pidsDir = path.join("/sys/fs/cgroup/pids", cg)
    fs.mkdirSync(pidsDir, { recursive: true })
    const squatter = spawn("sleep", ["60"], { stdio: "ignore" })
    try {
      fs.writeFileSync(path.join(pidsDir, "cgroup.procs"), `${squatter.pid}`)
      const id = uniq("rcgbusy")
      const b = bundle(["sleep", "60"], withCgroupsPath(cg))
      const r = await xc(["create", "-b", b.dir, id])
      expect(r.code).toBe(0)
      expect(r.err).toMatch(/level=warning msg="container's cgroup is not empty: 1 process\(es\) found"/)
      expect((await xc(["delete", "--force", id])).code).toBe(0)
    } finally {
      squatter.kill(9)
    }
  }, 60_000)

  it("refuses a frozen cgroup at once instead of hanging, leaving nothing behind", async () => {
    const cg = cgPath()
    const freezer = path.join("/sys/fs/cgroup/freezer", cg)
    fs.mkdirSync(freezer, { recursive: true })
    fs.writeFileSync(path.join(freezer, "freezer.state"), "FROZEN")
    const id = uniq("rcgfrz")
    const r = await xc(["create", "-b", bundle(["sleep", "60"], withCgroupsPath(cg)).dir, id])
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/container's cgroup unexpectedly frozen/)
    expect(r.err).toContain(freezer)
    expect((await xc(["list", "-q"])).out).not.toContain(id)
    expect(fs.existsSync(path.join(root, id))).toBe(false)
    // Nothing made in the other hierarchies either: the check comes before anything is created.
    expect(fs.existsSync(path.join("/sys/fs/cgroup/memory", cg))).toBe(false)
  }, 60_000)

  it("a second create of a paused container's id is 'already exists', and the paused container is untouched", async () => {
    const id = uniq("rcgdup")
    const b = bundle(["sleep", "60"]).dir
    expect((await xc(["run", "-d", "-b", b, id])).code).toBe(0)
    expect((await xc(["pause", id])).code).toBe(0)
    // The id is checked before the cgroup (runc's order): the paused container's frozen cgroup is not the reason.
    const r = await xc(["create", "-b", b, id])
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/already exists/)
    expect(r.err).not.toMatch(/frozen/)
    expect(JSON.parse((await xc(["state", id])).out)).toMatchObject({ status: "paused" })
    expect((await xc(["delete", "-f", id])).code).toBe(0)
    expect(expectNoTrace(root, id)).toEqual([])
  }, 60_000)

  it("refuses a cgroup frozen in the cgroup2 tree beside the v1 freezer (hybrid), naming it", async () => {
    const cg = cgPath()
    const unified = path.join("/sys/fs/cgroup/unified", cg)
    if (cgroupLayout !== "hybrid" || !fs.existsSync("/sys/fs/cgroup/unified/cgroup.procs")) return console.warn("SKIPPING: no hybrid cgroup2 tree here")
    fs.mkdirSync(unified)
    fs.writeFileSync(path.join(unified, "cgroup.freeze"), "1")
    const id = uniq("rcgfrz2")
    const r = await xc(["create", "-b", bundle(["sleep", "60"], withCgroupsPath(cg)).dir, id])
    expect(r.code).toBe(1)
    expect(r.err).toMatch(new RegExp(`cgroup create ${unified}: container's cgroup unexpectedly frozen`))
    expect(fs.existsSync(path.join(root, id))).toBe(false)
  }, 60_000)

  it("refuses a cgroup born frozen under a frozen parent, and removes what it made", async () => {
    const parent = cgPath()
    const freezer = path.join("/sys/fs/cgroup/freezer", parent)
    fs.mkdirSync(freezer, { recursive: true })
    fs.writeFileSync(path.join(freezer, "freezer.state"), "FROZEN")
    const id = uniq("rcgfrzp")
    const r = await xc(["create", "-b", bundle(["sleep", "60"], withCgroupsPath(`${parent}/${id}`)).dir, id])
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/container's cgroup unexpectedly frozen/)
    expect(fs.existsSync(path.join(root, id))).toBe(false)
    expect(fs.existsSync(path.join(freezer, id))).toBe(false)
    expect(fs.existsSync(path.join("/sys/fs/cgroup/memory", parent, id))).toBe(false)
  }, 60_000)

  it("bounds a thaw that cannot complete (a frozen parent) with an error naming the cgroup and the state waited for", async () => {
    const parent = cgPath()
    const id = uniq("rcgthaw")
    expect((await xc(["run", "-d", "-b", bundle(["sleep", "60"], withCgroupsPath(`${parent}/${id}`)).dir, id])).code).toBe(0)
    const pfreezer = path.join("/sys/fs/cgroup/freezer", parent)
    fs.writeFileSync(path.join(pfreezer, "freezer.state"), "FROZEN")
    try {
      // Frozen by its parent: paused, as far as anyone can tell; resuming it cannot succeed.
      expect(JSON.parse((await xc(["state", id])).out)).toMatchObject({ status: "paused" })
      const r = await xc(["resume", id])
      expect(r.code).toBe(1)
      expect(r.ms).toBeLessThan(10_000)
      expect(r.err).toContain(path.join(pfreezer, id))
      expect(r.err).toMatch(/waited 2000 ms for freezer\.state to read \\?"THAWED\\?", it reads \\?"FROZEN\\?"/)
    } finally {
      fs.writeFileSync(path.join(pfreezer, "freezer.state"), "THAWED")
    }
    expect((await xc(["delete", "--force", id])).code).toBe(0)
    expect(expectNoTrace(root, id)).toEqual([])
  }, 60_000)
})

describe.skipIf(v1Why)("exec --cgroup (runc 1.2)", () => {
  it("joins an existing sub-cgroup of the named controllers; refuses '..', missing ones and unknown controllers", async () => {
    const id = uniq("rcgexec")
    const b = bundle(["sleep", "60"])
    expect((await xc(["run", "-d", "-b", b.dir, id])).code).toBe(0)
    try {
      const mem = cgroupDirOf(id, "memory")
      const pids = cgroupDirOf(id, "pids")
      fs.mkdirSync(path.join(mem, "sub"))
      fs.mkdirSync(path.join(pids, "sub"))
      const lineOf = (text: string, ctrl: string) => text.split("\n").find((l) => l.split(":")[1]?.split(",").includes(ctrl))?.split(":")[2]
      const r = await xc(["exec", "--cgroup", "memory,pids:sub", id, "cat", "/proc/self/cgroup"])
      expect(r.err).toBe("")
      expect(r.code).toBe(0)
      // As the process sees it (through a cgroup namespace or not): in sub for memory and pids, not for devices.
      expect(lineOf(r.out, "memory")).toMatch(/\/sub$/)
      expect(lineOf(r.out, "pids")).toMatch(/\/sub$/)
      expect(lineOf(r.out, "devices")).not.toMatch(/\/sub$/)
      // As the host sees it: a detached exec, with one --cgroup per controller (runc's other spelling).
      const procs = (d: string) => read(path.join(d, "cgroup.procs")).split("\n").filter(Boolean).map(Number)
      const d = await xc(["exec", "-d", "--cgroup", "memory:sub", "--cgroup", "pids:/sub", id, "sleep", "30"])
      expect(d.code).toBe(0)
      expect(procs(path.join(mem, "sub"))).toHaveLength(1)
      expect(procs(path.join(pids, "sub"))).toEqual(procs(path.join(mem, "sub")))
      expect(procs(cgroupDirOf(id, "devices"))).toContain(procs(path.join(mem, "sub"))[0])
      for (const [args, message] of [
        [["--cgroup", "memory:../../escape"], /\\?"\.\.\/\.\.\/escape\\?": \\?"\.\.\\?" is not allowed/],
        [["--cgroup", "memory:missing"], /join sub-cgroup .*\/memory\/.*\/missing: ENOENT/],
        [["--cgroup", "nosuch:sub"], /unknown controller \\?"nosuch\\?"/],
        // A bare path is for every hierarchy: sub exists in two of them only.
        [["--cgroup", "sub"], /join sub-cgroup .*\/sub: ENOENT/],
        [["--cgroup", "memory:sub", "--cgroup", "sub"], /missing <controller>: prefix/],
        [["--cgroup", "memory:a", "--cgroup", "memory:b"], /controller memory specified multiple times/],
      ] as const) {
        const bad = await xc(["exec", ...args, id, "true"])
        expect(bad.code, args.join(" ")).toBe(255)
        expect(bad.err, args.join(" ")).toMatch(message)
      }
    } finally {
      expect((await xc(["delete", "--force", id])).code).toBe(0)
    }
    expect(expectNoTrace(root, id)).toEqual([])
  }, 120_000)
})

describe.skipIf(v1Why)("update as runc's", () => {
  it("--memory -1 lifts memory+swap too (swap written first)", async () => {
    const id = uniq("rcgmem")
    const b = bundle(["sleep", "60"], (s) => ({ ...s, linux: { ...s.linux, resources: { ...s.linux?.resources, memory: { limit: 100 << 20, swap: 200 << 20 } } } }))
    expect((await xc(["run", "-d", "-b", b.dir, id])).code).toBe(0)
    try {
      const mem = cgroupDirOf(id, "memory")
      expect(Number(read(path.join(mem, "memory.memsw.limit_in_bytes")))).toBe(200 << 20)
      const r = await xc(["update", "--memory", "-1", id])
      expect(r.err).toBe("")
      expect(r.code).toBe(0)
      const unlimited = read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
      expect(read(path.join(mem, "memory.limit_in_bytes"))).toBe(unlimited)
      expect(read(path.join(mem, "memory.memsw.limit_in_bytes"))).toBe(unlimited)
      // And back down: memory first, then swap (the current limit is above the new swap).
      expect((await xc(["update", "--memory", "64m", "--memory-swap", "128m", id])).code).toBe(0)
      expect([read(path.join(mem, "memory.limit_in_bytes")), read(path.join(mem, "memory.memsw.limit_in_bytes"))]).toEqual([`${64 << 20}`, `${128 << 20}`])
    } finally {
      await xc(["delete", "--force", id])
    }
  }, 60_000)

  it("retries a refused cpu period after the quota (runc's CpuGroup.Set)", async () => {
    const parent = cgPath()
    const pcpu = path.join("/sys/fs/cgroup/cpu", parent)
    fs.mkdirSync(pcpu, { recursive: true })
    // The parent may use half a cpu: a child's quota/period above that is EINVAL.
    fs.writeFileSync(path.join(pcpu, "cpu.cfs_period_us"), "100000")
    fs.writeFileSync(path.join(pcpu, "cpu.cfs_quota_us"), "50000")
    const id = uniq("rcgcpu")
    const b = bundle(["sleep", "60"], (s) => ({ ...s, linux: { ...s.linux, cgroupsPath: `${parent}/${id}`, resources: { ...s.linux?.resources, cpu: { period: 100000, quota: 50000 } } } }))
    expect((await xc(["run", "-d", "-b", b.dir, id])).code).toBe(0)
    try {
      // Period first would make 50000/50000 = a whole cpu for a moment: the kernel refuses it.
      const r = await xc(["update", "--cpu-period", "50000", "--cpu-quota", "25000", id])
      expect(r.err).toBe("")
      expect(r.code).toBe(0)
      const cpu = path.join(pcpu, id)
      expect([read(path.join(cpu, "cpu.cfs_period_us")), read(path.join(cpu, "cpu.cfs_quota_us"))]).toEqual(["50000", "25000"])
    } finally {
      await xc(["delete", "--force", id])
    }
  }, 60_000)

  it("takes runc's --cpu-share, --cpu-rt-period and --cpu-rt-runtime (and --cpu-shares as an alias)", async () => {
    const id = uniq("rcgflags")
    expect((await xc(["run", "-d", "-b", bundle(["sleep", "60"]).dir, id])).code).toBe(0)
    try {
      const cpu = cgroupDirOf(id, "cpu")
      expect((await xc(["update", "--cpu-share", "512", id])).code).toBe(0)
      expect(read(path.join(cpu, "cpu.shares"))).toBe("512")
      expect((await xc(["update", "--cpu-shares", "256", id])).code).toBe(0)
      expect(read(path.join(cpu, "cpu.shares"))).toBe("256")
      const rt = await xc(["update", "--cpu-rt-period", "500000", "--cpu-rt-runtime", "1000", id])
      expect(rt.err).toBe("")
      expect(rt.code).toBe(0)
      expect([read(path.join(cpu, "cpu.rt_period_us")), read(path.join(cpu, "cpu.rt_runtime_us"))]).toEqual(["500000", "1000"])
      const state = JSON.parse(fs.readFileSync(path.join(root, id, "state.json"), "utf8")) as { spec: { linux: { resources: { cpu: unknown } } } }
      expect(state.spec.linux.resources.cpu).toMatchObject({ shares: 256, realtimePeriod: 500000, realtimeRuntime: 1000 })
    } finally {
      await xc(["delete", "--force", id])
    }
  }, 60_000)

  it("ignores device access letters other than r, w and m, as runc (\"rwx\" allows rw); refuses a rule with none", async () => {
    const id = uniq("rcgdev")
    const withRule = (access: string) => (s: Parameters<NonNullable<Parameters<typeof bundle>[1]>>[0]) => ({
      ...s,
      linux: { ...s.linux, resources: { ...s.linux?.resources, devices: [{ allow: false, access: "rwm" }, { allow: true, type: "c" as const, major: 1, minor: 11, access }] } },
    })
    expect((await xc(["run", "-d", "-b", bundle(["sleep", "60"], withRule("rwxx")).dir, id])).code).toBe(0)
    try {
      expect(read(path.join(cgroupDirOf(id, "devices"), "devices.list")).split("\n")).toContain("c 1:11 rw")
    } finally {
      await xc(["delete", "--force", id])
    }
    const none = await xc(["create", "-b", bundle(["sleep", "60"], withRule("x")).dir, uniq("rcgdevx")])
    expect(none.code).toBe(1)
    expect(none.err).toMatch(/linux\.resources\.devices\[1\]\.access.*none of r, w and m/)
  }, 60_000)
})

describe.skipIf(skipReason)("a console socket that never answers (issue 19: bounded waits)", () => {
  it("fails create within the bound, naming the socket, and leaves nothing behind", async () => {
    const { sock, stop } = await stuckListener()
    try {
      const id = uniq("rcgcons")
      const b = bundle(["sleep", "60"], (s) => ({ ...s, process: { ...s.process!, terminal: true } }))
      const r = await xc(["create", "--console-socket", sock, "-b", b.dir, id], { XCONTAINER_CONSOLE_SOCKET_TIMEOUT_MS: "1500" })
      expect(r.code).toBe(1)
      expect(r.ms).toBeLessThan(10_000)
      expect(r.err).toContain(sock)
      expect(r.err).toMatch(/connect to the console socket .*: ETIMEDOUT: no answer within 1500 ms/)
      expect(expectNoTrace(root, id)).toEqual([])
    } finally {
      stop()
    }
  }, 60_000)

  it("does not wait on a peer that accepts and never reads", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-mute-"))
    const sock = path.join(dir, "console.sock")
    const net = await import("node:net")
    const held: import("node:net").Socket[] = []
    const server = net.createServer((c) => {
      c.pause()
      held.push(c)
    })
    await new Promise<void>((resolve) => server.listen(sock, resolve))
    try {
      const id = uniq("rcgmute")
      const b = bundle(["sleep", "60"], (s) => ({ ...s, process: { ...s.process!, terminal: true } }))
      const r = await xc(["create", "--console-socket", sock, "-b", b.dir, id], { XCONTAINER_CONSOLE_SOCKET_TIMEOUT_MS: "1500" })
      expect(r.err).toBe("")
      expect(r.code).toBe(0)
      expect((await xc(["delete", "--force", id])).code).toBe(0)
      expect(expectNoTrace(root, id)).toEqual([])
    } finally {
      held.forEach((c) => c.destroy())
      server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})

