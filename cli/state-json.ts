/**
 * What `state` and `list` print, as runc prints it. Plain, no Effect: the full command line (main.ts)
 * and the lean path (lean-entry.ts) both print through these.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { OciState } from "../state/oci-state.ts"

/** runc's state JSON: its keys in its order; rootfs is the config's root made absolute. */
export const runcState = (s: OciState, rootPath: string | undefined, created: string | undefined, owner = "") => ({
  ociVersion: s.ociVersion,
  id: s.id,
  pid: s.pid ?? 0,
  status: s.status,
  bundle: s.bundle,
  rootfs: rootPath ? path.resolve(s.bundle, rootPath) : "",
  created: created ?? "",
  ...(s.annotations ? { annotations: s.annotations } : {}),
  owner,
})

/** `state`'s output, as runc's: indented by two spaces, no newline after the closing brace. */
export const stateText = (j: ReturnType<typeof runcState>): string => JSON.stringify(j, null, "  ")

/** runc's list OWNER: the name of the user owning the container's state directory, or "#uid". */
export function ownerOf(dir: string): string {
  let uid: number
  try {
    uid = fs.statSync(dir).uid
  } catch {
    return ""
  }
  const name = passwdNames().get(uid)
  return name ?? `#${uid}`
}

let names: Map<number, string> | undefined
/** uid → the first user name /etc/passwd gives it, read once per process (list asks per container). */
const passwdNames = (): Map<number, string> => {
  if (names) return names
  names = new Map()
  try {
    for (const l of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
      const [user, , uid] = l.split(":")
      if (user !== undefined && uid !== undefined && /^\d+$/.test(uid) && !names.has(Number(uid))) names.set(Number(uid), user)
    }
  } catch {
    /* no passwd: the number */
  }
  return names
}

/** Go's text/tabwriter as runc's list uses it (minwidth 12, padding 3): the last column unpadded. */
export function tabwriter(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(12, ...rows.map((r) => (r[i] ?? "").length + 3)))
  return rows.map((r) => r.map((cell, i) => (i < r.length - 1 ? cell.padEnd(widths[i]!) : cell)).join("") + "\n").join("")
}

/** `list`'s output for `format` (table or json) and -q. runc writes null for no containers (a nil Go slice). */
export function listText(rows: readonly ReturnType<typeof runcState>[], format: "table" | "json", quiet: boolean): string {
  if (quiet) return rows.map((r) => `${r.id}\n`).join("")
  if (format === "json") return `${rows.length ? JSON.stringify(rows) : "null"}\n`
  return tabwriter([["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], ...rows.map((r) => [r.id, `${r.pid}`, r.status, r.bundle, r.created, r.owner])])
}

/** list's flags (shared by both paths). */
export const LIST_FLAGS = [
  { name: "format", alias: "f", value: true },
  { name: "quiet", alias: "q", value: false },
] as const
