/**
 * bin/xcontainer as podman and containerd drive it: one process per operation,
 * state carried by --root, runc's exit statuses and output shapes.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { bundle, expectNoTrace, processesWith, skipReason, stateRoot, uniq } from "../kernel/harness.ts"

const BIN = path.resolve(import.meta.dirname, "..", "..", "bin", "xcontainer")
const root = skipReason ? "" : stateRoot()

/** Runs the CLI. Output goes to files, not pipes: a detached container keeps its stdio open for as long as it lives. */
const xc = (args: string[], cwd?: string) => {
  const dir = fs.mkdtempSync(path.join(root, "io-"))
  const [out, err] = [path.join(dir, "out"), path.join(dir, "err")]
  const fds = [fs.openSync("/dev/null", "r"), fs.openSync(out, "w"), fs.openSync(err, "w")]
  const r = spawnSync(BIN, ["--root", root, ...args], { cwd, stdio: fds, timeout: 20_000 })
  fds.forEach((fd) => fs.closeSync(fd))
  const res = { code: r.status, out: fs.readFileSync(out, "utf8"), err: fs.readFileSync(err, "utf8") }
  fs.rmSync(dir, { recursive: true })
  return res
}

describe("the command line", () => {
  it("prints its version and refuses unknown commands and flags", () => {
    expect(spawnSync(BIN, ["--version"], { encoding: "utf8" }).stdout).toMatch(/spec: 1\.2\.0/)
    // runc's exit statuses: 3 for an unknown command, 1 for an unknown flag, 0 and the usage for none.
    const bad = spawnSync(BIN, ["frobnicate"], { encoding: "utf8" })
    expect(bad.status).toBe(3)
    expect(bad.stderr).toMatch(/No help topic for 'frobnicate'/)
    expect(spawnSync(BIN, [], { encoding: "utf8" })).toMatchObject({ status: 0, stdout: expect.stringMatching(/^usage: xcontainer/m) })
    expect(spawnSync(BIN, ["list", "--nope"], { encoding: "utf8" })).toMatchObject({ status: 1, stderr: expect.stringMatching(/flag provided but not defined: --nope/) })
    expect(spawnSync(BIN, ["list", "-f", "yaml"], { encoding: "utf8" }).status).toBe(1)
    // --systemd-cgroup: refused where cgroups are made (no systemd here), ignored elsewhere, as runc.
    const sd = spawnSync(BIN, ["--systemd-cgroup", "create", "x"], { encoding: "utf8" })
    expect(sd).toMatchObject({ status: 1, stderr: expect.stringMatching(/systemd not running on this host/) })
    expect(spawnSync(BIN, ["--systemd-cgroup", "--root", os.tmpdir(), "list", "-q"]).status).toBe(0)
    expect(spawnSync(BIN, ["--rootless", "maybe", "run", "x"], { encoding: "utf8" }).stderr).toMatch(/--rootless: invalid value \\"maybe\\"/)
    const flag = spawnSync(BIN, ["--nope", "list"], { encoding: "utf8" })
    expect(flag.status).toBe(1)
    expect(flag.stderr).toMatch(/flag provided but not defined: --nope/)
  }, 120_000)
})

describe("the --log file", () => {
  it("holds runc's JSON lines: a string level and an RFC 3339 time (containerd's go-runc decodes them)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-log-"))
    const log = path.join(dir, "log.json")
    expect(spawnSync(BIN, ["--root", dir, "--log", log, "--log-format", "json", "start", "nope"]).status).toBe(1)
    const lines = fs.readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines.at(-1)).toMatchObject({ level: "error", msg: expect.stringMatching(/nope does not exist/), time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) })
    fs.rmSync(dir, { recursive: true })
  })
})

