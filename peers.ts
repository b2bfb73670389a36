/**
 * The peer dependencies' versions, checked when the library is imported, before any of its modules
 * uses them: effect 3 (or an xstate too old) would otherwise fail later with an unhelpful TypeError
 * ("Context.Service is not a function"). This module imports nothing but Node's own: it must run
 * with whatever version is installed. The ranges are package.json's peerDependencies (a test keeps
 * them equal).
 */
import { createRequire } from "node:module"

export const PEER_RANGES = { effect: "^4.0.0", xstate: "^5.33.3" } as const

/** A wrong or missing peer dependency, found at import. */
export class PeerDependencyError extends Error {
  readonly _tag = "PeerDependencyError"
  constructor(
    readonly dependency: string,
    readonly range: string,
    readonly found: string | undefined,
  ) {
    super(
      found === undefined
        ? `xcontainer needs ${dependency} ${range} (a peer dependency), found none: npm install ${dependency}@"${range}"`
        : `xcontainer needs ${dependency} ${range}, found ${found}: npm install ${dependency}@"${range}"`,
    )
    this.name = "PeerDependencyError"
  }
}

const parse = (v: string): [number, number, number] | undefined => {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v)
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined
}

/** npm's caret range, for a range written ^M.m.p with M > 0: the same major, at least M.m.p. */
export function satisfiesCaret(version: string, range: string): boolean {
  const v = parse(version)
  const r = parse(range.replace(/^\^/, ""))
  if (!v || !r) return false
  if (v[0] !== r[0]) return false
  return v[1] > r[1] || (v[1] === r[1] && v[2] >= r[2])
}

/** The installed version of `name` as this module resolves it (undefined: not installed). */
function installedVersion(require: NodeJS.Require, name: string): string | undefined {
  try {
    return (require(`${name}/package.json`) as { version?: string }).version ?? "an unknown version"
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    // Installed, but its package.json is not exported: nothing to check against.
    return code === "ERR_PACKAGE_PATH_NOT_EXPORTED" ? "unknown" : undefined
  }
}

/** Throws PeerDependencyError for the first peer out of range; resolution is from `from` (a module URL). */
export function checkPeers(from: string): void {
  const require = createRequire(from)
  for (const [name, range] of Object.entries(PEER_RANGES)) {
    const found = installedVersion(require, name)
    if (found === "unknown") continue
    if (found === undefined || !satisfiesCaret(found, range)) throw new PeerDependencyError(name, range, found)
  }
}

// import.meta.url is that of the bundle (dist/…), or this file under tsx and vitest.
checkPeers(import.meta.url)
