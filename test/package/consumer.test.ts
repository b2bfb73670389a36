/**
 * The package as a new user gets it: `npm pack`, a fresh project that installs the tarball offline
 * from the npm cache (with its peers effect and xstate, fast-check, typescript and @types/node, at the
 * versions our lock holds), its install script building the addon, the init helper and the CLI's
 * start-up snapshot; then `tsc` of test/package/consumer-use.ts under the strictest settings a user
 * may have, running it (a live container as root, a property test over the model layer), and the bin
 * through npm's symlink. Packs the built tree (npm run build), with fresh declarations.
 */
import { execFile, type ExecFileOptions } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { bundle, isRoot } from "../kernel/harness.ts"

const REPO = path.resolve(import.meta.dirname, "..", "..")
const built = ["dist/index.js", "dist/testing/index.js", "dist/cli.js", "dist/cli-snapshot.js", "build/Release/xcontainer.node"].every((f) =>
  fs.existsSync(path.join(REPO, f)),
)
if (!built) console.log("package consumer test skipped: the tree is not built (npm run build:native && npm run build)")
if (!isRoot) console.log("package consumer test: the live container part is skipped (not root); the model property test runs")

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xc-consumer-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** Runs a command without blocking the worker's event loop (vitest talks to it meanwhile); logs its time. */
const sh = (cmd: string, args: readonly string[], opts: ExecFileOptions = {}): Promise<{ status: number | null; out: string; err: string }> => {
  const t0 = Date.now()
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: "utf8", timeout: 240_000, maxBuffer: 64 << 20, ...opts }, (e, out, err) => {
      console.log(`${path.basename(cmd)} ${args.slice(0, 2).join(" ")}: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
      resolve({ status: e === null ? 0 : typeof e.code === "number" ? e.code : null, out: String(out), err: String(err) })
    })
  })
}

/** Whether dist/index.d.ts is missing or older than a library source (what tools/emit-types.mjs reads). */
function declarationsStale(): boolean {
  const dts = path.join(REPO, "dist", "index.d.ts")
  if (!fs.existsSync(dts)) return true
  const emitted = fs.statSync(dts).mtimeMs
  const sources = ["index.ts", "live.ts", "promise.ts", "tsconfig.json", "tsconfig.build.json"].map((f) => path.join(REPO, f))
  for (const dir of ["config", "effects", "machines", "native", "state", "testing"]) {
    for (const f of fs.readdirSync(path.join(REPO, dir), { recursive: true, encoding: "utf8" })) if (f.endsWith(".ts")) sources.push(path.join(REPO, dir, f))
  }
  return sources.some((f) => fs.existsSync(f) && fs.statSync(f).mtimeMs > emitted)
}

type LockEntry = { version?: string; dependencies?: Record<string, string>; dev?: boolean; [k: string]: unknown }
/**
 * The consumer's package-lock.json: our own lock's entries (name, version, integrity) for what it
 * installs, so that `npm ci --offline` takes every tarball from the cache by its integrity and asks no
 * registry for metadata. Resolution as Node does it: a dependency of node_modules/a is
 * node_modules/a/node_modules/d if the lock has it, else the next node_modules up.
 */
function consumerLock(direct: Record<string, string>, tarball: string, xcontainer: LockEntry): object {
  const ours = JSON.parse(fs.readFileSync(path.join(REPO, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> }
  const packages: Record<string, LockEntry> = {}
  const resolve = (from: string, name: string): string => {
    for (let dir = from; ; ) {
      const candidate = `${dir === "" ? "" : `${dir}/`}node_modules/${name}`
      if (ours.packages[candidate]) return candidate
      if (dir === "") throw new Error(`our lock has no ${name} (needed by ${from || "the consumer"})`)
      const i = dir.lastIndexOf("/node_modules/")
      dir = i < 0 ? "" : dir.slice(0, i)
    }
  }
  const add = (key: string) => {
    if (packages[key]) return
    const { dev: _, ...entry } = ours.packages[key]!
    packages[key] = entry
    for (const dep of Object.keys(entry.dependencies ?? {})) add(resolve(key, dep))
  }
  for (const name of Object.keys(direct)) if (name !== "xcontainer") add(resolve("", name))
  packages["node_modules/xcontainer"] = { ...xcontainer, resolved: `file:${tarball}` }
  for (const dep of Object.keys(xcontainer.dependencies ?? {})) add(resolve("", dep))
  return { name: "consumer", lockfileVersion: 3, requires: true, packages: { "": { name: "consumer", dependencies: direct }, ...packages } }
}

describe.skipIf(!built)("the npm package", () => {
  it("packs, installs offline, type-checks strictly, runs a container and a model property test", async () => {
    // Fresh declarations (emitted again only when a library source is newer: tsc takes 15-45 s here), then
    // the tarball of the built tree (prepack would rebuild everything: ~1 min more).
    if (declarationsStale()) expect((await sh(process.execPath, ["tools/emit-types.mjs"], { cwd: REPO })).status).toBe(0)
    const packed = await sh("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], { cwd: REPO })
    expect(packed.status, packed.err).toBe(0)
    const info = (JSON.parse(packed.out) as { filename: string; size: number; files: { path: string }[] }[])[0]!
    expect(info.size).toBeLessThan(2 * 1024 * 1024)
    const files = info.files.map((f) => f.path)
    for (const f of ["dist/index.d.ts", "dist/testing/index.d.ts", "bin/xcontainer", "binding.gyp", "native/init/main.c", "tools/build-blob.mjs"]) {
      expect(files).toContain(f)
    }
    expect(files.filter((f) => f.startsWith("test/") || f.endsWith(".blob") || f === "dist/cli.js.map")).toEqual([])

    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as Record<string, Record<string, string>>
    const dev = pkg["devDependencies"]!
    const project = path.join(tmp, "project")
    fs.mkdirSync(project)
    const direct: Record<string, string> = { xcontainer: `file:../${info.filename}` }
    for (const name of ["effect", "xstate", "fast-check", "typescript", "@types/node"]) direct[name] = dev[name]!
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: direct }, null, 2))
    const { scripts: _s, devDependencies: _d, files: _f, exports: _e, main: _m, types: _t, ...meta } = pkg
    const xcontainerEntry: LockEntry = { ...meta, hasInstallScript: true } as LockEntry
    fs.writeFileSync(path.join(project, "package-lock.json"), JSON.stringify(consumerLock(direct, `../${info.filename}`, xcontainerEntry), null, 2))

    // Offline: everything from the npm cache; the install script builds the native part and the blob.
    // JOBS=max: node-gyp compiles the addon's files in parallel.
    const installed = await sh("npm", ["ci", "--offline", "--no-audit", "--no-fund", "--foreground-scripts"], {
      cwd: project,
      env: { ...process.env, JOBS: "max" },
    })
    expect(installed.status, `${installed.out}\n${installed.err}`).toBe(0)
    const xc = path.join(project, "node_modules", "xcontainer")
    for (const f of ["build/Release/xcontainer.node", "build/Release/xcontainer-init", "dist/cli.blob"]) expect(fs.existsSync(path.join(xc, f)), f).toBe(true)

    // The bin through npm's symlink, on its snapshot.
    const version = await sh(path.join(project, "node_modules", ".bin", "xcontainer"), ["--version"])
    expect(version).toMatchObject({ status: 0, err: "", out: expect.stringMatching(/spec: 1\.2\.0/) })

    // The user's file, type-checked the strictest way and compiled.
    fs.copyFileSync(path.join(REPO, "test", "package", "consumer-use.ts"), path.join(project, "use.ts"))
    const tsconfig = {
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        exactOptionalPropertyTypes: true,
        skipLibCheck: false,
        types: ["node"],
        outDir: "out",
      },
      files: ["use.ts"],
    }
    fs.writeFileSync(path.join(project, "tsconfig.json"), JSON.stringify(tsconfig, null, 2))

    // The newest effect of the peer range (what our lock holds), then the lowest (^4.0.0 → 4.0.0, from the
    // npm cache: .ci/setup adds it), laid out in a copy of the project as npm would (effect has no dependencies).
    const lowest = pkg["peerDependencies"]!["effect"]!.replace(/^\^/, "")
    const lowestDir = path.join(tmp, "effect-lowest")
    fs.mkdirSync(lowestDir)
    const fetched = await sh("npm", ["pack", `effect@${lowest}`, "--offline", "--silent"], { cwd: lowestDir })
    expect(fetched.status, `effect ${lowest} is not in the npm cache (bash .ci/setup adds it): ${fetched.err}`).toBe(0)
    const lowestProject = path.join(tmp, "project-lowest")
    fs.cpSync(project, lowestProject, { recursive: true, verbatimSymlinks: true })
    fs.rmSync(path.join(lowestProject, "node_modules", "effect"), { recursive: true })
    fs.mkdirSync(path.join(lowestProject, "node_modules", "effect"))
    expect((await sh("tar", ["xzf", path.join(lowestDir, `effect-${lowest}.tgz`), "--strip-components=1", "-C", path.join(lowestProject, "node_modules", "effect")])).status).toBe(0)

    for (const [dir, expected] of [[project, dev["effect"]!], [lowestProject, lowest]] as const) {
      const effectVersion = (JSON.parse(fs.readFileSync(path.join(dir, "node_modules", "effect", "package.json"), "utf8")) as { version: string }).version
      expect(effectVersion).toBe(expected)
      // Zero errors, xstate's own declarations included: xcontainer's public types never load them.
      const tsc = await sh(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "."], { cwd: dir })
      const errors = tsc.out.split("\n").filter((l) => /error TS\d+/.test(l))
      expect(errors, `effect ${effectVersion}`).toEqual([])
      expect(tsc.status, tsc.out).toBe(0)
      expect(fs.existsSync(path.join(dir, "out", "use.js"))).toBe(true)

      const env: NodeJS.ProcessEnv = { ...process.env }
      if (isRoot) env["XC_BUNDLE"] = bundle(["true"]).dir
      const ran = await sh(process.execPath, ["out/use.js"], { cwd: dir, env })
      console.log(`effect ${effectVersion}:\n${ran.out}`)
      expect(ran.status, ran.err).toBe(0)
      if (isRoot) {
        expect(ran.out).toMatch(/live promise: \{"code":0,"signal":null\}/)
        expect(ran.out).toMatch(/live effect: \{"exit":\{"code":0,"signal":null\},"missing":"not found: ContainerNotFound"\}/)
        expect(ran.out).toMatch(/live load after destroy: ContainerNotFound/)
        expect(ran.out).toMatch(/live exec: hello from sh/)
        expect(ran.out).toMatch(/live loaded wait \(other process\): \{"code":null,"signal":null,"known":false\}/)
      }
      expect(ran.out).toMatch(/machine: container, first status created/)
      expect(ran.out).toMatch(/model property: 15 runs passed/)
    }
  }, 420_000)
})
