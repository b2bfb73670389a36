/**
 * AppArmor (process.apparmorProfile) and SELinux (process.selinuxLabel, linux.mountLabel): which
 * host has them, which attr file gets which text, and the mount option a label adds. Policy only;
 * native/init/lsm.c writes what this decides, right before the seccomp filter and execve.
 *
 * As runc: AppArmor is "enabled" when /sys/kernel/security/apparmor exists and
 * /sys/module/apparmor/parameters/enabled says Y (libcontainer/apparmor); the profile is applied
 * with "exec <profile>" to /proc/thread-self/attr/apparmor/exec, or attr/exec on kernels without
 * the per-LSM directory (aa_change_onexec). SELinux is enabled when selinuxfs is mounted
 * (/sys/fs/selinux/enforce); the label goes to /proc/thread-self/attr/exec (SetExecLabel), and
 * mountLabel becomes context="<label>" on the container's own filesystems (FormatMountLabel).
 *
 * Unlike runc, which ignores labels on a host without the LSM, a config asking for one the host
 * lacks is a ConfigError naming the field: the container would otherwise run unconfined.
 *
 * Tests only: XCONTAINER_TEST_LSM_ATTR=<path in the container> makes both LSMs count as enabled
 * and sends the write to that file (not checked to be on procfs), so the plumbing can be observed
 * on a host that has neither. Nothing else reads it.
 */
import * as fs from "node:fs"
import type { PlanOp } from "./plan.ts"
import type { Spec } from "./spec.ts"

/** What the host offers. */
export interface LsmHost {
  readonly apparmor: boolean
  readonly selinux: boolean
  /** The kernel has /proc/self/attr/apparmor/ (5.1+ with stacking-aware attrs). */
  readonly apparmorDir: boolean
  /** The test stand-in for the attr file, from XCONTAINER_TEST_LSM_ATTR. */
  readonly testAttr?: string
}

const exists = (p: string) => fs.existsSync(p)
const read = (p: string) => {
  try {
    return fs.readFileSync(p, "utf8")
  } catch {
    return ""
  }
}

/** The host's LSMs, read each time (cheap, and tests change the env). */
export function lsmHost(env: NodeJS.ProcessEnv = process.env): LsmHost {
  const testAttr = env.XCONTAINER_TEST_LSM_ATTR
  if (testAttr) return { apparmor: true, selinux: true, apparmorDir: false, testAttr }
  return {
    apparmor: exists("/sys/kernel/security/apparmor") && read("/sys/module/apparmor/parameters/enabled").startsWith("Y"),
    selinux: exists("/sys/fs/selinux/enforce"),
    apparmorDir: exists("/proc/self/attr/apparmor"),
  }
}

/** Why the LSM fields cannot be honoured here (the JSON path and the reason), or undefined. */
export function lsmProblem(spec: Spec, host: LsmHost): { path: string; reason: string } | undefined {
  const proc = spec.process
  if (proc?.apparmorProfile && proc.selinuxLabel)
    return { path: "process.selinuxLabel", reason: "one exec label only: apparmorProfile and selinuxLabel are both set" }
  if (proc?.apparmorProfile && !host.apparmor)
    return { path: "process.apparmorProfile", reason: "the host has no AppArmor enabled (/sys/module/apparmor/parameters/enabled)" }
  if (proc?.selinuxLabel && !host.selinux) return { path: "process.selinuxLabel", reason: "the host has no SELinux enabled (no selinuxfs at /sys/fs/selinux)" }
  // linux.mountLabel on a host without SELinux is not refused: runc's FormatMountLabel leaves the mount
  // data as it is there (the label only narrows access where SELinux enforces it), and the OCI suite's
  // linux_mount_label expects the container to run. mountLabelData is given the host and does the same.
  if (proc?.apparmorProfile?.includes("\n")) return { path: "process.apparmorProfile", reason: "must be one line" }
  return undefined
}

/** The op that labels the next execve, if the process asks for a label. */
export function lsmOps(proc: NonNullable<Spec["process"]>, host: LsmHost): PlanOp[] {
  const testStandIn = host.testAttr !== undefined
  if (proc.apparmorProfile) {
    const attrPath = host.testAttr ?? (host.apparmorDir ? "/proc/thread-self/attr/apparmor/exec" : "/proc/thread-self/attr/exec")
    return [{ op: "lsmExec", attrPath, text: `exec ${proc.apparmorProfile}`, testStandIn }]
  }
  if (proc.selinuxLabel) return [{ op: "lsmExec", attrPath: host.testAttr ?? "/proc/thread-self/attr/exec", text: proc.selinuxLabel, testStandIn }]
  return []
}

/** Filesystems runc mounts without the label (procfs and sysfs refuse it; mqueue and cgroup are labelled otherwise). */
const UNLABELLED = new Set(["proc", "sysfs", "mqueue", "cgroup", "cgroup2"])

/** A mount's data with context="<mountLabel>" added, as runc's label.FormatMountLabel. */
export function mountLabelData(data: string, fstype: string | undefined, mountLabel: string | undefined, selinux = true): string {
  if (!mountLabel || !selinux || UNLABELLED.has(fstype ?? "")) return data
  const ctx = `context="${mountLabel}"`
  return data ? `${data},${ctx}` : ctx
}