describe("spec and features", () => {
  it("writes runc's default config.json once, and a rootless one on request", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-spec-"))
    expect(spawnSync(BIN, ["spec", "-b", dir]).status).toBe(0)
    const spec = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as { process: { args: string[] }; linux: { namespaces: { type: string }[] } }
    expect(spec.process.args).toEqual(["sh"])
    const again = spawnSync(BIN, ["spec", "-b", dir], { encoding: "utf8" })
    expect(again.status).toBe(1)
    expect(again.stderr).toMatch(/exists/)
    fs.rmSync(path.join(dir, "config.json"))
    expect(spawnSync(BIN, ["spec", "--rootless", "-b", dir]).status).toBe(0)
    const rootless = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as { linux: { namespaces: { type: string }[]; uidMappings: unknown[] } }
    expect(rootless.linux.namespaces.map((n) => n.type)).toContain("user")
    expect(rootless.linux.uidMappings).toHaveLength(1)
    // runc 1.1.5's `spec --rootless` mounts, in its order.
    const mounts = (rootless as unknown as { mounts: { destination: string }[] }).mounts.map((m) => m.destination)
    expect(mounts).toEqual(["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"])
  })

  it("prints features that match what the runtime does", () => {
    const f = JSON.parse(spawnSync(BIN, ["features"], { encoding: "utf8" }).stdout) as { linux: { namespaces: string[]; capabilities: string[] }; mountOptions: string[] }
    expect(f.linux.namespaces).toEqual(["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"])
    expect(f.linux.capabilities).toContain("CAP_CHECKPOINT_RESTORE")
    expect(f.mountOptions).toContain("rbind")
    expect(f.mountOptions).toContain("rro")
    expect(f.mountOptions).toContain("tmpcopyup")
    expect(f).toMatchObject({ hooks: expect.arrayContaining(["createContainer", "poststop"]), linux: { seccomp: { enabled: true } } })
    // runc's top-level keys in runc's order; checkpoint advertised under runc's annotation.
    expect(Object.keys(f)).toEqual(["ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations"])
    expect(f).toMatchObject({ annotations: { "org.opencontainers.runc.checkpoint.enabled": "true" }, linux: { cgroup: { systemd: false }, apparmor: { enabled: false } } })
  })
})

