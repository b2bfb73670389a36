/** InitPlan → the helper's wire ops (native/init/protocol.h gives each field's meaning). */
import { MAX_MSG, MAX_OPS, MAX_STR, nulList, Op, type WireOp } from "../native/protocol.ts"
import { CLONE_FLAGS } from "./linux-names.ts"
import { capMask, type InitPlan, type PlanOp } from "./plan.ts"
import type { Spec } from "./spec.ts"

const S_IFCHR = 0o020000
const S_IFBLK = 0o060000
const S_IFIFO = 0o010000
const CREATE = { none: 0n, dir: 1n, file: 2n } as const
const CHDIR_MODE = { final: 0n, create: 1n, privileged: 2n } as const

const b = (n: number | bigint): bigint => BigInt(n)

function gidBytes(gids: readonly number[]): Uint8Array {
  const out = new Uint8Array(gids.length * 4)
  const dv = new DataView(out.buffer)
  gids.forEach((g, i) => dv.setUint32(i * 4, g, true))
  return out
}

/** One plan op as wire fields. */
export function wireOp(o: PlanOp): WireOp {
  switch (o.op) {
    case "joinNamespace":
      return { op: Op.JOIN_NS, n: [b(CLONE_FLAGS[o.type])], s: [o.path] }
    case "joinPidfd":
      return { op: Op.JOIN_PIDFD, n: [b(o.fd), o.types.reduce((f, t) => f | b(CLONE_FLAGS[t]), 0n)] }
    case "timeOffsets":
      return { op: Op.TIME_OFFSETS, s: [o.text] }
    case "clone":
      return {
        op: Op.CLONE,
        n: [o.namespaces.reduce((f, t) => f | b(CLONE_FLAGS[t]), 0n), o.denySetgroups ? 1n : 0n, o.dumpableForMaps ? 1n : 0n],
        s: [o.uidMap, o.gidMap, o.uidMapTool ?? "", o.gidMapTool ?? ""],
      }
    case "setIdRoot":
      return { op: Op.SETID_ROOT }
    case "console":
      return { op: Op.CONSOLE, n: [b(o.rows), b(o.columns), o.bindConsole ? 1n : 0n] }
    case "ioPriority":
      return { op: Op.IOPRIO, n: [b(o.value)] }
    case "scheduler":
      return { op: Op.SCHEDULER, n: [b(o.policy), BigInt.asUintN(64, b(o.nice)), b(o.priority), b(o.flags), b(o.runtime), b(o.deadline), b(o.period)] }
    case "preserveFds":
      return { op: Op.PRESERVE_FDS, n: [b(o.count)] }
    case "personality":
      return { op: Op.PERSONALITY, n: [b(o.persona)] }
    case "sync":
      return { op: Op.SYNC }
    case "hook":
      return { op: Op.HOOK, n: [b(o.timeoutSec), o.state === "create" ? 0n : 1n, o.cwdRootfs ? 1n : 0n], s: [o.path, nulList(o.args), nulList(o.env)] }
    case "unshare":
      return { op: Op.UNSHARE, n: [o.namespaces.reduce((f, t) => f | b(CLONE_FLAGS[t]), 0n)] }
    case "setsid":
      return { op: Op.SETSID }
    case "rootPropagation":
      return { op: Op.ROOT_PROPAGATION, n: [b(o.flags)] }
    case "rootfs":
      return { op: Op.ROOTFS, n: [o.bind === false ? 1n : 0n], s: [o.path] }
    case "mount":
      return {
        op: Op.MOUNT,
        n: [
          b(o.flags),
          b(o.propagation),
          CREATE[o.create],
          b(o.remountFlags),
          b(o.recursiveSet ?? 0),
          b(o.recursiveClear ?? 0),
          (o.plainDir ? 1n : 0n) | (o.copyUp ? 2n : 0n) | (o.keepMode ? 4n : 0n),
          ...(o.sourceTree ? [b(o.sourceTree)] : []),
        ],
        s: [o.source, o.target, o.fstype, o.data],
      }
    case "mountSource":
      return { op: Op.MOUNT_SOURCE, n: [o.recursive ? 1n : 0n, o.idmap === "recursive" ? 2n : o.idmap === "top" ? 1n : 0n], s: [o.path, o.uidMap ?? "", o.gidMap ?? ""] }
    case "chownStdio":
      return { op: Op.CHOWN_STDIO, n: [b(o.uid)] }
    case "remountReadonly":
      return { op: Op.REMOUNT_ROOT_RO, s: [o.path] }
    case "mknod": {
      const type = o.kind === "c" ? S_IFCHR : o.kind === "b" ? S_IFBLK : S_IFIFO
      return { op: Op.MKNOD, n: [b(type | o.perm), b(o.major), b(o.minor), b(o.uid), b(o.gid)], s: [o.path] }
    }
    case "symlink":
      return { op: Op.SYMLINK, s: [o.path, o.target] }
    case "execFifo":
      return { op: Op.EXEC_FIFO, s: [o.path] }
    case "pivotRoot":
      return { op: Op.PIVOT_ROOT, n: [o.chrootOnly ? 2n : o.noPivot ? 1n : 0n, o.hideHostProcfs ? 1n : 0n] }
    case "mask":
      return { op: Op.MASK, s: [o.path] }
    case "readonly":
      return { op: Op.READONLY, s: [o.path] }
    case "remountRootReadonly":
      return { op: Op.REMOUNT_ROOT_RO }
    case "hostname":
      return { op: Op.HOSTNAME, s: [o.name] }
    case "domainname":
      return { op: Op.DOMAINNAME, s: [o.name] }
    case "sysctl":
      return { op: Op.SYSCTL, s: [o.key, o.value] }
    case "loopbackUp":
      return { op: Op.LOOPBACK_UP }
    case "oomScoreAdj":
      return { op: Op.OOM_SCORE_ADJ, n: [BigInt.asUintN(64, b(o.value))] }
    case "rlimit":
      return { op: Op.RLIMIT, n: [b(o.resource), o.soft, o.hard] }
    case "umask":
      return { op: Op.UMASK, n: [b(o.mask)] }
    case "resolveExec":
      return { op: Op.RESOLVE_EXEC, s: [o.program, o.searchPath] }
    case "waitStart":
      return { op: Op.WAIT_START }
    case "closeFds":
      return { op: Op.CLOSE_FDS, n: [b(o.from)] }
    case "capsBounding":
      return { op: Op.CAPS_BOUNDING, n: [capMask(o.keep)] }
    case "user":
      return { op: Op.USER, n: [b(o.uid), b(o.gid)], s: [gidBytes(o.additionalGids)] }
    case "caps":
      return { op: Op.CAPS, n: [capMask(o.effective), capMask(o.permitted), capMask(o.inheritable), capMask(o.ambient)] }
    case "chdir":
      return { op: Op.CHDIR, n: [CHDIR_MODE[o.mode]], s: [o.path] }
    case "noNewPrivs":
      return { op: Op.NO_NEW_PRIVS }
    case "seccomp":
      return { op: Op.SECCOMP, n: [b(o.flags), ...(o.listener ? [1n] : [])], s: [o.filter] }
    case "lsmExec":
      return { op: Op.LSM_EXEC, n: [o.testStandIn ? 1n : 0n], s: [o.attrPath, o.text] }
    case "exec":
      return { op: Op.EXEC, s: [nulList(o.args), nulList(o.env)] }
  }
}

