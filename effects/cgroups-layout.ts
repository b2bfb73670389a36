/**
 * Which cgroup layout this host runs, and the Cgroups layer for it:
 * - "v2": only cgroup2 carries controllers (systemd's unified mode) → cgroups-v2.ts;
 * - "hybrid": v1 hierarchies carry the controllers, cgroup2 is mounted beside
 *   them (here: /sys/fs/cgroup/unified) → cgroups-fs.ts, which also places the
 *   container in the cgroup2 tree (and removes it there);
 * - "v1": v1 hierarchies only → cgroups-fs.ts.
 * A named v1 hierarchy (name=systemd) carries no controller and does not make a
 * host v1. Decided from mountinfo (tests pass their own); runc asks statfs the
 * same question (layoutFromStatfs), which must agree on a conventional host.
 *
 * Device rules on hybrid (this host): the v1 devices controller enforces them, and
 * no eBPF program is attached to the container's cgroup2 directory, as runc's fs
 * manager does. The kernel would run both (BPF programs of the task's cgroup2
 * cgroup, then the v1 exceptions: an access needs both to allow), but the second
 * copy adds no denial the first lacks (same rules, same reduction), costs a
 * program load per create, turns every update into two non-atomic steps that can
 * disagree half-way, and fails create outright where someone attached an
 * exclusive (non-ALLOW_MULTI) device program above us, which runc never does.
 * The eBPF path is used where it is the only enforcement: pure v2.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Layer } from "effect"
import { CgroupsFs, type CgroupsFsOptions } from "./cgroups-fs.ts"
import { detectLayout, parseHierarchies, type Layout } from "./cgroups-mounts.ts"
import { CgroupsV2, type CgroupsV2Options } from "./cgroups-v2.ts"

export { detectLayout, type Layout } from "./cgroups-mounts.ts"

const CGROUP2_SUPER_MAGIC = 0x63677270

/** runc's test (IsCgroup2UnifiedMode / IsCgroup2HybridMode): statfs of the root, then of root/unified. */
export function layoutFromStatfs(root = "/sys/fs/cgroup"): Layout {
  const isCgroup2 = (p: string) => {
    try {
      return fs.statfsSync(p).type === CGROUP2_SUPER_MAGIC
    } catch {
      return false
    }
  }
  return isCgroup2(root) ? "v2" : isCgroup2(path.join(root, "unified")) ? "hybrid" : "v1"
}

/** The live layer: the manager for this host's layout, chosen when the layer is built. */
export const CgroupsLive = (opts: CgroupsFsOptions & CgroupsV2Options = {}) =>
  Layer.suspend(() => {
    let layout: Layout = "v1"
    try {
      layout = detectLayout(parseHierarchies(fs.readFileSync(opts.mountinfo ?? "/proc/self/mountinfo", "utf8")))
    } catch {
      /* no /proc: the v1 manager reports the missing hierarchies when asked */
    }
    return layout === "v2" ? CgroupsV2(opts) : CgroupsFs(opts)
  })
