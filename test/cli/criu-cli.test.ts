/**
 * `checkpoint` and `restore` with runc's flags through bin/xcontainer: the flags
 * that were refused before (pre-dump, page server, empty-ns, …) now reach CRIU or
 * are refused with a reason, and a foreground restore of a terminal container
 * proxies our stdio to its new pty, as `run` does.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import type { Spec } from "../../config/spec.ts"
import { dispose, run } from "../../promise.ts"
import { bundle, expectNoTrace, stateRoot, uniq, WORK } from "../kernel/harness.ts"
import { pipes } from "../kernel/pipes.ts"
import { COUNTER, CRIU, criuSkip, sleep } from "../kernel/criu-fixtures.ts"

const skipReason = criuSkip
if (skipReason) console.warn(`SKIPPING CRIU CLI tests: ${skipReason}`)
const memTrack = !skipReason && spawnSync(CRIU, ["check", "--feature", "mem_dirty_track"], { stdio: "ignore" }).status === 0

const BIN = path.resolve(import.meta.dirname, "..", "..", "bin", "xcontainer")
const root = skipReason ? "" : stateRoot()
afterAll(() => dispose())
const xc = (args: string[]) => spawnSync(BIN, ["--root", root, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 })

describe.skipIf(skipReason)("checkpoint's flags", () => {
  it("--pre-dump leaves the container running (refused naming MemTrack where the kernel has no dirty tracking); bad flag values are usage errors", async () => {
    const id = uniq("xpd")
    const io = await pipes()
    const c = await run({ root, id, bundle: bundle(COUNTER).dir, stdio: io.stdio })
    await c.release()
    const img = path.join(WORK, uniq("images"))
    const pre = xc(["checkpoint", "--pre-dump", "--image-path", img, id])
    if (memTrack) expect(pre.status, pre.stderr).toBe(0)
    else {
      expect(pre.status).toBe(1)
      expect(pre.stderr).toMatch(/criu pre-dump: CRIU is missing features: MemTrack/)
    }
    expect(JSON.parse(xc(["state", id]).stdout)).toMatchObject({ status: "running" })
    for (const [flags, message] of [
      [["--page-server", "nowhere"], /--page-server ADDRESS:PORT/],
      [["--parent-path", "/abs"], /--parent-path must be relative/],
      [["--parent-path", "../no-such-dir"], /invalid --parent-path/],
      [["--empty-ns", "pid"], /emptyNamespaces\[1\].*\\"pid\\" cannot be left empty/],
      [["--status-fd", "x"], /invalid --status-fd/],
    ] as const) {
      const r = xc(["checkpoint", ...flags, "--image-path", img, id])
      expect(r.status, flags.join(" ")).toBe(1)
      expect(r.stderr).toMatch(message)
    }
    expect(JSON.parse(xc(["state", id]).stdout)).toMatchObject({ status: "running" })
    expect(xc(["delete", "-f", id]).status).toBe(0)
    expect(expectNoTrace(root, id)).toEqual([])
    io.close()
  })
})

describe.skipIf(skipReason)("restore in the foreground", () => {
  it("proxies our stdio to a restored terminal's new pty and exits with the program's status", async () => {
    const id = uniq("xrt")
    const tty = (s: Spec) => ({ ...s, process: { ...s.process!, terminal: true } })
    const b = bundle(["sh", "-c", 'while read l; do echo got:$l; [ "$l" = quit ] && exit 3; done'], tty)
    const c = await run({ root, id, bundle: b.dir })
    const master = c.console()!
    await sleep(200)
    const img = path.join(WORK, uniq("images"))
    await c.checkpoint({ imagePath: img })
    fs.closeSync(master)
    await c.destroy()
    const p = spawn(BIN, ["--root", root, "restore", "--image-path", img, "-b", b.dir, id], { stdio: ["pipe", "pipe", "pipe"] })
    let out = ""
    let err = ""
    p.stdout.on("data", (d: Buffer) => (out += d.toString()))
    p.stderr.on("data", (d: Buffer) => (err += d.toString()))
    const exited = new Promise<number | null>((r) => p.once("exit", (code) => r(code)))
    for (let i = 0; i < 200 && !fs.existsSync(path.join(root, id, "state.json")); i++) await sleep(50)
    await sleep(500)
    p.stdin.write("hello\n")
    for (let i = 0; i < 100 && !out.includes("got:hello"); i++) await sleep(50)
    p.stdin.write("quit\n")
    expect(await exited, err).toBe(3)
    expect(out.replaceAll("\r", "")).toContain("got:hello\n")
    expect(expectNoTrace(root, id)).toEqual([])
  })
})
