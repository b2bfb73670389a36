/**
 * The config rules of issue 13, without a kernel: ids within runc's range, no NUL in any string,
 * bounded config files, bounded error messages and nesting, a symlink-free rootfs, rlimits that
 * fit a u64. Each case here was accepted (or crashed) before its rule.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { spawnSync } from "node:child_process"
import { Effect, Result } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { defaultSpec } from "../../config/default-spec.ts"
import { loadBundle, parseSpec } from "../../config/parse.ts"
import { ConfigError } from "../../effects/errors.ts"
import { preservedFds } from "../../cli/common.ts"

const spec = defaultSpec(["sh"])
const proc = spec.process!
const problem = (input: unknown) => {
  const r = Effect.runSync(Effect.result(parseSpec(input)))
  return Result.isFailure(r) ? { path: r.failure.path, reason: r.failure.reason, message: r.failure.message } : undefined
}
const userns = { ...spec.linux, namespaces: [...(spec.linux?.namespaces ?? []), { type: "user" as const }] }
const map = (m: Partial<{ containerID: number; hostID: number; size: number }>) => [{ containerID: 0, hostID: 100000, size: 65536, ...m }]

describe("ids (issue 13 item 2): (uid_t)-1 would leave the process root", () => {
  it.each([
    [{ ...proc, user: { uid: 4294967295, gid: 0 } }, "process.user.uid"],
    [{ ...proc, user: { uid: 1000, gid: 4294967295 } }, "process.user.gid"],
    [{ ...proc, user: { uid: 2 ** 31, gid: 0 } }, "process.user.uid"],
    [{ ...proc, user: { uid: 0, gid: 0, additionalGids: [1, 4294967295] } }, "process.user.additionalGids[1]"],
  ])("refuses process %# naming %s", (process, at) => {
    expect(problem({ ...spec, process })).toMatchObject({ path: at, reason: "uids and gids must be in range 0-2147483647" })
  })

  it.each([
    [{ uidMappings: map({ hostID: 4294967295 }), gidMappings: map({}) }, "linux.uidMappings[0].hostID"],
    [{ uidMappings: map({}), gidMappings: map({ containerID: 2 ** 31 }) }, "linux.gidMappings[0].containerID"],
    [{ uidMappings: map({ size: 4294967295 }), gidMappings: map({}) }, "linux.uidMappings[0].size"],
  ])("refuses id mapping %# naming %s", (maps, at) => {
    expect(problem({ ...spec, linux: { ...userns, ...maps } })).toMatchObject({ path: at, reason: expect.stringMatching(/range 0-2147483647/) })
  })

  it("accepts the largest id, 2147483647", () => {
    expect(problem({ ...spec, process: { ...proc, user: { uid: 2147483647, gid: 2147483647, additionalGids: [2147483647] } } })).toBeUndefined()
  })
})

describe("NUL bytes (issue 13 item 8): C would cut the string there", () => {
  it.each([
    [{ process: { ...proc, args: ["a\0b"] } }, "process.args[0]"],
    [{ process: { ...proc, env: ["PATH=/bin", "A=b\0c"] } }, "process.env[1]"],
    [{ process: { ...proc, cwd: "/tmp\0/x" } }, "process.cwd"],
    [{ mounts: [{ destination: "/tmp\0/../../etc", type: "tmpfs", source: "tmpfs" }] }, "mounts[0].destination"],
    [{ mounts: [{ destination: "/tmp", type: "tmp\0fs", source: "tmpfs" }] }, "mounts[0].type"],
    [{ mounts: [{ destination: "/tmp", type: "tmpfs", source: "x\0y" }] }, "mounts[0].source"],
    [{ mounts: [{ destination: "/tmp", type: "tmpfs", options: ["nosuid", "mode=1777\0,size=1"] }] }, "mounts[0].options[1]"],
    [{ hostname: "h\0x" }, "hostname"],
    [{ root: { path: "rootfs\0/.." } }, "root.path"],
    [{ hooks: { prestart: [{ path: "/bin/true\0x" }] } }, "hooks.prestart[0].path"],
    [{ hooks: { prestart: [{ path: "/bin/true", args: ["true", "\0"] }] } }, "hooks.prestart[0].args[1]"],
    [{ hooks: { prestart: [{ path: "/bin/true", env: ["A=\0"] }] } }, "hooks.prestart[0].env[0]"],
    [{ linux: { ...spec.linux, maskedPaths: ["/proc/kcore\0x"] } }, "linux.maskedPaths[0]"],
    [{ linux: { ...spec.linux, readonlyPaths: ["/proc/sys\0"] } }, "linux.readonlyPaths[0]"],
    [{ linux: { ...spec.linux, cgroupsPath: "/a\0b" } }, "linux.cgroupsPath"],
    [{ linux: { ...spec.linux, sysctl: { "net.ipv4.ip_forward": "1\0" } } }, "linux.sysctl.net.ipv4.ip_forward"],
    [{ linux: { ...spec.linux, sysctl: { "net.ipv4.ip_forward\0": "1" } } }, "linux.sysctl"],
    [{ linux: { ...spec.linux, seccomp: { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir\0"], action: "SCMP_ACT_ERRNO" }] } } }, "linux.seccomp.syscalls[0].names[0]"],
    [{ linux: { ...spec.linux, resources: { unified: { "memory.max": "1\0" } } } }, 'linux.resources.unified["memory.max"]'],
    [{ process: { ...proc, rlimits: [{ type: "RLIMIT_NOFILE\0", soft: 1, hard: 1 }] } }, "process.rlimits[0].type"],
    [{ process: { ...proc, apparmorProfile: "p\0" } }, "process.apparmorProfile"],
  ])("refuses %# naming %s", (change, at) => {
    const p = problem({ ...spec, ...change })
    expect(p?.path.startsWith(at)).toBe(true)
    expect(p?.reason).toMatch(/null byte/)
  })
})

describe("rlimits (issue 13 item 14b): a u64, as runc decodes it", () => {
  const rl = (hard: number, soft = 1) => ({ ...spec, process: { ...proc, rlimits: [{ type: "RLIMIT_NOFILE", soft, hard }] } })
  it.each([[2 ** 64 + 2 ** 12], [Infinity], [1e30], [-1], [1.5]])("refuses a hard limit of %s", (hard) => {
    expect(problem(rl(hard))).toMatchObject({ path: "process.rlimits[0].hard", reason: expect.stringMatching(/0 to 18446744073709551615/) })
  })
  it("accepts RLIM_INFINITY, which JSON reads as the double 2^64", () => {
    expect(problem(rl(JSON.parse("18446744073709551615") as number, 1024))).toBeUndefined()
  })
})

describe("deep nesting and huge values (issue 13 item 11)", () => {
  const deep = (n: number): unknown => {
    let v: unknown = "x"
    for (let i = 0; i < n; i++) v = [v]
    return v
  }
  it.each([
    [{ hostname: deep(3000) }, "hostname"],
    [{ process: { ...proc, args: deep(3000) } }, "process.args"],
    [{ annotations: { a: deep(3000) } }, "annotations.a"],
  ])("a config nested 3000 levels deep is a ConfigError naming the field (%#)", (change, at) => {
    const p = problem({ ...spec, ...change })
    expect(p?.path.startsWith(at)).toBe(true)
    expect(p?.reason).toMatch(/deeper than \d+ levels/)
  })

  it("echoes at most a few hundred characters of a 200 MB value", () => {
    const huge = "/" + "a".repeat(200 * 1024 * 1024)
    const p = problem({ ...spec, process: { ...proc, cwd: huge.slice(1) } })
    expect(p?.path).toBe("process.cwd")
    expect(p!.message.length).toBeLessThan(1000)
    expect(p!.message).toMatch(/characters cut/)
    expect(new ConfigError({ path: huge, reason: huge }).message.length).toBeLessThan(1000)
  })

  it.each(["99999999999", "-1", "1e3", "3.5", "", String(2 ** 20 + 1)])("--preserve-fds %s is a ConfigError naming the flag", (n) => {
    let caught: unknown
    try {
      preservedFds(n)
    } catch (e) {
      caught = e
    }
    expect(caught).toBeInstanceOf(ConfigError)
    expect(caught).toMatchObject({ path: "--preserve-fds" })
  })
  it("--preserve-fds takes a sensible count", () => {
    expect(preservedFds("2").fds).toEqual([3, 4])
  })
  it("LISTEN_FDS cannot ask for more fds than a process can hold", () => {
    const saved = process.env.LISTEN_FDS
    process.env.LISTEN_FDS = "99999999999"
    try {
      expect(() => preservedFds("1")).toThrow(ConfigError)
    } finally {
      if (saved === undefined) delete process.env.LISTEN_FDS
      else process.env.LISTEN_FDS = saved
    }
  })
})

describe("config.json (issue 13 items 9, 11, 14): read bounded, a regular file, a rootfs without links", () => {
  const dirs: string[] = []
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })))
  const bundleWith = (config: (dir: string) => void) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-sec-"))
    dirs.push(dir)
    fs.mkdirSync(path.join(dir, "rootfs"))
    config(dir)
    return dir
  }
  const load = (dir: string) => {
    const r = Effect.runSync(Effect.result(loadBundle(dir)))
    return Result.isFailure(r) ? r.failure : undefined
  }
  const write = (s: unknown) => (dir: string) => fs.writeFileSync(path.join(dir, "config.json"), typeof s === "string" ? s : JSON.stringify(s))

  it.each(["/dev/zero", "/dev/urandom"])("refuses a config.json linked to %s at once", (dev) => {
    const dir = bundleWith((d) => fs.symlinkSync(dev, path.join(d, "config.json")))
    const t = Date.now()
    expect(load(dir)).toMatchObject({ _tag: "ConfigError", reason: expect.stringMatching(/not a regular file/) })
    expect(Date.now() - t).toBeLessThan(2000)
  })

  it("refuses a FIFO config.json without blocking", () => {
    const dir = bundleWith((d) => spawnSync("mkfifo", [path.join(d, "config.json")]))
    // In a child: a blocking open would hang this test's own process.
    const r = spawnSync(process.execPath, ["--import", "tsx", "-e", `import("${path.resolve("config/parse.ts")}").then(async (m) => { const { Effect } = await import("effect"); const e = await Effect.runPromise(Effect.flip(m.loadBundle(${JSON.stringify(dir)}))); console.log(e.reason) })`], { encoding: "utf8", timeout: 15_000 })
    expect(r.signal).toBeNull()
    expect(r.stdout).toMatch(/not a regular file/)
  }, 20_000)

  it("refuses a config.json larger than the cap, naming it", () => {
    const dir = bundleWith((d) => fs.writeFileSync(path.join(d, "config.json"), Buffer.alloc(9 * 1024 * 1024, 0x20)))
    expect(load(dir)).toMatchObject({ reason: expect.stringMatching(/larger than 8388608 bytes/) })
  })

  it("follows a config.json that links to a regular file, as runc", () => {
    const dir = bundleWith((d) => {
      fs.writeFileSync(path.join(d, "real.json"), JSON.stringify({ ...spec, root: { path: "rootfs" } }))
      fs.symlinkSync("real.json", path.join(d, "config.json"))
    })
    expect(load(dir)).toBeUndefined()
  })

  it("does not quote the file in a syntax error (config.json may link to a secret)", () => {
    const dir = bundleWith((d) => {
      fs.writeFileSync(path.join(d, "secret"), "root:$6$saltsalt$hashhashhash:19000:0:99999:7:::\n")
      fs.symlinkSync("secret", path.join(d, "config.json"))
    })
    const e = load(dir)
    expect(e?.reason).toMatch(/is not JSON/)
    expect(e?.message).not.toMatch(/saltsalt|hashhash/)
  })

  it("refuses 3000 levels of nesting in config.json as a ConfigError", () => {
    const dir = bundleWith(write(`{"ociVersion":"1.0.2","hostname":${"[".repeat(3000)}${"]".repeat(3000)}}`))
    expect(load(dir)).toMatchObject({ _tag: "ConfigError", path: expect.stringMatching(/^hostname\[0\]/), reason: expect.stringMatching(/deeper/) })
  })

  it.each([["18446744073709551616"], ["18446744073709551617"], ["1.8446744073709552e19"], ["100000000000000000000000"]])("refuses an rlimit literal of %s (at or past 2^64)", (lit) => {
    const text = JSON.stringify({ ...spec, root: { path: "rootfs" }, process: { ...proc, rlimits: [{ type: "RLIMIT_NOFILE", soft: 1, hard: 2 }] } }).replace('"hard":2', `"hard":${lit}`)
    const dir = bundleWith(write(text))
    expect(load(dir)).toMatchObject({ path: "process.rlimits[0].hard", reason: expect.stringMatching(/0 to 18446744073709551615/) })
  })

  it("accepts an rlimit of 18446744073709551615 (RLIM_INFINITY) written out", () => {
    const text = JSON.stringify({ ...spec, root: { path: "rootfs" }, process: { ...proc, rlimits: [{ type: "RLIMIT_NOFILE", soft: 1, hard: 2 }] } }).replace('"hard":2', '"hard":18446744073709551615')
    expect(load(bundleWith(write(text)))).toBeUndefined()
  })

  it("refuses a rootfs that is a symlink, or reached through one, as runc", () => {
    const linked = bundleWith((d) => {
      fs.symlinkSync("rootfs", path.join(d, "root-link"))
      write({ ...spec, root: { path: "root-link" } })(d)
    })
    expect(load(linked)).toMatchObject({ path: "root.path", reason: "invalid rootfs: not an absolute path, or a symlink" })
    const absolute = bundleWith((d) => {
      fs.symlinkSync(d, path.join(d, "self"))
      write({ ...spec, root: { path: path.join(d, "self", "rootfs") } })(d)
    })
    expect(load(absolute)).toMatchObject({ path: "root.path", reason: expect.stringMatching(/not an absolute path, or a symlink/) })
  })

  it("accepts a relative rootfs in a bundle reached through a symlink, as runc (its cwd is the real directory)", () => {
    const real = bundleWith(write({ ...spec, root: { path: "rootfs" } }))
    const link = `${real}-link`
    fs.symlinkSync(real, link)
    dirs.push(link)
    expect(load(link)).toBeUndefined()
  })
})
