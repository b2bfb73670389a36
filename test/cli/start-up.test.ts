/**
 * bin/xcontainer where its V8 start-up snapshot cannot load: a blob only loads under the V8 version,
 * flags and CPU features that built it (a package built on one machine and run on another; Node exits
 * with status 14 before any JavaScript). The command must still start, from the plain bundle
 * (dist/cli.js), rebuild the blob for the next call, and work through npm's bin symlink.
 * Needs no root: --version and list touch no container.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const REPO = path.resolve(import.meta.dirname, "..", "..")
const built = fs.existsSync(path.join(REPO, "dist", "cli.js")) && fs.existsSync(path.join(REPO, "dist", "cli-snapshot.js"))
if (!built) console.log("start-up tests skipped: dist/cli.js is not built (npm run build)")

let pkg = ""
/** A copy of the installed package's runtime files, as npm lays them out (the addon is linked, not built again). */
const install = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-start-"))
  for (const f of ["bin/xcontainer", "tools/build-blob.mjs", "dist/cli.js", "dist/cli-snapshot.js", "dist/cli-lean.cjs"]) {
    fs.mkdirSync(path.join(dir, path.dirname(f)), { recursive: true })
    fs.copyFileSync(path.join(REPO, f), path.join(dir, f))
  }
  fs.chmodSync(path.join(dir, "bin/xcontainer"), 0o755)
  fs.symlinkSync(path.join(REPO, "build"), path.join(dir, "build"))
  return dir
}
const run = (bin: string, args: string[]) => spawnSync(bin, args, { encoding: "utf8", timeout: 30_000 })
const cpuKey = (): string => {
  try {
    return fs.readFileSync("/sys/devices/system/cpu/modalias", "utf8").split("\n")[0] ?? ""
  } catch {
    return ""
  }
}
/** Waits for the background rebuild: the key file names this CPU again. */
const rebuilt = async (dist: string): Promise<boolean> => {
  for (let i = 0; i < 120; i++) {
    const key = fs.existsSync(path.join(dist, "cli.blob.cpu")) ? fs.readFileSync(path.join(dist, "cli.blob.cpu"), "utf8") : ""
    if (key.split("\n")[0] === cpuKey()) return true
    await new Promise((r) => setTimeout(r, 250))
  }
  return false
}

describe.skipIf(!built)("bin/xcontainer start-up", () => {
  beforeAll(() => {
    pkg = install()
  })
  afterAll(() => {
    if (pkg !== "") fs.rmSync(pkg, { recursive: true, force: true })
  })

  it("runs from the plain bundle when the blob was built for another machine, and rebuilds it", async () => {
    const dist = path.join(pkg, "dist")
    // An incompatible blob: built under other V8 flags (--no-opt is hashed into the blob's tag, as a
    // CPU feature is), with the key of another CPU. Node itself refuses it with status 14.
    const entry = path.join(pkg, "entry.cjs")
    fs.writeFileSync(entry, 'require("node:v8").startupSnapshot.setDeserializeMainFunction(() => {})\n')
    const made = spawnSync(process.execPath, ["--no-opt", "--snapshot-blob", path.join(dist, "cli.blob"), "--build-snapshot", entry], {
      env: { ...process.env, NODE_NO_WARNINGS: "1" },
    })
    expect(made.status).toBe(0)
    const refused = run(process.execPath, ["--snapshot-blob", path.join(dist, "cli.blob"), "--", "--version"])
    expect(refused.status).toBe(14)
    expect(refused.stderr).toMatch(/Failed to load the startup snapshot/)
    fs.writeFileSync(path.join(dist, "cli.blob.cpu"), "cpu:type:x86,ven0000fam0000mod0000:feature:,0000\n/usr/bin/node\n")

    const r = run(path.join(pkg, "bin", "xcontainer"), ["--version"])
    expect(r.stderr).toBe("")
    expect(r).toMatchObject({ status: 0, stdout: expect.stringMatching(/^xcontainer version .*\ncommit: .*\nspec: 1\.2\.0/) })

    // Rebuilt in the background for this machine, atomically: no temporary file is left, and the new blob loads.
    expect(await rebuilt(dist)).toBe(true)
    expect(fs.readdirSync(dist).filter((f) => f.includes(".tmp-"))).toEqual([])
    const again = run(process.execPath, ["--snapshot-blob", path.join(dist, "cli.blob"), "--", "--version"])
    expect(again).toMatchObject({ status: 0, stdout: expect.stringMatching(/spec: 1\.2\.0/) })
    expect(run(path.join(pkg, "bin", "xcontainer"), ["--version"])).toMatchObject({ status: 0, stderr: "" })
  }, 60_000)

  it("starts without any blob (a fresh install) and through npm's bin symlink", () => {
    fs.rmSync(path.join(pkg, "dist", "cli.blob"), { force: true })
    fs.rmSync(path.join(pkg, "dist", "cli.blob.cpu"), { force: true })
    // npm links node_modules/.bin/xcontainer -> ../xcontainer/bin/xcontainer: a relative link from another directory.
    const binDir = fs.mkdtempSync(path.join(os.tmpdir(), "xc-dotbin-"))
    try {
      fs.symlinkSync(path.relative(binDir, path.join(pkg, "bin", "xcontainer")), path.join(binDir, "xcontainer"))
      const r = run(path.join(binDir, "xcontainer"), ["--version"])
      expect(r).toMatchObject({ status: 0, stderr: "", stdout: expect.stringMatching(/spec: 1\.2\.0/) })
      const list = run(path.join(binDir, "xcontainer"), ["--root", path.join(binDir, "root"), "list", "-q"])
      expect(list).toMatchObject({ status: 0, stderr: "" })
    } finally {
      fs.rmSync(binDir, { recursive: true, force: true })
    }
  }, 60_000)
})
