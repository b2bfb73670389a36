/**
 * Where a container's state lives and how its files are found: `<root>/<id>/state.json`, the exec
 * fifo beside it. Plain functions, no Effect: the StateStore service (store.ts) and the command
 * line's lean path (cli/lean-entry.ts, which must start in about the time of `node -e 0`) share them.
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** Where state lives without --root. */
export const DEFAULT_ROOT = "/run/xcontainer"

/**
 * The state root when none is given, as runc's main.go: $XDG_RUNTIME_DIR/xcontainer for a caller that
 * is not root and has a runtime dir (runc: $XDG_RUNTIME_DIR/runc), else DEFAULT_ROOT. A non-root user
 * cannot write /run, and the per-user runtime dir is private to them and cleared at logout.
 */
export function defaultRoot(env: NodeJS.ProcessEnv = process.env, euid: number = process.geteuid?.() ?? 0): string {
  const xdg = env["XDG_RUNTIME_DIR"]
  return euid !== 0 && xdg ? path.join(xdg, "xcontainer") : DEFAULT_ROOT
}

/** The directory of a container. */
export const containerDir = (root: string, id: string): string => path.join(root, id)

/** Its record. */
export const statePath = (root: string, id: string): string => path.join(containerDir(root, id), "state.json")

/** The exec fifo: present while the init waits at its start barrier. */
export const fifoPath = (root: string, id: string): string => path.join(containerDir(root, id), "exec.fifo")

/** The ids under root that hold a record, sorted; throws fs errors (ENOENT for a missing root). */
export const listIds = (root: string): string[] =>
  fs
    .readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(statePath(root, d.name)))
    .map((d) => d.name)
    .sort()
