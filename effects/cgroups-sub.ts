/**
 * runc's `exec --cgroup [<controller>[,<controller>…]:]<path>` (runc 1.2, exec.go getSubCgroupPaths and
 * libcontainer/process_linux.go addIntoCgroupV1/V2): the exec'd process joins an existing sub-cgroup of
 * the container's cgroup instead of the cgroup itself.
 * - A bare path (one argument only) is for every hierarchy (on cgroup v2, the one).
 * - `ctrl[,ctrl]:path` (repeatable) is for the hierarchies of those controllers (cgroup v1); the others
 *   stay at the container's cgroup. A controller named twice is refused, as runc.
 * - The path is below the container's cgroup: a leading "/" is relative to it (runc joins it), and a
 *   `..` component is refused outright (runc refuses what escapes; we refuse the component, so that no
 *   path can name a cgroup outside the container's by any spelling).
 * Which hierarchies carry a controller and whether the directory exists is the manager's question
 * (CgroupsService.subPaths).
 */
import * as path from "node:path"
import { ConfigError } from "./errors.ts"

/** Controller ("" for every hierarchy) → path below the container's cgroup. */
export type SubCgroups = Readonly<Record<string, string>>

/** A sub-cgroup path as given: no `..`, no NUL; returned normalized and relative ("" is the cgroup itself). */
export function subCgroupPath(field: string, p: string): string | ConfigError {
  if (p.includes("\0")) return new ConfigError({ path: field, reason: "contains a NUL byte" })
  if (p.split("/").includes("..")) return new ConfigError({ path: field, reason: `"${p}": ".." is not allowed (the sub-cgroup must be below the container's cgroup)` })
  const rel = path.posix.normalize(`./${p}`).replace(/^\.\/?/, "").replace(/\/$/, "")
  return rel
}

/** Checks a SubCgroups map given to the library: each path as subCgroupPath, controller names plain. */
export function checkSubCgroups(field: string, subs: SubCgroups): Record<string, string> | ConfigError {
  const out: Record<string, string> = {}
  for (const [ctrl, p] of Object.entries(subs)) {
    if (ctrl !== "" && !/^[a-z0-9_=]+$/.test(ctrl)) return new ConfigError({ path: field, reason: `"${ctrl}" is not a controller name` })
    const rel = subCgroupPath(field, p)
    if (rel instanceof ConfigError) return rel
    out[ctrl] = rel
  }
  return out
}

/** runc's getSubCgroupPaths over the --cgroup arguments, in runc's words. */
export function parseSubCgroupArgs(args: readonly string[]): Record<string, string> | ConfigError {
  const out: Record<string, string> = {}
  for (const c of args) {
    const colon = c.indexOf(":")
    if (colon >= 0) {
      const [ctrls, p] = [c.slice(0, colon), c.slice(colon + 1)]
      for (const ctrl of ctrls.split(",")) {
        if (ctrl === "") return new ConfigError({ path: "--cgroup", reason: `invalid --cgroup argument: ${c} (empty <controller> prefix)` })
        if (ctrl in out) return new ConfigError({ path: "--cgroup", reason: `invalid --cgroup argument(s): controller ${ctrl} specified multiple times` })
        out[ctrl] = p
      }
    } else {
      if (args.length !== 1) return new ConfigError({ path: "--cgroup", reason: `invalid --cgroup argument: ${c} (missing <controller>: prefix)` })
      out[""] = c
    }
  }
  return checkSubCgroups("--cgroup", out)
}
