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
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import type { Addon } from "./addon-types.ts"

export type { Addon, ExitStatus, SpawnHelperOptions, Watch } from "./addon-types.ts"

const locate = (envVar: string, candidates: readonly URL[]): string => {
  const fromEnv = process.env[envVar]
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  const paths = candidates.map((url) => fileURLToPath(url))
  const found = paths.find((path) => existsSync(path))
  if (found === undefined) {
    throw new Error(`xcontainer: not built (run npm run build:native), none of: ${paths.join(", ")}; or set ${envVar}`)
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
