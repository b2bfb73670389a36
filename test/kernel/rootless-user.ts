/**
 * The unprivileged user of the rootless tests: made here if absent (useradd -m), with a range of
 * 65536 subordinate uids and gids in /etc/subuid and /etc/subgid (useradd adds them itself when
 * SUB_UID_COUNT is set; otherwise appended here, after the last range in use).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

export const ROOTLESS_USER = "xc-rootless-test"

const which = (tool: string): boolean => ["/usr/bin", "/bin", "/usr/sbin", "/sbin"].some((d) => fs.existsSync(`${d}/${tool}`))

/** The first directory on the way to `dir` that other users cannot search (undefined: all can). */
function unreachable(dir: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) return d
    if (d === path.dirname(d)) return undefined
  }
}
const TREE = path.resolve(import.meta.dirname, "..", "..")
const closed = unreachable(TREE)

/** Why the rootless tests cannot run here (undefined: they run). */
export const rootlessSkip: string | undefined = closed
  ? `the unprivileged test user cannot reach this checkout (${closed} is not searchable by others)`
  : !which("runuser")
  ? "rootless tests need runuser (util-linux)"
  : !which("newuidmap") || !which("newgidmap")
    ? "rootless tests need newuidmap/newgidmap (apt-get install uidmap)"
    : !which("useradd")
      ? "rootless tests need useradd (passwd)"
      : undefined

export interface RootlessUser {
  readonly uid: number
  readonly gid: number
  /** First subordinate uid and gid (65536 of each). */
  readonly subuid: number
  readonly subgid: number
}

function subRange(file: string): number {
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : ""
  const mine = text.split("\n").find((l) => l.startsWith(`${ROOTLESS_USER}:`))
  if (mine) return Number(mine.split(":")[1])
  const end = Math.max(100000, ...text.split("\n").map((l) => l.split(":")).filter((f) => f.length === 3).map((f) => Number(f[1]) + Number(f[2])))
  fs.appendFileSync(file, `${ROOTLESS_USER}:${end}:65536\n`)
  return end
}

/** The test user, made once per host. */
export function ensureRootlessUser(): RootlessUser {
  if (spawnSync("id", ["-u", ROOTLESS_USER]).status !== 0) {
    const r = spawnSync("useradd", ["-m", ROOTLESS_USER], { encoding: "utf8" })
    if (r.status !== 0) throw new Error(`useradd ${ROOTLESS_USER}: ${r.stderr}`)
  }
  const uid = Number(spawnSync("id", ["-u", ROOTLESS_USER], { encoding: "utf8" }).stdout.trim())
  const gid = Number(spawnSync("id", ["-g", ROOTLESS_USER], { encoding: "utf8" }).stdout.trim())
  return { uid, gid, subuid: subRange("/etc/subuid"), subgid: subRange("/etc/subgid") }
}