describe.skipIf(skipReason)("the command line on the real kernel", () => {
  it("creates in one process and starts in another", () => {
    const b = bundle(["sh", "-c", "echo started > /dev/shm/x; sleep 30"])
    const id = uniq("cli")
    const pidFile = path.join(b.dir, "pid")
    expect(xc(["create", "--bundle", b.dir, "--pid-file", pidFile, id])).toMatchObject({ code: 0, err: "" })
    const pid = Number(fs.readFileSync(pidFile, "utf8"))
    const created = JSON.parse(xc(["state", id]).out) as Record<string, unknown>
    expect(created).toMatchObject({ ociVersion: expect.any(String), id, pid, status: "created", bundle: b.dir })
    expect(xc(["start", id]).code).toBe(0)
    expect(JSON.parse(xc(["state", id]).out)).toMatchObject({ status: "running", pid })
    const list = JSON.parse(xc(["list", "-f", "json"]).out) as Array<{ id: string; status: string }>
    expect(list.find((c) => c.id === id)?.status).toBe("running")
    expect(xc(["list"]).out).toMatch(new RegExp(`^ID\\s+PID\\s+STATUS\\s+BUNDLE\\s+CREATED\\s+OWNER\\n${id}\\s+${pid}\\s+running`, "m"))
    const refused = xc(["delete", id])
    expect(refused.code).toBe(1)
    expect(refused.err).toMatch(/running/)
    expect(xc(["kill", id, "KILL"]).code).toBe(0)
    for (let i = 0; i < 50 && fs.existsSync(`/proc/${pid}`); i++) spawnSync("sleep", ["0.02"])
    expect(JSON.parse(xc(["state", id]).out)).toMatchObject({ status: "stopped" })
    expect(xc(["delete", id]).code).toBe(0)
    expect(xc(["state", id]).code).toBe(1)
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("run exits with the program's status, 128+signal when killed", () => {
    const id = uniq("st")
    expect(xc(["run", "-b", bundle(["sh", "-c", "exit 3"]).dir, id]).code).toBe(3)
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("run in the foreground exits 128+signal when the container is killed", async () => {
    const id = uniq("sig")
    const child = spawn(BIN, ["--root", root, "run", "-b", bundle(["sleep", "30"]).dir, id], { stdio: "ignore" })
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)))
    for (let i = 0; i < 100 && !xc(["state", id]).out.includes('"running"'); i++) await new Promise((r) => setTimeout(r, 20))
    expect(xc(["kill", id, "9"]).code).toBe(0)
    expect(await exited).toBe(137)
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("passes stdio through", () => {
    const r = xc(["run", uniq("io")], bundle(["sh", "-c", "echo out; echo err >&2"]).dir)
    expect(r).toMatchObject({ code: 0, out: "out\n", err: "err\n" })
  })

  it("delete -f removes a running container and everything it had", () => {
    const id = uniq("force")
    expect(xc(["run", "-d", "-b", bundle(["sleep", "30"]).dir, id]).code).toBe(0)
    expect(JSON.parse(xc(["state", id]).out)).toMatchObject({ status: "running" })
    expect(xc(["kill", "--all", id, "0"]).code).toBe(0)
    expect(xc(["delete", "-f", id]).code).toBe(0)
    expect(expectNoTrace(root, id, id)).toEqual([])
  })

  it("reports bad input on stderr, exits non-zero, and leaves nothing", () => {
    const id = uniq("badcfg")
    const b = bundle(["true"], (s) => ({ ...s, mounts: [{ destination: "rel", type: "tmpfs" }] }))
    const r = xc(["create", "-b", b.dir, id])
    expect(r.code).toBe(1)
    // logrus's text line: the message quoted as Go's %q, its quotes escaped.
    expect(r.err).toMatch(/mounts\[0\]\.destination: \\"rel\\" is not an absolute path/)
    expect(xc(["create", "-b", bundle(["true"]).dir, "../evil"]).err).toMatch(/not a valid container id/)
    expect(xc(["kill", id, "NOTASIGNAL"]).err).toMatch(/unknown signal/)
    expect(xc(["start", "nonexistent"]).err).toMatch(/does not exist/)
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("a create killed at any moment leaves nothing that delete -f cannot remove", async () => {
    const b = bundle(["sleep", "30"])
    for (let i = 0; i < 12; i++) {
      const id = uniq("crash")
      const child = spawn(BIN, ["--root", root, "create", "-b", b.dir, id], { stdio: "ignore" })
      const exited = new Promise((r) => child.on("exit", r))
      await new Promise((r) => setTimeout(r, 10 + ((i * 37) % 140)))
      child.kill("SIGKILL")
      await exited
      expect(xc(["delete", "-f", id]).code).toBe(0)
      // An init whose creator died before MSG_GO sees EOF and exits by itself; give it a moment.
      for (let t = 0; t < 50 && expectNoTrace(root, id).length; t++) await new Promise((r) => setTimeout(r, 20))
      expect(expectNoTrace(root, id)).toEqual([])
    }
  })

  it("exec runs a process in the container with runc's flags and exit status", () => {
    const id = uniq("exec")
    expect(xc(["run", "-d", "-b", bundle(["sleep", "30"], (s) => ({ ...s, hostname: "cli-box" })).dir, id]).code).toBe(0)
    expect(xc(["exec", id, "sh", "-c", "hostname; echo $$"])).toMatchObject({ code: 0, out: expect.stringMatching(/^cli-box\n\d+\n$/) })
    expect(xc(["exec", "-u", "1000:1001", "--cwd", "/tmp", "-e", "FOO=bar", id, "sh", "-c", "id -u; id -g; pwd; echo $FOO; exit 4"])).toMatchObject({
      code: 4,
      out: "1000\n1001\n/tmp\nbar\n",
    })
    // As runc: a failed exec is "exec failed: …", status 255.
    expect(xc(["exec", id, "/nope"])).toMatchObject({ code: 255, err: expect.stringMatching(/execve \/nope: ENOENT/) })
    // --cap adds to the config's sets: exactly those in the bounding and effective sets.
    expect(xc(["exec", "--cap", "CAP_CHOWN", id, "grep", "CapEff", "/proc/self/status"]).out).toBe("CapEff:\t0000000020000421\n")
    // A paused container takes no exec unless --ignore-paused (the process then starts frozen).
    expect(xc(["pause", id]).code).toBe(0)
    expect(xc(["exec", id, "true"]).err).toMatch(/cannot exec in a paused container \(use --ignore-paused to override\)/)
    expect(xc(["exec", "-d", "--ignore-paused", id, "true"]).code).toBe(0)
    expect(xc(["resume", id]).code).toBe(0)
    expect(xc(["exec", "-u", "root", id, "true"]).err).toMatch(/--user: \\"root\\" is not uid\[:gid\]/)
    expect(xc(["delete", "-f", id]).code).toBe(0)
    expect(expectNoTrace(root, id)).toEqual([])
  })

  it("CVE-2016-3697: exec -u takes a number as a number, even when /etc/passwd has a user of that name", () => {
    const id = uniq("uid")
    const b = bundle(["sleep", "30"], undefined, true)
    fs.appendFileSync(path.join(b.dir, "rootfs", "etc", "passwd"), "1:x:0:0:impostor:/:/bin/sh\n")
    expect(xc(["run", "-d", "-b", b.dir, id]).code).toBe(0)
    expect(xc(["exec", "-u", "1", id, "id", "-u"])).toMatchObject({ code: 0, out: "1\n" })
    expect(xc(["delete", "-f", id]).code).toBe(0)
  })

  it("logs to --log as JSON (with --debug, what the command does)", () => {
    const log = path.join(stateRoot(), "log.json")
    const id = uniq("log")
    expect(xc(["--debug", "--log", log, "--log-format", "json", "run", "-b", bundle(["true"]).dir, id]).code).toBe(0)
    const lines = fs.readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { msg: string })
    expect(lines.length).toBeGreaterThan(0)
  })

  it("writes the pid file through a fresh temporary: a symlink planted at a guessable name is not followed", () => {
    const dir = fs.mkdtempSync(path.join(root, "pf-"))
    const victim = path.join(dir, "passwd-copy")
    fs.writeFileSync(victim, "root:x:0:0::/root:/bin/sh\n")
    // The names a predictable temporary would have had (the old one, runc's).
    for (const name of [".pid2.tmp", ".pid2"]) fs.symlinkSync(victim, path.join(dir, name))
    const id = uniq("pf")
    const r = xc(["create", "-b", bundle(["sleep", "30"]).dir, "--pid-file", path.join(dir, "pid2"), id])
    expect(r).toMatchObject({ code: 0, err: "" })
    expect(fs.readFileSync(victim, "utf8")).toBe("root:x:0:0::/root:/bin/sh\n")
    const pid = Number(fs.readFileSync(path.join(dir, "pid2"), "utf8"))
    expect(JSON.parse(xc(["state", id]).out)).toMatchObject({ status: "created", pid })
    // Nothing but the planted links, the victim and the pid file: the temporary is gone.
    expect(fs.readdirSync(dir).sort()).toEqual([".pid2", ".pid2.tmp", "passwd-copy", "pid2"])
    expect(xc(["delete", "-f", id]).code).toBe(0)
    expect(expectNoTrace(root, id)).toEqual([])
    fs.rmSync(dir, { recursive: true })
  })

  it("a pid file that cannot be written destroys the container (create, run) or kills the exec'd process, with a typed error", () => {
    const bad = "/nonexistent/dir/pid"
    for (const cmd of [["create"], ["run", "-d"]]) {
      const id = uniq("pfbad")
      const r = xc([...cmd, "-b", bundle(["sleep", "30"]).dir, "--pid-file", bad, id])
      expect(r.code).toBe(1)
      // One line naming the flag, the directory and the errno: no Node stack.
      expect(r.err).toMatch(new RegExp(`^time="[^"]+" level=error msg="xcontainer ${cmd[0]} failed: open \\(--pid-file\\) /nonexistent/dir/\\.pid\\.[0-9a-f]+: ENOENT"\n$`))
      expect(xc(["state", id]).err).toMatch(/does not exist/)
      expect(expectNoTrace(root, id, id)).toEqual([])
    }
    const id = uniq("pfexec")
    expect(xc(["run", "-d", "-b", bundle(["sleep", "30"]).dir, id]).code).toBe(0)
    const marker = uniq("exec-marker")
    const r = xc(["exec", "-d", "--pid-file", bad, id, "sh", "-c", `sleep 30; echo ${marker}`])
    expect(r.code).toBe(255) // runc: every failed exec exits 255
    expect(r.err).toMatch(/--pid-file.*ENOENT/)
    expect(processesWith(marker)).toEqual([])
    expect(JSON.parse(xc(["state", id]).out)).toMatchObject({ status: "running" })
    expect(xc(["delete", "-f", id]).code).toBe(0)
    expect(expectNoTrace(root, id)).toEqual([])
  })
})
