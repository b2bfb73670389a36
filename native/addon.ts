/**
 * Loads the native addon (build/Release/xcontainer.node) and locates the init
 * helper binary next to it. Its contract is native/addon-types.ts.
 *
 * Paths are resolved from this module's URL: from native/addon.ts (tsx,
 * vitest) the build directory is one level up; from the esbuild bundle in
 * dist/ it is one or two levels up. XCONTAINER_ADDON / XCONTAINER_INIT
 * override both.
 */
import { existsSync } from "node:fs"
import * as path from "node:path"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import type { Addon } from "./addon-types.ts"

export type { Addon, ExitStatus, SpawnHelperOptions, Watch } from "./addon-types.ts"

/**
 * The command that builds the native part where it is missing: `npm rebuild xcontainer` for an
 * installed package (its install script runs node-gyp), `npm run build:native` in a checkout.
 */
export function buildCommand(file: string): string {
  return file.split(path.sep).includes("node_modules") ? "npm rebuild xcontainer" : "npm run build:native"
}

/** The addon or the init helper is not built (or not where it is looked for). */
export class NotBuilt extends Error {
  readonly _tag = "NotBuilt"
  readonly file: string
  readonly command: string
  constructor(o: { readonly file: string; readonly command: string; readonly envVar: string }) {
    super(`xcontainer: the native part is not built (no ${o.file}): run \`${o.command}\` (or set ${o.envVar})`)
    this.name = "NotBuilt"
    this.file = o.file
    this.command = o.command
  }
}

const locate = (envVar: string, candidates: readonly URL[]): string => {
  const fromEnv = process.env[envVar]
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  const paths = candidates.map((url) => fileURLToPath(url))
  const found = paths.find((path) => existsSync(path))
  if (found === undefined) {
    throw new NotBuilt({ file: paths.join(" or "), command: buildCommand(paths[0] ?? ""), envVar })
  }
  return found
}

const require = createRequire(import.meta.url ?? `file://${process.cwd()}/`)

// Loaded on first use, not at import: the command line is restored from a V8 start-up snapshot,
// and a snapshot cannot hold a native module (DESIGN.md §8).
let loaded: Addon | undefined
const load = (): Addon =>
  (loaded ??= require(
    locate("XCONTAINER_ADDON", [
      new URL("../build/Release/xcontainer.node", base()),
      new URL("../../build/Release/xcontainer.node", base()),
    ]),
  ) as Addon)

/** This module's URL; the snapshot bundle (CommonJS, no import.meta) passes its paths by environment. */
const base = (): string => import.meta.url ?? "file:///nonexistent/native/"

/** The addon's syscall wrappers. */
export const addon: Addon = new Proxy({} as Addon, { get: (_, key: keyof Addon) => load()[key] })

/** Absolute path of the init helper binary (build/Release/xcontainer-init), to pass to sealHelper. */
export const helperPath = (): string =>
  locate("XCONTAINER_INIT", [
    new URL("../build/Release/xcontainer-init", base()),
    new URL("../../build/Release/xcontainer-init", base()),
  ])
