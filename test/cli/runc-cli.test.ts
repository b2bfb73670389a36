/**
 * The command line as runc 1.1.5 behaves on the same input (issue 14): `spec`'s file, the
 * terminal/console-socket rules, exec's defaults and statuses, the log format, `--version`,
 * `-h` on every command, the foreground terminal's bytes, `kill --all` and `delete` on the
 * states runc accepts them in. Where runc is installed each case runs under both and compares.
 */
import { execFile, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { layoutFromStatfs } from "../../effects/cgroups-layout.ts"
import { bundle, processesWith, skipReason, stateRoot, uniq } from "../kernel/harness.ts"

const BIN = path.resolve(import.meta.dirname, "..", "..", "bin", "xcontainer")
const runc = spawnSync("runc", ["--version"]).status === 0 ? "runc" : undefined
const noRunc = runc ? undefined : "runc is not installed (apt-get install runc)"
if (noRunc) console.warn(`SKIPPING runc comparisons: ${noRunc}`)
if (skipReason) console.warn(`SKIPPING container cases: ${skipReason}`)

describe.skipIf(noRunc)("spec", () => {
  it("writes runc's config.json (terminal, no seccomp, cgroup namespace only on pure v2), and runc's rootless one", () => {
    for (const flags of [[], ["--rootless"]]) {
      const [r, x] = [fs.mkdtempSync(path.join(os.tmpdir(), "spec-r-")), fs.mkdtempSync(path.join(os.tmpdir(), "spec-x-"))]
      expect(spawnSync(runc!, ["spec", ...flags, "-b", r]).status).toBe(0)
      expect(spawnSync(BIN, ["spec", ...flags, "-b", x]).status).toBe(0)
      // What differs by design: the spec version each runtime implements and the default hostname.
      const norm = (s: string) => s.replace(/"ociVersion": "[^"]*"/, '"ociVersion": "V"').replace(/"hostname": "[^"]*"/, '"hostname": "H"')
      const [rs, xs] = [fs.readFileSync(path.join(r, "config.json"), "utf8"), fs.readFileSync(path.join(x, "config.json"), "utf8")]
      expect(norm(xs)).toBe(norm(rs))
      const spec = JSON.parse(xs) as { process: { terminal: boolean }; linux: { seccomp?: unknown; namespaces: { type: string }[] } }
      expect(spec.process.terminal).toBe(true)
      expect(spec.linux.seccomp).toBeUndefined()
      expect(spec.linux.namespaces.some((n) => n.type === "cgroup")).toBe(layoutFromStatfs() === "v2")
      fs.rmSync(r, { recursive: true })
      fs.rmSync(x, { recursive: true })
    }
  })
})

/** A runtime with its own state root: each call's status, stdout and stderr (stdio in files: a detached container keeps what it is given). */
const runtime = (bin: string) => {
  const root = stateRoot()
  const call = (...args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      const dir = fs.mkdtempSync(path.join(root, "io-"))
      const fds = [fs.openSync("/dev/null", "r"), fs.openSync(path.join(dir, "out"), "w"), fs.openSync(path.join(dir, "err"), "w")]
      // Asynchronously: a worker blocked in spawnSync loses vitest's RPC on a loaded machine.
      const child = spawn(bin, ["--root", root, ...args], { stdio: fds, timeout: 20_000 })
      child.on("close", (code, signal) => {
        fds.forEach((fd) => fs.closeSync(fd))
        const res = { code: code ?? 128 + (signal ? os.constants.signals[signal] : 0), out: fs.readFileSync(path.join(dir, "out"), "utf8"), err: fs.readFileSync(path.join(dir, "err"), "utf8") }
        fs.rmSync(dir, { recursive: true })
        resolve(res)
      })
    })
  return { root, call }
}

/** What differs by design between the two runtimes' messages: the name, the time, our paths after "does not exist". */
const normErr = (s: string) => s.replace(/^time="[^"]*"/gm, 'time="T"').replace(/\bxcontainer\b/g, "runc")

const both = runc && !skipReason ? ([["runc", runc], ["xcontainer", BIN]] as const) : []
const bothWhy = skipReason ?? noRunc

