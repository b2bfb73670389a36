/**
 * What linux.resources may ask of a pure cgroup v2 host, checked before
 * anything is created (config/resources.ts calls in here when the host's
 * layout is v2), and the shape of `unified` and of device rules on any host.
 *
 * v1-only knobs on v2. crun refuses them all; runc ignores most silently. We
 * refuse what v2 cannot honour, so that nobody believes a limit is in force:
 * - memory.kernelTCP, memory.swappiness, memory.disableOOMKiller (true),
 *   memory.useHierarchy false (v2 is always hierarchical),
 *   cpu.realtimeRuntime/realtimePeriod, network (classID, priorities: v2 has no
 *   net_cls/net_prio), blockIO.leafWeight and per-device leafWeight.
 * and ignore, with a warning (v2ResourceWarnings), what v2 honours anyway:
 * - memory.kernel: deprecated by the runtime-spec and ignored by runc on every
 *   layout (kmem limits are gone from current kernels); v2 charges kernel
 *   memory to memory.max, so the container's memory is still bounded by it.
 * - memory.useHierarchy true: that is what v2 always does.
 */
import type { HostFacts, Problem } from "./resources.ts"
import { isDeviceProblem, reduceDeviceRules } from "./device-rules.ts"
import { DEFAULT_DEVICE_RULES } from "../effects/cgroups-v1-resources.ts"
import { checkCpusOnline } from "./resources.ts"
import type { ResourcesSpec } from "./spec.ts"
import { swapToV2, THROTTLES } from "../effects/cgroups-v2-resources.ts"

const P = "linux.resources"

/** Files of the container's cgroup the runtime owns: `unified` may not write them. */
const RUNTIME_FILES = new Set(["cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.type", "cgroup.freeze", "cgroup.kill", "cgroup.events", "cgroup.controllers"])

/** `unified` (any host): a map of file names "CONTROLLER.KNOB" to strings (runc's rules, checked up front). */
export function checkUnifiedShape(unified: unknown): Problem {
  if (unified === undefined) return undefined
  if (typeof unified !== "object" || unified === null || Array.isArray(unified)) return { path: `${P}.unified`, reason: "is not a map of file names to values" }
  for (const [k, v] of Object.entries(unified)) {
    const at = `${P}.unified[${JSON.stringify(k)}]`
    if (typeof v !== "string") return { path: at, reason: `${JSON.stringify(v)} is not a string` }
    if (v.includes("\0")) return { path: at, reason: "contains a null byte" }
    if (k.includes("/") || k === "." || k === "..") return { path: at, reason: "must be a file name (no slashes)" }
    if (!/^[a-z_0-9]+\.[A-Za-z_0-9.]+$/.test(k)) return { path: at, reason: "must be in the form CONTROLLER.PARAMETER" }
    if (RUNTIME_FILES.has(k)) return { path: at, reason: `${k} is the runtime's to write (placement, freezing, killing)` }
  }
  return undefined
}

/** Device rules (any host): the reduction must succeed (config/device-rules.ts: no holes punched in wildcards). */
export function checkDeviceRules(r: ResourcesSpec): Problem {
  const state = reduceDeviceRules([...(r.devices ?? []), ...DEFAULT_DEVICE_RULES])
  return isDeviceProblem(state) && state.index < (r.devices?.length ?? 0) ? { path: `${P}.devices[${state.index}]`, reason: state.reason } : undefined
}

const present = (v: unknown) => v !== undefined && v !== null && v !== 0 && v !== false

/** Knobs v2 has no counterpart for: refused by name (see above). */
const V1_ONLY: ReadonlyArray<readonly [string, (r: ResourcesSpec) => boolean, string]> = [
  ["memory.kernelTCP", (r) => present(r.memory?.kernelTCP), "cgroup v2 has no TCP memory limit (socket memory is charged to memory.max)"],
  ["memory.swappiness", (r) => r.memory?.swappiness !== undefined, "cgroup v2 has no per-cgroup swappiness"],
  ["memory.disableOOMKiller", (r) => r.memory?.disableOOMKiller === true, "cgroup v2 cannot disable the OOM killer"],
  ["memory.useHierarchy", (r) => r.memory?.useHierarchy === false, "cgroup v2 is always hierarchical"],
  ["cpu.realtimeRuntime", (r) => present(r.cpu?.realtimeRuntime), "cgroup v2 has no realtime group scheduling knobs"],
  ["cpu.realtimePeriod", (r) => present(r.cpu?.realtimePeriod), "cgroup v2 has no realtime group scheduling knobs"],
  ["network", (r) => r.network !== undefined, "cgroup v2 has no net_cls or net_prio controller"],
  ["blockIO.leafWeight", (r) => present(r.blockIO?.leafWeight), "cgroup v2 has no leaf weight"],
]

