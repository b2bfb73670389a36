// Builds what ships: dist/index.js and dist/testing/index.js (the library, ESM; declarations come
// from tools/emit-types.mjs) and the command line as one CommonJS file
// restored from a V8 start-up snapshot (dist/cli.blob): Node then neither resolves nor compiles
// modules at start-up (DESIGN.md §8). dist/cli.js (ESM) is the same CLI without the snapshot.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { build } from "esbuild"

// `--version`'s "commit:" line, as runc's (go-runc reads it); none outside a git checkout.
let commit = ""
try {
  commit = execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
} catch {
  /* not a git checkout */
}

const common = {
  bundle: true,
  define: { __XC_COMMIT__: JSON.stringify(commit) },
  platform: "node",
  target: "node20",
  external: ["*.node"],
  logLevel: "error",
}

// The library (`xcontainer` and `xcontainer/testing`): every package import stays an import, so that
// the user's own effect, xstate and pino are the ones we run on (one runtime, one Layer graph, their
// tagged errors). Not minified: an uncaught error shows readable lines, and the source map covers only
// our own code. The two entries share their modules through one chunk (one Kernel tag, one error class).
// Chunk names carry a content hash: drop the previous build's, or the package would ship them too.
fs.rmSync("dist/chunks", { recursive: true, force: true })
await build({
  ...common,
  entryPoints: { index: "index.ts", "testing/index": "testing/index.ts" },
  outdir: "dist",
  format: "esm",
  packages: "external",
  // Class names survive in stack traces and error tags (`ConfigError`, not `ur`).
  keepNames: true,
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  sourcemap: "linked",
})
// The command line bundles everything it needs: start-up resolves no package (DESIGN.md §8). Minified
// and without keepNames, as before: keepNames grows the blob by ~8 % and each start-up reads all of it.
// dist/cli.js is the same CLI as the snapshot, loaded as a plain module (bin/xcontainer's fallback).
await build({
  ...common,
  minify: true,
  entryPoints: { cli: "cli/plain-entry.ts" },
  outdir: "dist",
  format: "esm",
  sourcemap: "linked",
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
})
await build({ ...common, minify: true, entryPoints: { "cli-snapshot": "cli/snapshot-entry.ts" }, outdir: "dist", format: "cjs" })
// The lean path for `state` and `list` (cli/lean-entry.ts; bin/xcontainer picks it by argv): a plain
// script of our own plain modules, no package at all. Loading Effect alone as a module costs more than
// the whole budget of these commands (≈ 1.3× `node -e 0`), so a package import here is a build error.
const lean = await build({ ...common, minify: true, entryPoints: { "cli-lean": "cli/lean-entry.ts" }, outdir: "dist", outExtension: { ".js": ".cjs" }, format: "cjs", metafile: true })
const packages = Object.keys(lean.metafile.inputs).filter((f) => f.includes("node_modules/"))
if (packages.length) throw new Error(`cli/lean-entry.ts must not bundle packages: ${packages.join(", ")}`)
// The start-up snapshot of that bundle, for this machine (see tools/build-blob.mjs).
execFileSync(process.execPath, ["tools/build-blob.mjs", "dist"], { stdio: "inherit" })
