/**
 * Bad installs, as a user meets them: a wrong effect major (or none) and a missing native build give
 * a message naming the supported range or the command that builds it. The built library (dist/) is
 * copied into a temp project the way npm lays it out, next to the peers under test; effect 3 comes
 * from the npm cache (offline).
 */
import { execFile, execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { PEER_RANGES, satisfiesCaret } from "../../peers.ts"
import { buildCommand } from "../../native/addon.ts"

const REPO = path.resolve(import.meta.dirname, "..", "..")
const built = fs.existsSync(path.join(REPO, "dist", "index.js"))
if (!built) console.log("peer import tests skipped: dist/index.js is not built (npm run build)")
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xc-peers-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** effect 3.22.4's tarball from the npm cache, unpacked; undefined (with the reason printed) when the cache lacks it. */
function effect3(): string | undefined {
  const dir = path.join(tmp, "effect3")
  if (fs.existsSync(path.join(dir, "package", "package.json"))) return path.join(dir, "package")
  fs.mkdirSync(dir, { recursive: true })
  try {
    execFileSync("npm", ["pack", "effect@3.22.4", "--offline", "--silent"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
    execFileSync("tar", ["xzf", "effect-3.22.4.tgz"], { cwd: dir })
    return path.join(dir, "package")
  } catch (e) {
    console.log(`effect 3 import test skipped: effect 3.22.4 is not in the npm cache (${String(e).split("\n")[0]})`)
    return undefined
  }
}

/** A project whose node_modules holds the built xcontainer (no build/ unless `native`) and the given effect. */
function project(name: string, effectDir: string | undefined, native: boolean): string {
  const dir = path.join(tmp, name)
  const nm = path.join(dir, "node_modules")
  const xc = path.join(nm, "xcontainer")
  fs.mkdirSync(xc, { recursive: true })
  fs.copyFileSync(path.join(REPO, "package.json"), path.join(xc, "package.json"))
  fs.cpSync(path.join(REPO, "dist"), path.join(xc, "dist"), { recursive: true, filter: (f) => !f.endsWith(".blob") && !f.endsWith(".map") })
  if (native) fs.symlinkSync(path.join(REPO, "build"), path.join(xc, "build"))
  for (const dep of ["xstate", "@bufbuild/protobuf", "fast-check"]) {
    fs.mkdirSync(path.dirname(path.join(nm, dep)), { recursive: true })
    fs.symlinkSync(fs.realpathSync(path.join(REPO, "node_modules", dep)), path.join(nm, dep))
  }
  // A copy, not a link: effect resolves its own dependencies (fast-check) from this node_modules.
  if (effectDir) fs.cpSync(effectDir, path.join(nm, "effect"), { recursive: true })
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }))
  return dir
}

const node = (cwd: string, code: string): Promise<{ status: number | null; out: string; err: string }> =>
  new Promise((resolve) =>
    execFile(process.execPath, ["--input-type=module", "-e", code], { cwd, encoding: "utf8", timeout: 60_000 }, (e, out, err) =>
      resolve({ status: e === null ? 0 : typeof e.code === "number" ? e.code : null, out, err }),
    ),
  )

describe("peer ranges", () => {
  it("are package.json's peerDependencies", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as { peerDependencies: Record<string, string> }
    for (const [name, range] of Object.entries(PEER_RANGES)) expect(pkg.peerDependencies[name]).toBe(range)
  })
  it("caret: the same major, at least the range's version", () => {
    expect(satisfiesCaret("4.0.0", "^4.0.0")).toBe(true)
    expect(satisfiesCaret("4.1.5", "^4.0.0")).toBe(true)
    expect(satisfiesCaret("3.22.4", "^4.0.0")).toBe(false)
    expect(satisfiesCaret("5.0.0", "^4.0.0")).toBe(false)
    expect(satisfiesCaret("5.33.2", "^5.33.3")).toBe(false)
    expect(satisfiesCaret("5.40.0", "^5.33.3")).toBe(true)
  })
  it("the missing build's command: npm rebuild for an installed package, build:native in a checkout", () => {
    expect(buildCommand("/app/node_modules/xcontainer/build/Release/xcontainer.node")).toBe("npm rebuild xcontainer")
    expect(buildCommand("/src/xcontainer/build/Release/xcontainer.node")).toBe("npm run build:native")
  })
})

describe.skipIf(!built)("importing the built library", () => {
  it("with effect 3 installed: a message naming the supported range, for both entries", async () => {
    const e3 = effect3()
    if (!e3) return
    const dir = project("with-effect3", e3, true)
    for (const entry of ["xcontainer", "xcontainer/testing"]) {
      const r = await node(dir, `await import(${JSON.stringify(entry)})`)
      expect(r.status).not.toBe(0)
      expect(r.err).toContain(`xcontainer needs effect ^4.0.0, found 3.22.4`)
    }
  })

  it("without the native build: names `npm rebuild xcontainer`", async () => {
    const dir = project("no-native", fs.realpathSync(path.join(REPO, "node_modules", "effect")), false)
    const r = await node(
      dir,
      `const xc = await import("xcontainer")
       const { defaultSpec } = await import("xcontainer/testing")
       const fs = await import("node:fs")
       fs.mkdirSync("bundle/rootfs", { recursive: true })
       try { await xc.run({ root: "state", id: "x", bundle: "bundle", config: defaultSpec(["true"]) }) } catch (e) { console.log(e._tag, e.message) }
       await xc.dispose()`,
    )
    expect(r.err).toBe("")
    expect(r.out).toContain("npm rebuild xcontainer")
    expect(r.out).toContain("NotBuilt")
  })
})
