/**
 * `state`, `list` and `kill` on the lean path (cli/lean-entry.ts, which bin/xcontainer picks by argv): the
 * same output, byte for byte, and the same errors as the full command line (XCONTAINER_LEAN=0) for
 * a container in each status, and a start-up that restores no V8 snapshot: the peak RSS of a `state`
 * stays within 10 MiB of `node -e 0` (the target; the full CLI's was ~18 MiB above it).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { bundle, skipReason, stateRoot, uniq } from "../kernel/harness.ts"

const BIN = path.resolve(import.meta.dirname, "..", "..", "bin", "xcontainer")
const root = skipReason ? "" : stateRoot()
const built = fs.existsSync(path.resolve(import.meta.dirname, "..", "..", "dist", "cli.js"))
if (!built) console.log("lean-path tests skipped: the CLI is not built (npm run build)")

/** Runs the CLI, lean (the default) or full; output to files (a detached container keeps its stdio). */
const xc = (args: string[], lean = true) => {
  const dir = fs.mkdtempSync(path.join(root, "io-"))
  const [out, err] = [path.join(dir, "out"), path.join(dir, "err")]
  const fds = [fs.openSync("/dev/null", "r"), fs.openSync(out, "w"), fs.openSync(err, "w")]
  const env = { ...process.env, XCONTAINER_LEAN: lean ? "1" : "0" }
  const r = spawnSync(BIN, ["--root", root, ...args], { stdio: fds, timeout: 20_000, env })
  fds.forEach((fd) => fs.closeSync(fd))
  const res = { code: r.status, out: fs.readFileSync(out, "utf8"), err: fs.readFileSync(err, "utf8").replace(/time="[^"]*"/g, "time=T") }
  fs.rmSync(dir, { recursive: true })
  return res
}

/** Peak RSS (KiB) of a command, by the kernel's accounting (/usr/bin/time), the median of 5. */
const peakKiB = (argv: string[], env: NodeJS.ProcessEnv): number => {
  const out = path.join(root, `time-${process.pid}`)
  const runs = Array.from({ length: 5 }, () => {
    spawnSync("/usr/bin/time", ["-f", "%M", "-o", out, ...argv], { stdio: "ignore", env })
    return Number(fs.readFileSync(out, "utf8").trim().split("\n").pop())
  })
  fs.rmSync(out, { force: true })
  return runs.sort((a, b) => a - b)[2]!
}

const ids: string[] = []
describe.skipIf(skipReason || !built)("the lean path of state and list", () => {
  afterAll(() => {
    for (const id of ids) xc(["delete", "-f", id])
  })

  it("prints what the full command line prints, for each status, and its errors", () => {
    const { dir } = bundle(["sleep", "1000"])
    const [created, running, paused, stopped] = ["created", "running", "paused", "stopped"].map((s) => uniq(`lean-${s}`))
    ids.push(created!, running!, paused!, stopped!)
    expect(xc(["create", "-b", dir, created!]).code).toBe(0)
    for (const id of [running!, paused!, stopped!]) expect(xc(["run", "-d", "-b", dir, id]).code).toBe(0)
    expect(xc(["pause", paused!]).code).toBe(0)
    expect(xc(["kill", stopped!, "KILL"]).code).toBe(0)
    for (let i = 0; i < 100 && JSON.parse(xc(["state", stopped!], false).out).status !== "stopped"; i++) spawnSync("sleep", ["0.02"])

    for (const [id, status] of [[created, "created"], [running, "running"], [paused, "paused"], [stopped, "stopped"]] as const) {
      const lean = xc(["state", id!])
      expect(JSON.parse(lean.out)).toMatchObject({ id, status })
      expect(lean).toEqual(xc(["state", id!], false))
    }
    for (const flags of [[], ["-q"], ["-f", "json"], ["--format=json"], ["--format", "table"]]) expect(xc(["list", ...flags])).toEqual(xc(["list", ...flags], false))
    // Handed to the full path, which reports them: a missing container, bad usage, a corrupt record.
    for (const args of [["state", "nope"], ["state"], ["state", "a", "b"], ["list", "-f", "yaml"], ["list", "--nope"], ["state", "--help"]]) {
      const lean = xc(args)
      expect(lean).toEqual(xc(args, false))
    }
    const corrupt = uniq("lean-corrupt")
    fs.mkdirSync(path.join(root, corrupt))
    fs.writeFileSync(path.join(root, corrupt, "state.json"), JSON.stringify({ version: 1, id: corrupt }))
    const bad = xc(["state", corrupt])
    expect(bad.code).toBe(1)
    expect(bad.err).toMatch(/corrupt/)
    expect(bad).toEqual(xc(["state", corrupt], false))
    fs.rmSync(path.join(root, corrupt), { recursive: true })
  }, 60_000)

  it("kill: signals a live init, SIGKILL to a paused container thaws it (handed over), and errors as the full path", () => {
    const { dir } = bundle(["sleep", "1000"])
    const [live, paused] = [uniq("lean-kill"), uniq("lean-kill-paused")]
    ids.push(live, paused)
    for (const id of [live, paused]) expect(xc(["run", "-d", "-b", dir, id]).code).toBe(0)
    expect(xc(["pause", paused]).code).toBe(0)
    const stoppedSoon = (id: string) => {
      for (let i = 0; i < 100 && JSON.parse(xc(["state", id]).out).status !== "stopped"; i++) spawnSync("sleep", ["0.02"])
      return JSON.parse(xc(["state", id]).out).status
    }
    expect(xc(["kill", live, "CONT"])).toEqual({ code: 0, out: "", err: "" })
    expect(xc(["kill", live, "SIGKILL"])).toEqual({ code: 0, out: "", err: "" })
    expect(stoppedSoon(live)).toBe("stopped")
    expect(xc(["kill", paused, "9"])).toEqual({ code: 0, out: "", err: "" })
    expect(stoppedSoon(paused)).toBe("stopped")
    for (const args of [["kill", live], ["kill", "nope"], ["kill", paused, "NOPE"], ["kill"], ["kill", live, "TERM", "x"]]) {
      const lean = xc(args)
      expect(lean.code).toBe(1)
      expect(lean).toEqual(xc(args, false))
    }
  }, 60_000)

  it("restores no snapshot: peak RSS of a state and a kill within 10 MiB of node -e 0", () => {
    const id = uniq("lean-rss")
    ids.push(id)
    expect(xc(["create", "-b", bundle(["sleep", "1000"]).dir, id]).code).toBe(0)
    const { NODE_EXTRA_CA_CERTS: _ca, ...env } = process.env
    const node = peakKiB([process.execPath, "-e", "0"], env)
    const state = peakKiB([BIN, "--root", root, "state", id], env)
    expect(state - node).toBeLessThanOrEqual(10 * 1024)
    const kill = peakKiB([BIN, "--root", root, "kill", id, "CONT"], env)
    expect(kill - node).toBeLessThanOrEqual(10 * 1024)
  }, 60_000)
})
