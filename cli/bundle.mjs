// Builds what ships: dist/index.js (the library, ESM) and the command line as one CommonJS file
// restored from a V8 start-up snapshot (dist/cli.blob): Node then neither resolves nor compiles
// modules at start-up (DESIGN.md §8). dist/cli.js (ESM) is the same CLI without the snapshot.
import { execFileSync } from "node:child_process"
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
  minify: true,
  external: ["*.node"],
  logLevel: "error",
}

const esm = {
  ...common,
  outdir: "dist",
  format: "esm",
  sourcemap: "linked",
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
}
await build({ ...esm, entryPoints: { cli: "cli/main.ts" } })
// The library imports the user's effect (a peer dependency), never a copy of its own: one runtime,
// one Layer graph, and its tagged errors are the ones the user's Effect.catchTag sees.
await build({ ...esm, entryPoints: { index: "index.ts" }, external: [...common.external, "effect", "effect/*"] })
await build({ ...common, entryPoints: { "cli-snapshot": "cli/snapshot-entry.ts" }, outdir: "dist", format: "cjs" })
// NODE_NO_WARNINGS: Node warns that worker_threads and module are "not yet fully verified" in snapshots;
// pino only loads worker_threads for transports, which we do not use, and `module` only for createRequire.
execFileSync(process.execPath, ["--snapshot-blob", "dist/cli.blob", "--build-snapshot", "dist/cli-snapshot.js"], {
  stdio: "inherit",
  env: { ...process.env, NODE_NO_WARNINGS: "1" },
})