describe.skipIf(bothWhy)("terminal and console socket (runc's checkTerminal)", () => {
  it("refuses a console socket without a terminal, and a detached terminal without one, before creating anything", async () => {
    const noTty = bundle(["sleep", "30"])
    const tty = bundle(["sleep", "30"], (s) => ({ ...s, process: { ...s.process!, terminal: true } }))
    const seen: Record<string, string[]> = {}
    for (const [name, bin] of both) {
      const rt = runtime(bin)
      const id = uniq("tty")
      const out: string[] = (seen[name] = [])
      for (const args of [
        ["run", "-d", "--console-socket", "/nonexistent.sock", "-b", noTty.dir, id],
        ["create", "--console-socket", "/nonexistent.sock", "-b", noTty.dir, id],
        ["create", "-b", tty.dir, id],
        ["run", "-d", "-b", tty.dir, id],
      ]) {
        const r = await rt.call(...args)
        out.push(`${r.code} ${normErr(r.err)}`)
        // Nothing created: the id is free.
        expect((await rt.call("list", "-q")).out, `${name} ${args.join(" ")}`).toBe("")
      }
    }
    expect(seen["xcontainer"]).toEqual(seen["runc"])
    expect(seen["xcontainer"]![0]).toMatch(/^1 time="T" level=error msg="runc run failed: cannot use console socket if runc will not detach or allocate tty"\n$/)
  }, 120_000)

  it("gives a detached container without a terminal the caller's stdio, as runc", async () => {
    const b = bundle(["sh", "-c", "echo out; echo err >&2"])
    for (const [name, bin] of both) {
      const rt = runtime(bin)
      const id = uniq("io")
      const dir = fs.mkdtempSync(path.join(rt.root, "stdio-"))
      const fds = [fs.openSync("/dev/null", "r"), fs.openSync(path.join(dir, "out"), "w"), fs.openSync(path.join(dir, "err"), "w")]
      const code = await new Promise((resolve) => spawn(bin, ["--root", rt.root, "run", "-d", "-b", b.dir, id], { stdio: fds }).on("close", resolve))
      fds.forEach((fd) => fs.closeSync(fd))
      expect(code, name).toBe(0)
      for (let i = 0; i < 100 && !(await rt.call("state", id)).out.includes('"stopped"'); i++) await new Promise((res) => setTimeout(res, 50))
      expect([fs.readFileSync(path.join(dir, "out"), "utf8"), fs.readFileSync(path.join(dir, "err"), "utf8")], name).toEqual(["out\n", "err\n"])
      expect((await rt.call("delete", id)).code, name).toBe(0)
    }
  }, 120_000)
})

