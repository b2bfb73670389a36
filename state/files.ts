/**
 * Where a container's state lives and how its files are found: `<root>/<id>/state.json`, the exec
 * fifo beside it. Plain functions, no Effect: the StateStore service (store.ts) and the command
 * line's lean path (cli/lean-entry.ts, which must start in about the time of `node -e 0`) share them.
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** Where state lives without --root. */
export const DEFAULT_ROOT = "/run/xcontainer"

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
