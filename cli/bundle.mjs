// Bundles the command line into one ESM file (dist/cli.js): Node's start-up then reads one file
// instead of resolving hundreds of modules (DESIGN.md §8). pino is bundled too; its worker
// transports are not used.
import { build } from "esbuild"

await build({
  entryPoints: { cli: "cli/main.ts", index: "index.ts" },
  outdir: "dist",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minify: true,
  sourcemap: "linked",
  external: ["*.node"],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: "warning",
})