describe.skipIf(bothWhy)("exec", () => {
  it("runs -p process.json without a user as 0:0; refuses paused and stopped containers, a console socket without -t, LSM flags without the LSM; exits 255 with \"exec failed: …\"", async () => {
    const b = bundle(["sleep", "60"])
    const procFile = path.join(stateRoot(), "process.json")
    fs.writeFileSync(procFile, JSON.stringify({ args: ["/bin/id"], cwd: "/" }))
    const seen: Record<string, string[]> = {}
    for (const [name, bin] of both) {
      const rt = runtime(bin)
      const id = uniq("exec")
      const out: string[] = (seen[name] = [])
      const note = async (...args: string[]) => {
        const r = await rt.call(...args)
        out.push(`${args.join(" ").replace(id, "ID")}: ${r.code} ${r.out}${normErr(r.err)}`)
        return r
      }
      expect((await rt.call("run", "-d", "-b", b.dir, id)).code, name).toBe(0)
      const asRoot = await rt.call("exec", "-p", procFile, id)
      expect(asRoot, name).toMatchObject({ code: 0, out: expect.stringMatching(/^uid=0(\(root\))? gid=0(\(root\))?/) })
      await note("exec", "-d", "--console-socket", "/nonexistent.sock", id, "true")
      await note("exec", "-d", "-t", id, "true")
      await note("exec", id)
      const noSuch = await rt.call("exec", id, "/nonexistent")
      expect(noSuch, name).toMatchObject({ code: 255, err: expect.stringMatching(/level=error msg="exec failed: /) })
      // No LSM here: refused, not ignored (runc fails too, each in its words).
      if (!fs.existsSync("/sys/kernel/security/apparmor")) expect((await rt.call("exec", "--apparmor", "unconfined", id, "true")).code, name).toBe(255)
      if (!fs.existsSync("/sys/fs/selinux/enforce")) expect((await rt.call("exec", "--process-label", "system_u:system_r:container_t:s0", id, "true")).code, name).toBe(255)
      expect((await rt.call("pause", id)).code, name).toBe(0)
      await note("exec", id, "true")
      expect((await rt.call("resume", id)).code, name).toBe(0)
      expect((await rt.call("kill", id, "KILL")).code, name).toBe(0)
      for (let i = 0; i < 100 && !(await rt.call("state", id)).out.includes('"stopped"'); i++) await new Promise((res) => setTimeout(res, 50))
      await note("exec", id, "true")
      expect((await rt.call("delete", id)).code, name).toBe(0)
    }
    expect(seen["xcontainer"]).toEqual(seen["runc"])
  }, 120_000)
})

describe.skipIf(bothWhy)("kill --all and delete", () => {
  it("kill --all on a stopped container signals what is left in its cgroup and exits 0; delete without -f kills a created one", async () => {
    const marker = `${uniq("left")}`
    // No pid namespace: the init's exit leaves its background child in the cgroup.
    const b = bundle(["sh", "-c", `sleep 600 ${marker} 2>/dev/null & exit 0`], (s) => ({ ...s, linux: { ...s.linux, namespaces: s.linux!.namespaces!.filter((n) => n.type !== "pid") } }))
    const sleeper = bundle(["sleep", "60"])
    for (const [name, bin] of both) {
      const rt = runtime(bin)
      const id = uniq("killall")
      expect((await rt.call("run", "-d", "-b", b.dir, id)).code, name).toBe(0)
      for (let i = 0; i < 100 && !(await rt.call("state", id)).out.includes('"stopped"'); i++) await new Promise((res) => setTimeout(res, 50))
      expect((await rt.call("kill", id, "KILL")).code, name).toBe(1)
      expect(await rt.call("kill", "--all", id, "KILL"), name).toMatchObject({ code: 0, err: "" })
      for (let i = 0; i < 100 && processesWith(marker).length > 0; i++) await new Promise((res) => setTimeout(res, 50))
      expect(processesWith(marker), name).toEqual([])
      expect((await rt.call("delete", id)).code, name).toBe(0)
      // Again with nothing left (a runtime that removed the cgroup with the init says 0 as well).
      const created = uniq("created")
      expect((await rt.call("create", "-b", sleeper.dir, created)).code, name).toBe(0)
      expect(await rt.call("delete", created), name).toMatchObject({ code: 0, err: "" })
      expect((await rt.call("list", "-q")).out, name).toBe("")
    }
  }, 120_000)
})

describe.skipIf(noRunc)("logs, --version, -h", () => {
  it("logs in logrus's text by default and JSON when asked, on stderr or in --log (then the bare message on stderr)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-logs-"))
    const run = (bin: string, args: string[]) => spawnSync(bin, ["--root", dir, ...args], { encoding: "utf8" })
    const norm = (s: string) => s.replace(/time="[^"]*"/g, 'time="T"').replace(/"time":"[^"]*"/g, '"time":"T"').replace(/container nope does not exist \(root [^)]*\)/g, "container does not exist")
    for (const args of [["state", "nope"], ["--log-format", "json", "state", "nope"], ["--log-format", "xml", "list"], ["frobnicate"]]) {
      const [r, x] = [run(runc!, args), run(BIN, args)]
      expect(x.status, args.join(" ")).toBe(r.status)
      expect(norm(x.stderr), args.join(" ")).toBe(norm(r.stderr).replace(/\\n"/, '"'))
      expect(x.stdout).toBe("")
    }
    expect(run(BIN, ["state", "nope"]).stderr).toMatch(/^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)" level=error msg="container nope does not exist/)
    for (const format of ["text", "json"]) {
      const [rl, xl] = [path.join(dir, `r.${format}`), path.join(dir, `x.${format}`)]
      const [r, x] = [run(runc!, ["--log", rl, "--log-format", format, "state", "nope"]), run(BIN, ["--log", xl, "--log-format", format, "state", "nope"])]
      expect(x.status).toBe(r.status)
      expect(norm(x.stderr)).toBe(norm(r.stderr))
      expect(norm(fs.readFileSync(xl, "utf8"))).toBe(norm(fs.readFileSync(rl, "utf8")))
    }
    // --debug says what the command does.
    const debug = run(BIN, ["--debug", "list", "-q"])
    expect(debug.status).toBe(0)
    expect(debug.stderr).toMatch(/level=debug msg=command args=\S+ command=list root=/)
    fs.rmSync(dir, { recursive: true })
  })

  it("prints --version in runc's shape (go-runc reads commit: and spec:) and every command's -h/--help with status 0", () => {
    const v = spawnSync(BIN, ["--version"], { encoding: "utf8" })
    expect(v.status).toBe(0)
    expect(v.stdout).toMatch(/^xcontainer version \d+\.\d+\.\d+\n(commit: [0-9a-f]{40}\n)?spec: 1\.2\.0\n$/)
    const usage = spawnSync(BIN, ["--help"], { encoding: "utf8" }).stdout
    const commands = [...usage.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]!)
    expect(commands.length).toBeGreaterThanOrEqual(17)
    for (const cmd of commands)
      for (const flag of ["-h", "--help"]) {
        const r = spawnSync(BIN, [cmd, flag], { encoding: "utf8" })
        expect({ cmd, flag, status: r.status, stderr: r.stderr }).toEqual({ cmd, flag, status: 0, stderr: "" })
        expect(r.stdout).toMatch(new RegExp(`^NAME:\\n {3}xcontainer ${cmd} - .+\\n\\nUSAGE:\\n {3}xcontainer ${cmd} `))
      }
    // urfave/cli's `help <command>` is `<command> --help`; `help nope` is an unknown command (3).
    expect(spawnSync(BIN, ["help", "kill"], { encoding: "utf8" })).toMatchObject({ status: 0, stdout: spawnSync(BIN, ["kill", "--help"], { encoding: "utf8" }).stdout })
    expect(spawnSync(BIN, ["help", "nope"]).status).toBe(spawnSync(runc!, ["help", "nope"]).status)
  })
})

