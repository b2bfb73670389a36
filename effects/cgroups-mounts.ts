/**
 * The cgroup hierarchies this host mounts, the layout they make, and whether a container's cgroup is
 * frozen. Plain functions, no Effect: the cgroup managers (cgroups-fs.ts, cgroups-layout.ts) and the
 * command line's lean path (cli/lean-entry.ts, which must start in about the time of `node -e 0`)
 * share them.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { CgroupPaths, Hierarchy } from "./cgroups.ts"

/** Hierarchies from mountinfo text (fields after " - " are fstype, source, super options). */
export function parseHierarchies(mountinfo: string): Hierarchy[] {
  // A hierarchy can be mounted more than once (CRIU mounts its own copies while it dumps, a
  // container may bind a subtree): one mount per hierarchy, of its whole tree (root "/"),
  // preferring the conventional /sys/fs/cgroup one.
  const chosen = new Map<string, Hierarchy & { score: number }>()
  for (const line of mountinfo.split("\n")) {
    const [pre, post] = line.split(" - ")
    if (!pre || !post) continue
    const fields = pre.split(" ")
    const [root, mountPoint] = [fields[3], fields[4]]
    const [fstype, , superOpts] = post.split(" ")
    if (!mountPoint || root !== "/") continue
    let h: Hierarchy | undefined
    if (fstype === "cgroup2") h = { mountPoint, controllers: "", version: 2 }
    else if (fstype === "cgroup") {
      const ctrls = (superOpts ?? "")
        .split(",")
        .filter((o) => !["rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "xattr", "clone_children"].includes(o) && !o.startsWith("release_agent="))
      h = { mountPoint, controllers: ctrls.sort().join(","), version: 1 }
    }
    if (!h) continue
    const score = mountPoint.startsWith("/sys/fs/cgroup") ? 1 : 0
    const key = `${h.version}:${h.controllers}`
    const prev = chosen.get(key)
    if (!prev || score > prev.score) chosen.set(key, { ...h, score })
  }
  return [...chosen.values()].map(({ score: _score, ...h }) => h)
}

/** Our own cgroup in each hierarchy, keyed by its sorted controller list ("" for cgroup2). */
export function parseOwnCgroups(procSelfCgroup: string): Map<string, string> {
  const own = new Map<string, string>()
  for (const line of procSelfCgroup.split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line)
    if (m) own.set((m[1] ?? "").split(",").sort().join(","), m[2] ?? "/")
  }
  return own
}

export type Layout = "v1" | "hybrid" | "v2"

/** The layout the mounted hierarchies make. */
export function detectLayout(hierarchies: readonly Hierarchy[]): Layout {
  const v1 = hierarchies.some((h) => h.version === 1 && h.controllers.split(",").some((c) => c !== "" && !c.startsWith("name=")))
  const v2 = hierarchies.some((h) => h.version === 2)
  return v1 ? (v2 ? "hybrid" : "v1") : v2 ? "v2" : "v1"
}

/** Whether a hierarchy carries `controller`. */
export const has = (h: Hierarchy, controller: string): boolean => h.controllers.split(",").includes(controller)

const readTrim = (f: string): string => {
  try {
    return fs.readFileSync(f, "utf8").trim()
  } catch {
    return ""
  }
}

/** Where the v1/hybrid manager freezes: v1's freezer, else cgroup2's cgroup.freeze. */
export function freezerOf(paths: CgroupPaths, hierarchies: readonly Hierarchy[]): { version: 1 | 2; dir: string } | undefined {
  const dirOf = (controller: string) => {
    const h = hierarchies.find((x) => (controller === "" ? x.version === 2 : x.version === 1 && has(x, controller)))
    return h ? paths[h.mountPoint] : undefined
  }
  const v1 = dirOf("freezer")
  if (v1) return { version: 1, dir: v1 }
  const v2 = dirOf("")
  return v2 ? { version: 2, dir: v2 } : undefined
}

/** Whether the freezer reports the cgroup frozen (v1: FROZEN, not FREEZING; v2: "frozen 1" in cgroup.events). */
export const isFrozen = (f: { version: 1 | 2; dir: string }): boolean =>
  f.version === 1 ? readTrim(path.join(f.dir, "freezer.state")) === "FROZEN" : /^frozen 1$/m.test(readTrim(path.join(f.dir, "cgroup.events")))

/** The v1/hybrid manager's `frozen`: false without a freezer or once the cgroup is gone. */
export function frozenNow(paths: CgroupPaths, hierarchies: readonly Hierarchy[]): boolean {
  const f = freezerOf(paths, hierarchies)
  if (f !== undefined && fs.existsSync(f.dir) && isFrozen(f)) return true
  // On hybrid the cgroup2 directory has a freezer of its own (cgroup.freeze, Linux 5.2): a task there is
  // stopped by either, so either counts (a frozen parent's shows in cgroup.events too).
  if (f?.version !== 1) return false
  const h = hierarchies.find((x) => x.version === 2)
  const v2 = h ? paths[h.mountPoint] : undefined
  return v2 !== undefined && fs.existsSync(v2) && isFrozen({ version: 2, dir: v2 })
}