/** What each group of knobs needs in cgroup.controllers. */
function needs(r: ResourcesSpec): Array<[string, string]> {
  const out: Array<[string, string]> = []
  const m = r.memory
  if (m && (m.limit || m.reservation || m.swap)) out.push(["memory", "memory"])
  const c = r.cpu
  if (c && (c.shares || c.quota || c.period || c.burst !== undefined || c.idle !== undefined)) out.push(["cpu", "cpu"])
  if (c && (c.cpus !== undefined || c.mems !== undefined)) out.push([c.cpus !== undefined ? "cpu.cpus" : "cpu.mems", "cpuset"])
  if (r.pids?.limit) out.push(["pids", "pids"])
  const b = r.blockIO
  if (b && (b.weight || b.weightDevice !== undefined || THROTTLES.some(([f]) => b[f] !== undefined))) out.push(["blockIO", "io"])
  if (r.hugepageLimits?.length) out.push(["hugepageLimits", "hugetlb"])
  if (r.rdma !== undefined) out.push(["rdma", "rdma"])
  for (const k of Object.keys(r.unified ?? {})) {
    const ctrl = k.split(".")[0]!
    if (ctrl !== "cgroup") out.push([`unified[${JSON.stringify(k)}]`, ctrl])
  }
  return out
}

/** Rules for a pure v2 host (after checkResourceShape). */
export function checkResourcesOnV2(r: ResourcesSpec, host: HostFacts): Problem {
  for (const [field, test, why] of V1_ONLY) if (test(r)) return { path: `${P}.${field}`, reason: `is a cgroup v1 knob: ${why}` }
  const have = host.v2Controllers ?? new Set<string>()
  for (const [field, ctrl] of needs(r))
    if (!have.has(ctrl)) return { path: `${P}.${field}`, reason: `needs the cgroup v2 ${ctrl} controller, and this host's cgroup.controllers lacks it (${[...have].join(" ") || "none"})` }
  const m = r.memory
  if (m) {
    const swap = swapToV2(m.swap ?? 0, m.limit ?? 0)
    if (typeof swap === "string") return { path: `${P}.memory.swap`, reason: swap }
  }
  for (const [i, d] of (Array.isArray(r.blockIO?.weightDevice) ? (r.blockIO.weightDevice as unknown[]) : []).entries()) {
    const dev = (d ?? {}) as { leafWeight?: unknown; weight?: unknown }
    if (present(dev.leafWeight)) return { path: `${P}.blockIO.weightDevice[${i}].leafWeight`, reason: "is a cgroup v1 knob: cgroup v2 has no leaf weight" }
  }
  for (const [dev, lim] of Object.entries((r.rdma ?? {}) as Record<string, { hcaHandles?: unknown; hcaObjects?: unknown }>))
    if (lim?.hcaHandles === undefined && lim?.hcaObjects === undefined) return { path: `${P}.rdma[${JSON.stringify(dev)}]`, reason: "sets neither hcaHandles nor hcaObjects" }
  const offline = checkCpusOnline(r, host)
  if (offline) return offline
  for (const [i, h] of (r.hugepageLimits ?? []).entries())
    if (!host.hugepageSizes.has(h.pageSize))
      return { path: `${P}.hugepageLimits[${i}].pageSize`, reason: `${h.pageSize} pages do not exist here (${[...host.hugepageSizes].join(", ")})` }
  return undefined
}

/** `unified` on a host that is not pure v2 (runc's ErrV1NoUnified and its words, hybrid included: its v1 hierarchies hold the limits). */
export function checkNoUnified(r: ResourcesSpec): Problem {
  return r.unified !== undefined ? { path: `${P}.unified`, reason: "invalid configuration: cannot use unified on cgroup v1 (this host is not a pure cgroup v2 host)" } : undefined
}

/** What a v2 host ignores from `r`, to be logged as warnings (see above). */
export function v2ResourceWarnings(r: ResourcesSpec | undefined): string[] {
  const out: string[] = []
  if (present(r?.memory?.kernel)) out.push(`${P}.memory.kernel is ignored: deprecated, and cgroup v2 charges kernel memory to memory.max`)
  if (r?.memory?.useHierarchy === true) out.push(`${P}.memory.useHierarchy is ignored: cgroup v2 is always hierarchical`)
  return out
}