describe.skipIf(bothWhy ?? (layoutFromStatfs() === "v2" ? "this host is pure cgroup v2: unified is allowed" : undefined))("config errors", () => {
  it("say \"invalid configuration: …\" where runc does (unified on a cgroup v1 host)", async () => {
    const b = bundle(["true"], (s) => ({ ...s, linux: { ...s.linux, resources: { ...s.linux!.resources, unified: { "pids.max": "10" } } } }))
    for (const [name, bin] of both) {
      const rt = runtime(bin)
      const r = await rt.call("create", "-b", b.dir, uniq("unified"))
      expect(r, name).toMatchObject({ code: 1, err: expect.stringMatching(/msg="(runc|xcontainer) create failed: (config linux\.resources\.unified: )?invalid configuration: cannot use unified on cgroup v1/) })
      expect((await rt.call("list", "-q")).out, name).toBe("")
    }
  }, 60_000)
})

const script = spawnSync("script", ["--version"]).status === 0 ? undefined : "script(1) is not installed (apt-get install bsdutils): it gives the runtime a terminal"

describe.skipIf(bothWhy ?? script)("the foreground terminal", () => {
  /** `command` under script(1), which gives it a pty: every byte it wrote there, and the terminal's output flags after. */
  const underPty = (command: string) =>
    new Promise<string>((resolve) => {
      execFile("script", ["-q", "-e", "-c", `${command}; stty -a | grep -o -- '-\\?opost'`, "/dev/null"], { encoding: "buffer", timeout: 30_000 }, (_e, out) => resolve(out.toString("latin1"))).stdin?.end()
    })

  it("ends lines with \\r\\n as runc's (run and exec -t), and leaves the terminal as it found it", async () => {
    const lines = ["sh", "-c", "printf 'one\\ntwo\\n'; echo three"]
    const tty = bundle(lines, (s) => ({ ...s, process: { ...s.process!, terminal: true } }))
    const sleeper = bundle(["sleep", "60"])
    const seen: Record<string, string[]> = {}
    for (const [name, bin] of both) {
      const rt = runtime(bin)
      const [id, bg] = [uniq("fg"), uniq("bg")]
      const out: string[] = (seen[name] = [])
      out.push(await underPty(`${bin} --root ${rt.root} run -b ${tty.dir} ${id}`))
      expect((await rt.call("run", "-d", "-b", sleeper.dir, bg)).code, name).toBe(0)
      out.push(await underPty(`${bin} --root ${rt.root} exec -t ${bg} ${lines.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ")}`))
      expect((await rt.call("delete", "-f", bg)).code, name).toBe(0)
    }
    // script(1) may echo a NUL for its closed stdin at any moment: not the runtime's.
    const norm = (xs: string[]) => xs.map((x) => x.replace(/\^@/g, ""))
    expect(norm(seen["xcontainer"]!)).toEqual(norm(seen["runc"]!))
    for (const o of norm(seen["xcontainer"]!)) expect(o).toBe("one\r\ntwo\r\nthree\r\nopost\r\n")
  }, 120_000)
})
