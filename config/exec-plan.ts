/**
 * The plan of a process exec'd into a running container: the helper joins the
 * init's namespaces (user first, mount last) through /proc/<init>/ns, clones
 * the process into them with no new namespace, and the process gets its own
 * identity, capabilities, cwd and limits. No mounts: the container's mount
 * namespace is already set up, and joining it makes its root ours.
 */
import { consoleOp, finalOps, limitOps, programOf, schedulingOps, type InitPlan, type PlanOp } from "./plan.ts"
import type { NamespaceType, ProcessSpec, Spec } from "./spec.ts"

/** /proc/<pid>/ns/<file> of each namespace type. */
const NS_FILE: Record<NamespaceType, string> = {
  user: "user",
  ipc: "ipc",
  uts: "uts",
  network: "net",
  pid: "pid",
  cgroup: "cgroup",
  time: "time",
  mount: "mnt",
}
const JOIN_ORDER: readonly NamespaceType[] = ["user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount"]

export interface ExecPlanInput {
  /** The container's config (its namespaces). */
  readonly spec: Spec
  /** The init's pid: its namespaces are the container's. */
  readonly initPid: number
  /** Where the helper holds the init's pidfd (the namespaces are joined through it, race-free); else by /proc paths. */
  readonly initPidfdAt?: number
  /** The process to run. */
  readonly process: ProcessSpec
  readonly home?: string
  /** Preserved fds given to the helper (they become the program's 3…). */
  readonly preserveFds?: number
}


export function buildExecPlan(input: ExecPlanInput): InitPlan {
  const { process: proc } = input
  const namespaces = input.spec.linux?.namespaces ?? []
  const ops: PlanOp[] = []
  const types = JOIN_ORDER.filter((t) => namespaces.some((n) => n.type === t))
  // oom_score_adj before the joins, as runc's nsexec does: once in the container's mount namespace,
  // /proc is the container's, of a pid namespace this helper is not in (/proc/self: ENOENT). CRI gives
  // every exec the container's oomScoreAdj (ExecSync failed on it). Rlimits stay after the user join.
  const limits = limitOps(proc)
  ops.push(...limits.filter((o) => o.op === "oomScoreAdj"))
  if (input.initPidfdAt !== undefined) ops.push({ op: "joinPidfd", fd: input.initPidfdAt, types })
  else for (const t of types) ops.push({ op: "joinNamespace", type: t, path: `/proc/${input.initPid}/ns/${NS_FILE[t]}` })
  ops.push(...limits.filter((o) => o.op !== "oomScoreAdj"))
  ops.push({ op: "clone", namespaces: [], uidMap: "", gidMap: "", denySetgroups: false })
  // Joining a user namespace leaves our host uid unmapped in it: become its root before anything else.
  if (namespaces.some((n) => n.type === "user")) ops.push({ op: "setIdRoot" })
  if (proc.terminal) ops.push(consoleOp(proc, false))
  ops.push({ op: "umask", mask: proc.user.umask ?? 0o022 })
  const { env, resolveExec } = programOf(proc, input.home)
  ops.push(resolveExec)
  ops.push(...schedulingOps(proc, input.spec.linux?.personality))
  ops.push({ op: "closeFds", from: 3 })
  // The same ending as the init's, the container's seccomp filter included (runc does the same for exec).
  ops.push(...finalOps(proc, input.spec, env, input.preserveFds ?? 0))
  return { ops }
}