/** The whole plan as wire ops. */
export const toWire = (plan: InitPlan): WireOp[] => plan.ops.map(wireOp)

/** The config field each plan op comes from, for the limit errors (S-field index → path where it differs). */
const FIELD_OF: Partial<Record<PlanOp["op"], string | readonly string[]>> = {
  exec: ["process.args", "process.env"],
  resolveExec: ["process.args[0]", "process.env (PATH)"],
  hook: ["hooks (path)", "hooks (args)", "hooks (env)"],
  mount: "mounts",
  mountSource: "mounts",
  mknod: "linux.devices",
  symlink: "mounts",
  mask: "linux.maskedPaths",
  readonly: "linux.readonlyPaths",
  sysctl: "linux.sysctl",
  hostname: "hostname",
  domainname: "domainname",
  user: "process.user.additionalGids",
  seccomp: "linux.seccomp",
  chdir: "process.cwd",
  timeOffsets: "linux.timeOffsets",
  clone: ["linux.uidMappings", "linux.gidMappings"],
  rootfs: "root.path",
  joinNamespace: "linux.namespaces",
  lsmExec: "process.apparmorProfile / process.selinuxLabel",
  rlimit: "process.rlimits",
}
const fieldOf = (op: PlanOp["op"], s: number): string => {
  const f = FIELD_OF[op]
  return typeof f === "string" ? f : (f?.[s] ?? f?.[0] ?? op)
}
const HDR = 6
const MiB = (n: number) => `${(n / (1 << 20)).toFixed(n % (1 << 20) ? 1 : 0)} MiB`

/**
 * The helper's bounds (native/init/protocol.h: a string field, the ops, the whole plan, the OCI state
 * its hooks get) as a ConfigError naming the config field, before anything is sent: the encoder's
 * own check is the last line, not the message a user sees.
 */
export function planLimitProblem(plan: InitPlan, spec: Spec): { path: string; reason: string } | undefined {
  const bytes = (v: Uint8Array | string) => (typeof v === "string" ? Buffer.byteLength(v) : v.length)
  if (plan.ops.length > MAX_OPS)
    return { path: "mounts", reason: `the config needs ${plan.ops.length} setup steps (mounts, devices, paths…); at most ${MAX_OPS} are supported` }
  let total = HDR
  for (const o of plan.ops) {
    const w = wireOp(o)
    total += HDR + (w.n ?? []).filter((v) => v !== undefined).length * (HDR + 8)
    for (const [i, v] of (w.s ?? []).entries()) {
      if (v === undefined) continue
      const n = bytes(v)
      if (n > MAX_STR) return { path: fieldOf(o.op, i), reason: `is ${n} bytes; at most ${MiB(MAX_STR)} is supported (with the default 8 MiB stack, execve itself takes at most 2 MiB of arguments and environment)` }
      total += HDR + n
    }
  }
  if (total > MAX_MSG) return { path: "(config)", reason: `the container's setup is ${total} bytes (arguments, environment, mounts, seccomp…); at most ${MiB(MAX_MSG)} is supported` }
  // The OCI state handed to createContainer/startContainer hooks carries the annotations.
  const state = Buffer.byteLength(JSON.stringify(spec.annotations ?? {})) + 4096
  if (state > MAX_STR) return { path: "annotations", reason: `are ${state - 4096} bytes; at most ${MiB(MAX_STR - 4096)} is supported` }
  return undefined
}
